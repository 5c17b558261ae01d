#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <utility>
#include <vector>

#include "analysis/rules/rule.h"
#include "util/plural.h"

namespace chokepoint::analysis::rules {
namespace {

// The lock time of these hand-offs, summed.
double lock_ns_of(const std::vector<const model::Handoff*>& handoffs) {
  double ns = 0;
  for (const auto* h : handoffs) ns += h->lock_ns;
  return ns;
}

}  // namespace

double Context::load(model::Resource r) const {
  return duration_s > 0 ? static_cast<double>(split[r] - waited_for[r]) / 1e9 / duration_s : 0.0;
}

double Context::busy_share(model::Resource r) const {
  return busy_ns > 0 ? static_cast<double>(split[r]) / busy_ns : 0.0;
}

double Context::lock_ns_caused_by_disk() const {
  // Lock time a service reported (a PostgreSQL row lock, model::apply_service_waits) comes with
  // its own holder and chain; only the kernel's lock waits are judged here.
  double service_lock_ns = 0;
  for (const auto& t : obs.threads) {
    for (const auto& [detail, ns] : t.details[static_cast<std::size_t>(model::Resource::kLock)]) {
      if (detail.rfind("postgres ", 0) == 0) service_lock_ns += static_cast<double>(ns);
    }
  }
  // Hand-offs the wait-for graph resolved are waits for their root's work (lock_ns_handed_to_cpu,
  // lock_ns_handed_to_disk), not a lock held across IO: a stage thread in fdatasync whose
  // requesters wait on their reply semaphores is one root in disk, and judged here its own
  // semaphore waits made the waiters look like they take turns doing IO under a lock.
  const double handed_ns = lock_ns_of(cpu_handoffs()) + lock_ns_of(disk_handoffs());
  const double lock_ns = std::max(
      0.0, static_cast<double>(split[model::Resource::kLock]) - service_lock_ns - handed_ns);
  const double behind = std::min(lock_ns, static_cast<double>(obs.lock_wait_behind_disk_ns));
  if (lock_ns <= 0) return 0.0;
  if (behind >= kLockBehindDiskFraction * lock_ns) return lock_ns;
  // The same conclusion from what the waiters do when they hold the lock: threads that queue on a
  // lock and spend a fifth of their working time in disk syncs are serializing disk IO.
  if (lock_waiters_disk_fraction() >= kLockWaitersDiskFraction) return lock_ns;
  return behind;
}

double Context::lock_waiters_disk_fraction() const {
  double waiters_disk = 0, waiters_work = 0;
  for (const auto& t : obs.threads) {
    if (t.split[model::Resource::kLock] == 0) continue;
    waiters_disk += static_cast<double>(t.split[model::Resource::kDisk]);
    waiters_work +=
        static_cast<double>(t.split[model::Resource::kDisk] + t.split[model::Resource::kOnCpu] +
                            t.split[model::Resource::kCpuWait]);
  }
  return waiters_disk > 0 && waiters_work > 0 ? waiters_disk / waiters_work : 0;
}

namespace {

bool rooted_on_cpu(const model::Handoff& h) {
  return h.chain.root_resource == model::Resource::kOnCpu ||
         h.chain.root_resource == model::Resource::kCpuWait;
}

bool rooted_in_disk(const model::Handoff& h) {
  return h.chain.root_resource == model::Resource::kDisk;
}

// The hand-offs of `all` whose root `keep` accepts, in their order (largest first).
std::vector<const model::Handoff*> rooted(const std::vector<model::Handoff>& all,
                                          bool (*keep)(const model::Handoff&)) {
  std::vector<const model::Handoff*> out;
  for (const auto& h : all) {
    if (keep(h)) out.push_back(&h);
  }
  return out;
}

}  // namespace

std::vector<const model::Handoff*> Context::cpu_handoffs() const {
  return rooted(handoffs, rooted_on_cpu);
}

std::vector<const model::Handoff*> Context::idle_handoffs_to(model::Resource r) const {
  std::vector<const model::Handoff*> out;
  for (const auto& h : idle_handoffs) {
    if (handoff_resource(h) == r) out.push_back(&h);
  }
  return out;
}

std::optional<model::Resource> handoff_resource(const model::Handoff& h) {
  using model::Resource;
  auto working = [](std::optional<Resource> r) -> std::optional<Resource> {
    if (!r) return std::nullopt;
    switch (*r) {
      case Resource::kOnCpu:
      case Resource::kCpuWait:
        return Resource::kOnCpu;
      case Resource::kDisk:
      case Resource::kNetwork:
      case Resource::kLock:
      case Resource::kMemory:
        return r;
      case Resource::kSleep:
      case Resource::kIdle:
        return std::nullopt;
    }
    return std::nullopt;
  };
  if (h.chain.root_short_lived == 0) return working(h.chain.root_resource);
  const model::TimeSplit& s = h.chain.root_split;
  std::optional<Resource> best;
  std::int64_t best_ns = 0;
  for (Resource r : {Resource::kOnCpu, Resource::kDisk, Resource::kNetwork, Resource::kLock,
                     Resource::kMemory}) {
    const std::int64_t ns =
        r == Resource::kOnCpu ? s[Resource::kOnCpu] + s[Resource::kCpuWait] : s[r];
    if (ns > best_ns) {
      best_ns = ns;
      best = r;
    }
  }
  return best;
}

std::vector<const model::Handoff*> Context::disk_handoffs() const {
  return rooted(handoffs, rooted_in_disk);
}

void add_handoff_evidence(Bottleneck& b, const std::vector<const model::Handoff*>& handoffs,
                          double ns, double busy_ns, std::string_view what) {
  // A root whose state was not measured (a thread seen with no time) says nothing of the wait:
  // the first chain that does is the line.
  auto says_something = [](const model::Handoff* h) {
    return h->chain.root_short_lived > 0 || h->chain.root_share > 0;
  };
  auto it = std::find_if(handoffs.begin(), handoffs.end(), says_something);
  if (it == handoffs.end()) return;
  const auto& first = **it;
  // `ns` is the first hand-off's; a later one's is its own (one of the two is set).
  const double shown_ns = it == handoffs.begin() ? ns : first.lock_ns + first.idle_ns;
  b.evidence.push_back(fmt::format("{} ({} {} waited for it, {} of busy time{}; wait-for graph)",
                                   chain_text(first.chain), first.waiters,
                                   first.waiters == 1 ? "thread" : "threads",
                                   percent(busy_ns > 0 ? shown_ns / busy_ns : 0), what));
  for (const auto* h : handoffs) {
    if (says_something(h)) b.chains.push_back(h->chain);
  }
}

double Context::lock_ns_handed_to_disk() const {
  const double ns = lock_ns_of(disk_handoffs());
  const double left = static_cast<double>(split[model::Resource::kLock]) -
                      lock_ns_caused_by_disk() - lock_ns_handed_to_cpu();
  return std::clamp(left, 0.0, ns);
}

double Context::lock_ns_handed_to_cpu() const {
  return std::min(lock_ns_of(cpu_handoffs()), static_cast<double>(split[model::Resource::kLock]));
}

namespace {

std::string thread_text(const std::string& comm, int tid) {
  if (comm.empty()) return fmt::format("thread {}", tid);
  return fmt::format("thread '{}' (tid {})", comm, tid);
}

}  // namespace

std::string chain_text(const model::WaitChain& chain) {
  std::string out;
  for (std::size_t i = 0; i < chain.steps.size(); ++i) {
    const auto& s = chain.steps[i];
    out += i == 0 ? thread_text(s.comm, s.tid) + " waits for "
                  : fmt::format("{}, which waits for ", thread_text(s.comm, s.tid));
  }
  switch (chain.root_kind) {
    case model::WakerKind::kKernelThread:
      return out + fmt::format("kernel thread {}", chain.root_tid);
    case model::WakerKind::kInterrupt:
      return out + "an interrupt";
    case model::WakerKind::kThread:
      break;
  }
  if (chain.root_short_lived > 0) {
    // Their time was never sampled: it is what the graph says they did (model::ShortLivedThread).
    const bool one = chain.root_short_lived == 1;
    out += fmt::format("{} short-lived {}{} ({} started and ended between two samples)",
                       chain.root_short_lived, one ? "thread" : "threads",
                       chain.root_comm.empty() ? "" : fmt::format(" like '{}'", chain.root_comm),
                       one ? "it" : "each");
    if (!chain.root_resource) return out;
    const auto r = *chain.root_resource;
    const std::string state = r == model::Resource::kOnCpu
                                  ? "on a CPU or runnable (not blocked)"
                                  : fmt::format("blocked in {}", model::resource_name(r));
    out += fmt::format(", which {} {} {} of {}", one ? "was" : "were", state,
                       percent(chain.root_share), one ? "its life" : "their lives");
    // The other states of a split that is not one state, a tenth of it or more, largest first.
    const std::int64_t total = chain.root_split.total_ns();
    std::vector<std::pair<std::int64_t, model::Resource>> others;
    for (std::size_t i = 0; i < model::kResourceCount; ++i) {
      const auto other = static_cast<model::Resource>(i);
      const std::int64_t ns = chain.root_split[other];
      if (other != r && total > 0 && 10 * ns >= total) others.emplace_back(ns, other);
    }
    std::sort(others.begin(), others.end(), std::greater<>());
    for (std::size_t i = 0; i < others.size(); ++i) {
      const auto other = others[i].second;
      out +=
          fmt::format("{}{} {}", i == 0 ? " (" : ", ",
                      other == model::Resource::kOnCpu
                          ? std::string("on a CPU or runnable")
                          : fmt::format("blocked in {}", model::resource_name(other)),
                      percent(static_cast<double>(others[i].first) / static_cast<double>(total)));
    }
    return out + (others.empty() ? "" : ")");
  }
  out += thread_text(chain.root_comm, chain.root_tid);
  if (!chain.root_resource) return out + " (outside the target)";
  const auto r = *chain.root_resource;
  const std::string state = r == model::Resource::kOnCpu ? "on CPU"
                            : r == model::Resource::kCpuWait
                                ? "queued for a CPU"
                                : fmt::format("in {}", model::resource_name(r));
  out += fmt::format(", which is {} {} of the time", state, percent(chain.root_share));
  if (!chain.root_function.empty()) {
    out += fmt::format(", {} of it in {}", percent(chain.root_function_share), chain.root_function);
  }
  if (chain.depth_limited) out += " (the chain goes on)";
  return out;
}

std::string percent(double fraction) {
  return fmt::format("{:.0f}%", fraction * 100.0);
}

std::string bytes(double b) {
  return util::bytes_text(b);
}

std::string duration(double seconds) {
  if (seconds < 1e-3) return fmt::format("{:.0f} µs", seconds * 1e6);
  if (seconds < 1) return fmt::format("{:.1f} ms", seconds * 1e3);
  if (seconds < 120) return fmt::format("{:.1f} s", seconds);
  if (seconds < 7200) return fmt::format("{:.0f} min", seconds / 60);
  if (seconds < 172800) return fmt::format("{:.1f} h", seconds / 3600);
  return fmt::format("{:.1f} days", seconds / 86400);
}

std::string endpoint(const std::string& addr, std::uint16_t port) {
  if (port == 0) return addr;
  if (addr.find(':') != std::string::npos) return fmt::format("[{}]:{}", addr, port);
  return fmt::format("{}:{}", addr, port);
}

std::vector<const model::TcpGroup*> target_groups(const model::TcpTableSample& t,
                                                  model::TcpState s) {
  std::vector<const model::TcpGroup*> out;
  for (const auto& g : t.groups) {
    if (g.target && g.state == s) out.push_back(&g);
  }
  std::stable_sort(out.begin(), out.end(), [](const model::TcpGroup* a, const model::TcpGroup* b) {
    return a->count > b->count;
  });
  return out;
}

std::string groups_text(const std::vector<const model::TcpGroup*>& groups, std::size_t most) {
  std::string out;
  for (std::size_t i = 0; i < groups.size() && i < most; ++i) {
    const auto& g = *groups[i];
    if (!out.empty()) out += ", ";
    out += g.server_side ? fmt::format("{} on {} from {}", g.count,
                                       endpoint(g.local_addr, g.local_port), g.remote_addr)
                         : fmt::format("{} from {} to {}", g.count, g.local_addr,
                                       endpoint(g.remote_addr, g.remote_port));
  }
  if (groups.size() > most) out += fmt::format(" and {} more", groups.size() - most);
  return out;
}

}  // namespace chokepoint::analysis::rules
