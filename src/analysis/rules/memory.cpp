// Memory: threads stalled in major page faults or reclaim ("paging"). Memory that grows without
// bound is the leak rule (leak.cpp). See docs/verdicts/memory.md.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "analysis/rules/rule.h"

namespace chokepoint::analysis::rules {

using model::Resource;

RuleResult memory(const Context& ctx) {
  const auto& obs = ctx.obs;
  const auto& sys = obs.system;
  const double load = ctx.load(Resource::kMemory);

  Bottleneck b;
  b.resource = Verdict::kMemory;
  b.kind = BottleneckKind::kPaging;
  b.share = ctx.busy_share(Resource::kMemory);
  b.significant = load >= kSignificantLoadThreads && b.share >= kSignificantBusyShare;
  b.evidence.push_back(fmt::format(
      "on average {:.2f} threads were stalled in page faults or reclaim ({} of busy time)", load,
      percent(b.share)));
  std::uint64_t majflt = 0;
  for (const auto& t : obs.threads) majflt += t.majflt;
  b.evidence.push_back(
      fmt::format("the target took {:.0f} major faults/s (pages read back from disk)",
                  majflt / std::max(ctx.duration_s, 1e-9)));
  // Delay accounting (taskstats) measures the stalls exactly where it is on.
  std::uint64_t swapin = 0, reclaim = 0, thrashing = 0, compact = 0;
  bool has_delays = false;
  for (const auto& ps : obs.processes) {
    has_delays = has_delays || ps.has_delays;
    swapin += ps.delay_swapin_ns;
    reclaim += ps.delay_reclaim_ns;
    thrashing += ps.delay_thrashing_ns;
    compact += ps.delay_compact_ns;
  }
  if (has_delays && swapin + reclaim + thrashing + compact > 0) {
    auto s = [](std::uint64_t ns) { return static_cast<double>(ns) / 1e9; };
    b.evidence.push_back(fmt::format(
        "delay accounting: the target's threads stalled {:.2f} s in swap-in, {:.2f} s in direct "
        "reclaim, {:.2f} s thrashing (refaults) and {:.2f} s in compaction (taskstats, exact)",
        s(swapin), s(reclaim), s(thrashing), s(compact)));
  }
  if (sys.refaults_per_s > 0) {
    b.evidence.push_back(fmt::format(
        "system: {:.0f} refaults/s (pages evicted and needed again: the working set does not fit)",
        sys.refaults_per_s));
  }
  if (sys.cgroup_memory_limit_bytes) {
    b.evidence.push_back(fmt::format("cgroup {} uses {} of its {} memory limit", sys.cgroup_path,
                                     bytes(static_cast<double>(sys.cgroup_memory_usage_bytes)),
                                     bytes(static_cast<double>(*sys.cgroup_memory_limit_bytes))));
  }
  if (sys.psi_memory.available && sys.psi_memory.some_share > 0.01) {
    b.evidence.push_back(fmt::format("PSI memory: some task stalled on memory {} of the time",
                                     percent(sys.psi_memory.some_share)));
  }
  b.fixes = {"bound the working set so it fits in the memory the service may use",
             "raise the memory limit (cgroup memory.max) or add RAM",
             "improve locality: fewer, larger sequential reads instead of random access"};
  b.confidence = b.significant ? std::min(1.0, 0.6 + 0.4 * b.share) : 0.0;
  RuleResult out;
  out.bottleneck = std::move(b);
  return out;
}

}  // namespace chokepoint::analysis::rules
