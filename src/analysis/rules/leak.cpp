// Leak: memory that grows without bound over the window (RSS or RssAnon), with the time left
// until MemAvailable or the cgroup limit runs out. A bottleneck of resource memory, kind "leak".
// See docs/verdicts/memory.md.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "analysis/rules/rule.h"

namespace chokepoint::analysis::rules {

using model::Resource;

namespace {

// The memory a leak grows: anonymous memory when the kernel reports it (file pages mapped from the
// page cache are reclaimable cache, not a leak), else the whole RSS.
struct Growth {
  std::uint64_t start = 0, end = 0, max = 0;
  const char* what = "RSS";
};

Growth growth_of(const model::ProcessSummary& p) {
  if (p.anon_end_bytes > 0 || p.anon_start_bytes > 0) {
    return {p.anon_start_bytes, p.anon_end_bytes, p.anon_max_bytes, "anonymous memory (RssAnon)"};
  }
  return {p.rss_start_bytes, p.rss_end_bytes, p.rss_max_bytes, "RSS"};
}

}  // namespace

RuleResult leak(const Context& ctx) {
  const auto& obs = ctx.obs;
  const auto& sys = obs.system;
  RuleResult out;
  const model::ProcessSummary* worst = nullptr;
  Growth g;
  double worst_rate = 0;
  for (const auto& p : obs.processes) {
    Growth pg = growth_of(p);
    if (pg.end <= pg.start) continue;
    double rate = static_cast<double>(pg.end - pg.start) / std::max(ctx.duration_s, 1e-9);
    if (rate > worst_rate) {
      worst_rate = rate;
      worst = &p;
      g = pg;
    }
  }
  if (!worst) return out;
  const double growth = static_cast<double>(g.end - g.start);
  // Growth that is still going at the end of the window (the end is the maximum) and large both in
  // bytes and relative to the process.
  const bool still_growing = g.end + g.end / 50 >= g.max;
  const bool large = growth >= 8.0 * 1024 * 1024 &&
                     growth >= 0.1 * static_cast<double>(std::max<std::uint64_t>(g.start, 1));
  double headroom = static_cast<double>(sys.mem_available_bytes);
  std::string limit_name = "MemAvailable";
  if (sys.cgroup_memory_limit_bytes &&
      *sys.cgroup_memory_limit_bytes > sys.cgroup_memory_usage_bytes) {
    headroom = static_cast<double>(*sys.cgroup_memory_limit_bytes - sys.cgroup_memory_usage_bytes);
    limit_name = "the cgroup memory limit";
  }
  const double seconds_to_limit = worst_rate > 0 ? headroom / worst_rate : INFINITY;

  Bottleneck b;
  b.resource = Verdict::kMemory;
  b.kind = BottleneckKind::kLeak;
  // Not a share of time: the fraction of the remaining memory this growth eats in an hour.
  b.share = std::min(
      1.0, std::isfinite(seconds_to_limit) ? 3600.0 / std::max(seconds_to_limit, 1.0) : 0.0);
  if (std::isfinite(seconds_to_limit)) b.limit_in_s = seconds_to_limit;
  b.significant = still_growing && large;
  b.evidence.push_back(fmt::format("pid {} ({}): {} grew from {} to {} in {} (+{}/s)", worst->pid,
                                   worst->name, g.what, bytes(static_cast<double>(g.start)),
                                   bytes(static_cast<double>(g.end)), duration(ctx.duration_s),
                                   bytes(worst_rate)));
  b.evidence.push_back(fmt::format("at this rate it reaches {} ({} free) in {}", limit_name,
                                   bytes(headroom), duration(seconds_to_limit)));
  b.fixes = {
      "find what keeps memory: a heap profile (heaptrack, jemalloc/tcmalloc profiling)",
      "bound caches, queues and per-request state: an LRU with a size limit",
      fmt::format("until fixed, restart before the limit: within {}", duration(seconds_to_limit))};
  b.confidence = b.significant ? 0.8 : 0.0;
  out.bottleneck = std::move(b);
  return out;
}

}  // namespace chokepoint::analysis::rules
