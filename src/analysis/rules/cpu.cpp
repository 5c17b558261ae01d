// CPU: saturated (all allowed cores busy, threads queue for a core) or serial (one thread does the
// work while the others wait for it). With the wait-for graph (the exact mode), the waiters' lock
// time that one on-CPU thread hands off (rules/lock.cpp leaves it out) is this rule's share too,
// and the chain is the evidence. See docs/verdicts/cpu.md.
#include <fmt/format.h>

#include <algorithm>

#include "analysis/rules/rule.h"

namespace chokepoint::analysis::rules {

using model::Resource;

RuleResult cpu(const Context& ctx) {
  const auto& sys = ctx.obs.system;
  // Kernel time inside fsync & co. was moved to disk, but it still used a core.
  std::int64_t kernel_work_ns = 0;
  for (const auto& t : ctx.obs.threads) kernel_work_ns += t.kernel_work_ns;
  const double on_cpu_cores =
      ctx.load(Resource::kOnCpu) +
      (ctx.duration_s > 0 ? static_cast<double>(kernel_work_ns) / 1e9 / ctx.duration_s : 0.0);
  // Run-queue wait in thread-seconds per second: the average number of threads waiting for a core
  // (not cores: waiting uses none, and thousands of threads can wait on 2 cores at once).
  const double wait_cores = ctx.load(Resource::kCpuWait);
  const double allowed = sys.cpus_allowed > 0 ? sys.cpus_allowed : std::max(1, sys.cpus_online);
  const double wait_fraction =
      on_cpu_cores + wait_cores > 0 ? wait_cores / (on_cpu_cores + wait_cores) : 0.0;

  // The busiest thread, by its on-CPU fraction of the time we watched it.
  const model::ThreadAccount* busiest = nullptr;
  double busiest_fraction = 0;
  for (const auto& t : ctx.obs.threads) {
    std::int64_t total = t.split.total_ns();
    if (total <= 0) continue;
    // Its own CPU time: what it waited for on another thread's CPU is not its work.
    double f = static_cast<double>(t.split[Resource::kOnCpu] - t.waited_for[Resource::kOnCpu]) /
               static_cast<double>(total);
    if (f > busiest_fraction) {
      busiest_fraction = f;
      busiest = &t;
    }
  }
  const double busiest_cores = busiest ? busiest_fraction : 0.0;

  Bottleneck b;
  b.resource = Verdict::kCpu;
  // Lock time that is a hand-off from a thread on a CPU: waiting for that thread's CPU work.
  const double handed_ns = ctx.lock_ns_handed_to_cpu();
  b.share = ctx.busy_share(Resource::kOnCpu) + ctx.busy_share(Resource::kCpuWait) +
            (ctx.busy_ns > 0 ? handed_ns / ctx.busy_ns : 0.0);
  b.evidence.push_back(fmt::format(
      "the target used {:.2f} of {:.4g} allowed cores ({}); "
      "system CPU utilization {}",
      on_cpu_cores, allowed, percent(on_cpu_cores / allowed), percent(sys.cpu_utilization)));
  if (wait_cores > 0.01) {
    b.evidence.push_back(fmt::format(
        "on average {:.2f} threads waited for a core ({:.1f} thread-seconds over {:.1f} s; {} of "
        "their runnable time; schedstat run delay)",
        wait_cores, wait_cores * ctx.duration_s, ctx.duration_s, percent(wait_fraction)));
  }
  if (handed_ns > 0) {
    const auto handoffs = ctx.cpu_handoffs();
    add_handoff_evidence(b, handoffs, handoffs[0]->lock_ns, ctx.busy_ns);
  } else if (const auto idle = ctx.idle_handoffs_to(Resource::kOnCpu); !idle.empty()) {
    // No lock time handed off, but idle waits on hand-offs (a reply's futex or pipe) given to a
    // thread on a CPU: the same chain, shown from the time moved to its state.
    add_handoff_evidence(b, idle, idle[0]->idle_ns, ctx.busy_ns, " given to its state");
  }
  if (sys.psi_cpu.available && sys.psi_cpu.some_share > 0.01) {
    b.evidence.push_back(fmt::format("PSI cpu: some task stalled on CPU {} of the time",
                                     percent(sys.psi_cpu.some_share)));
  }
  if (sys.cgroup_throttled_share > 0.01) {
    b.evidence.push_back(
        fmt::format("the cgroup's CPU quota throttled it {} of the time ({} times)",
                    percent(sys.cgroup_throttled_share), sys.cgroup_nr_throttled));
  }

  // The cores the rest of the host kept busy (steal included): all online cores' busy time less
  // the target's own. Read only where the target may use every core: under a cpuset or quota the
  // host's other cores are not the ones it queues for.
  const bool all_cores_allowed = sys.cpus_online > 0 && allowed >= sys.cpus_online - 0.01;
  const double others_cores =
      all_cores_allowed
          ? std::max(0.0, sys.cpu_utilization * sys.cpus_online - std::min(on_cpu_cores, allowed))
          : 0.0;
  // Its threads queued while other processes held more of the cores than it did: they queue
  // behind that work first, whatever the target's own demand (its running plus queued threads
  // would count the others' effect as its own: every queued thread waits longer behind them).
  // (others_cores is 0 where not every core is allowed, so this is false there.)
  const bool others_hold_the_cores = others_cores >= std::max(on_cpu_cores, 0.25 * allowed);
  // The target's own demand (running + queued threads) leaves a tenth of its cores unwanted.
  const bool demand_below_cores = on_cpu_cores + wait_cores < 0.9 * allowed;

  const bool serial = busiest && busiest_fraction >= 0.8 && on_cpu_cores < 0.75 * allowed &&
                      busiest_cores >= 0.5 * on_cpu_cores && allowed >= 1.5;
  // Saturated: the allowed cores are busy with the target's work, or its threads spend much of
  // their runnable time queued for a core (other processes, or a CPU quota, take the CPU).
  const bool queued = wait_cores >= kSignificantLoadThreads && wait_fraction >= 0.25;
  const bool saturated =
      on_cpu_cores >= 0.8 * allowed || queued || sys.cgroup_throttled_share >= 0.1;
  if (serial) {
    b.kind = BottleneckKind::kSerial;
    b.significant = true;
    b.evidence.push_back(
        fmt::format("one thread, '{}' (tid {}), was on a CPU {} of the time and did {} of the "
                    "target's CPU work "
                    "while {:.1f} cores stayed free",
                    busiest->comm, busiest->key.tid, percent(busiest_fraction),
                    percent(busiest_cores / std::max(on_cpu_cores, 1e-9)), allowed - on_cpu_cores));
    b.fixes = {
        fmt::format(
            "parallelize the work that thread '{}' does: more worker threads, up to the {:.4g} "
            "allowed cores",
            busiest->comm, allowed),
        "split the single queue or executor so requests do not funnel through one thread",
        "then profile that thread (chokepoint profile) to make its work cheaper"};
  } else if (queued && (demand_below_cores || others_hold_the_cores) &&
             sys.cgroup_throttled_share < 0.1) {
    // The target's threads queue for cores that something else is using: what hurts it is the
    // waiting, so only the run-queue time counts as its share (with the time threads waited for a
    // hand-off from a thread that was on a CPU or queued for one).
    b.kind = BottleneckKind::kContended;
    b.significant = true;
    b.share =
        ctx.busy_share(Resource::kCpuWait) + (ctx.busy_ns > 0 ? handed_ns / ctx.busy_ns : 0.0);
    if (demand_below_cores) {
      b.evidence.push_back(fmt::format(
          "the target's own demand ({:.2f} cores running + {:.2f} waiting) is below the {:.4g} "
          "cores it may use: other processes take the CPU it is waiting for",
          on_cpu_cores, wait_cores, allowed));
    } else {
      b.evidence.push_back(fmt::format(
          "other processes kept {:.2f} of the {} cores busy, more than the target's own {:.2f}: "
          "its {:.2f} waiting threads queue behind their work",
          others_cores, sys.cpus_online, on_cpu_cores, wait_cores));
    }
    b.fixes = {
        "find what else runs: chokepoint diagnose with no target shows the whole host",
        "give the service cores of its own (cpusets) or a larger CPU weight (cgroup cpu.weight)",
        "move the other work to another machine"};
  } else if (saturated) {
    b.kind = BottleneckKind::kSaturated;
    b.significant = true;
    if (others_cores >= 0.25 * allowed) {
      b.evidence.push_back(fmt::format("other processes kept {:.2f} of the {} cores busy beside it",
                                       others_cores, sys.cpus_online));
    }
    b.fixes = {"profile the hot code (chokepoint profile) and make it cheaper",
               "cache the results of repeated work",
               "add cores (or raise the cgroup CPU quota when it throttles)",
               "add machines behind a load balancer; chokepoint knee projects how many"};
  } else {
    b.kind = BottleneckKind::kBusy;
    b.fixes = {"nothing urgent: CPU has headroom"};
  }
  b.confidence = b.significant ? std::min(1.0, 0.6 + 0.4 * b.share) : 0.0;

  RuleResult out;
  out.bottleneck = std::move(b);
  return out;
}

}  // namespace chokepoint::analysis::rules
