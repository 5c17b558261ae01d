// Memory: threads stalled in major page faults or reclaim ("paging"), and memory that grows
// without bound ("leak"). See docs/verdicts/memory.md.
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

RuleResult limits(const Context& ctx) {
  RuleResult out;
  for (const auto& p : ctx.obs.processes) {
    if (p.fd_soft_limit > 0 && p.open_fds * 10 >= p.fd_soft_limit * 8) {
      out.findings.push_back(
          {FindingResource::kFds, Severity::kWarning,
           fmt::format("pid {} ({}) has {} of {} file descriptors open ({})", p.pid, p.name,
                       p.open_fds, p.fd_soft_limit,
                       percent(static_cast<double>(p.open_fds) / p.fd_soft_limit)),
           "raise the limit (LimitNOFILE= in the systemd unit, ulimit -n) before accept() fails "
           "with EMFILE"});
    }
  }
  const auto& sys = ctx.obs.system;
  if (sys.files_max > 0 && sys.files_open * 10 >= sys.files_max * 8) {
    out.findings.push_back({FindingResource::kFds, Severity::kWarning,
                            fmt::format("the system has {} of fs.file-max {} files open",
                                        sys.files_open, sys.files_max),
                            "raise fs.file-max (sysctl)"});
  }
  if (sys.oom_kills > 0) {
    out.findings.push_back(
        {FindingResource::kMemory, Severity::kWarning,
         fmt::format("the kernel OOM-killed {} processes during the window", sys.oom_kills),
         "check dmesg for what was killed; bound memory or raise the limit"});
  }
  if (sys.swap_used_bytes > 0 && sys.majflt_per_s > 100) {
    out.findings.push_back(
        {FindingResource::kMemory, Severity::kInfo,
         fmt::format("{} of swap in use and {:.0f} major faults/s system-wide",
                     bytes(static_cast<double>(sys.swap_used_bytes)), sys.majflt_per_s),
         ""});
  }
  return out;
}

}  // namespace chokepoint::analysis::rules
