// Limits: findings, not bottlenecks, about limits the service is close to or ran into: file
// descriptors against RLIMIT_NOFILE and fs.file-max, OOM kills, swap in use with major faults.
// See docs/verdicts/limits.md.
#include <fmt/format.h>

#include "analysis/rules/rule.h"

namespace chokepoint::analysis::rules {

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
