// Lock: threads queued on a contended mutex or a file lock. Lock waits that happen while another
// thread of the process is inside a disk sync are counted as disk instead (the lock is held across
// IO; fix the IO first). With the wait-for graph (the exact mode), a wait that one thread hands
// off (a reply semaphore posted by a worker that is on a CPU) is not contention: it is counted as
// cpu (rules/cpu.cpp), or as disk when that worker is mostly in disk (rules/disk.cpp). See
// docs/verdicts/lock.md.
#include <fmt/format.h>

#include <algorithm>

#include "analysis/rules/rule.h"
#include "model/account.h"

namespace chokepoint::analysis::rules {

using model::Resource;

RuleResult lock(const Context& ctx) {
  const auto& obs = ctx.obs;
  const double all_lock_ns = static_cast<double>(ctx.split[Resource::kLock]);
  const double by_disk_ns = ctx.lock_ns_caused_by_disk();
  const double handed_ns = std::min(ctx.lock_ns_handed_to_cpu(), all_lock_ns - by_disk_ns);
  const double handed_to_disk_ns = ctx.lock_ns_handed_to_disk();
  const double own_ns =
      std::max(0.0, all_lock_ns - by_disk_ns - std::max(0.0, handed_ns) - handed_to_disk_ns);
  const double load = ctx.duration_s > 0 ? own_ns / 1e9 / ctx.duration_s : 0.0;

  Bottleneck b;
  b.resource = Verdict::kLock;
  b.kind = BottleneckKind::kMutex;
  b.share = ctx.busy_ns > 0 ? own_ns / ctx.busy_ns : 0.0;
  b.significant = load >= kSignificantLoadThreads && b.share >= kSignificantBusyShare;

  auto top = model::top_details(obs.threads, Resource::kLock, 3);
  if (!top.empty() && top[0].first.rfind("flock", 0) == 0) b.kind = BottleneckKind::kFileLock;
  // Reader-writer locks and semaphores are named by the libc function their waiters called
  // (the sampler's stack scan): "rwlock 0x55d0c0a0 (pthread_rwlock_wrlock)".
  if (!top.empty() && top[0].first.rfind("rwlock", 0) == 0) b.kind = BottleneckKind::kRwlock;
  if (!top.empty() && top[0].first.rfind("semaphore", 0) == 0) b.kind = BottleneckKind::kSemaphore;
  // A database's own lock waits (model::apply_service_waits): "postgres Lock:transactionid".
  if (!top.empty() &&
      (top[0].first == "postgres Lock:transactionid" || top[0].first == "postgres Lock:tuple")) {
    b.kind = BottleneckKind::kRow;
  } else if (!top.empty() && top[0].first.rfind("postgres ", 0) == 0) {
    b.kind = BottleneckKind::kDatabase;
  }
  b.evidence.push_back(fmt::format(
      "on average {:.2f} threads were queued on a lock ({} of busy time)", load, percent(b.share)));
  for (const auto& [detail, ns] : top) {
    b.evidence.push_back(fmt::format("{} of lock wait on {}",
                                     percent(all_lock_ns > 0 ? ns / all_lock_ns : 0), detail));
  }
  int waiting_threads = 0;
  for (const auto& t : obs.threads) {
    if (t.split[Resource::kLock] - t.waited_for[Resource::kLock] > 0) ++waiting_threads;
  }
  b.evidence.push_back(fmt::format("{} threads waited on it", waiting_threads));
  if (by_disk_ns > 0) {
    if (by_disk_ns >= all_lock_ns) b.kind = BottleneckKind::kHeldAcrossIo;
    b.evidence.push_back(
        fmt::format("{} of lock wait is caused by disk IO under the lock (counted as disk)",
                    duration(by_disk_ns / 1e9)));
  }
  if (handed_ns > 0) {
    const auto handoffs = ctx.cpu_handoffs();
    b.evidence.push_back(fmt::format(
        "{} of lock wait is a hand-off, not contention (counted as cpu): {}",
        percent(all_lock_ns > 0 ? handed_ns / all_lock_ns : 0), chain_text(handoffs[0]->chain)));
  }
  if (handed_to_disk_ns > 0) {
    b.evidence.push_back(
        fmt::format("{} of lock wait is a hand-off, not contention (counted as disk): {}",
                    percent(all_lock_ns > 0 ? handed_to_disk_ns / all_lock_ns : 0),
                    chain_text(ctx.disk_handoffs()[0]->chain)));
  }
  // Idle waits on hand-offs whose root's time went mostly to lock waits (a joiner waiting for
  // short-lived threads that queue on a mutex): the chain behind the lock time, shown here.
  if (const auto idle = ctx.idle_handoffs_to(Resource::kLock); !idle.empty()) {
    add_handoff_evidence(b, idle, idle[0]->idle_ns, ctx.busy_ns, " given to its state");
  }
  std::string which = top.empty() ? "the lock" : top[0].first;
  if (b.kind == BottleneckKind::kRow || b.kind == BottleneckKind::kDatabase) {
    // The database's own locks: the service's findings add the specific fixes (analysis/
    // services.h); code-level lock advice does not apply.
    b.fixes = {
        "find the transactions that hold the rows: the lock chain in the evidence names "
        "the blocking backend and its query"};
    b.confidence = b.significant ? std::min(1.0, 0.6 + 0.4 * b.share) : 0.0;
    RuleResult out;
    out.bottleneck = std::move(b);
    return out;
  }
  b.fixes = {fmt::format("shard {}: one lock per key range, so requests on different keys do not "
                         "queue behind each other",
                         which),
             "shorten the critical section: do the work outside the lock, hold it only to publish",
             b.kind == BottleneckKind::kRwlock
                 ? "readers queue behind writers: keep the write side short, or publish new "
                   "versions (copy-on-write) so reads never wait"
                 : "use a reader-writer lock or lock-free reads when most holders only read",
             "chokepoint profile --off-cpu shows the code that takes it"};
  b.confidence = b.significant ? std::min(1.0, 0.6 + 0.4 * b.share) : 0.0;
  RuleResult out;
  out.bottleneck = std::move(b);
  return out;
}

}  // namespace chokepoint::analysis::rules
