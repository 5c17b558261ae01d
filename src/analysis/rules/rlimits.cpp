// Rlimits: the target's processes near their resource limits (setrlimit(2)): RLIMIT_NPROC, which
// counts every process and thread of the real uid, so fork(), clone() and pthread_create() fail
// with EAGAIN at it; RLIMIT_MEMLOCK against the memory a process locked (mlock, MAP_LOCKED):
// mlock fails with ENOMEM past it; RLIMIT_STACK against the main thread's stack: the next deeper
// call is a SIGSEGV. RLIMIT_NOFILE is the limits rule's. Processes the kernel exempts (root,
// CAP_SYS_RESOURCE, CAP_IPC_LOCK) are not near anything. Findings, not bottlenecks.
// See docs/verdicts/rlimits.md.
#include <fmt/format.h>

#include <set>

#include "analysis/rules/rule.h"

namespace chokepoint::analysis::rules {
namespace {

// Near: this share of a limit in use, as the fd limit is judged (rules/limits.cpp).
constexpr double kNearLimit = 0.8;

bool near(std::uint64_t used, const std::optional<std::uint64_t>& limit) {
  return limit && *limit > 0 &&
         static_cast<double>(used) >= kNearLimit * static_cast<double>(*limit);
}

std::string who(const Context& ctx, int pid) {
  for (const auto& p : ctx.obs.processes) {
    if (p.pid == pid && !p.name.empty()) return fmt::format("pid {} ({})", pid, p.name);
  }
  return fmt::format("pid {}", pid);
}

}  // namespace

RuleResult rlimits(const Context& ctx) {
  RuleResult out;
  if (!ctx.obs.system.rlimits) return out;
  const auto add = [&](std::string message, std::string hint) {
    out.findings.push_back(
        {FindingResource::kRlimits, Severity::kWarning, std::move(message), std::move(hint)});
  };
  std::set<std::uint32_t> uids_told;
  for (const auto& p : ctx.obs.system.rlimits->processes) {
    if (!p.nproc_exempt && near(p.uid_tasks, p.nproc_soft) && uids_told.insert(p.uid).second) {
      add(fmt::format(
              "uid {} runs {} tasks (processes and threads) against the RLIMIT_NPROC of "
              "{}, {} ({}): fork(), clone() and pthread_create() fail with EAGAIN at the "
              "limit",
              p.uid, p.uid_tasks, who(ctx, p.pid), *p.nproc_soft,
              percent(static_cast<double>(p.uid_tasks) / static_cast<double>(*p.nproc_soft))),
          "raise it (LimitNPROC= in the systemd unit, ulimit -u, nproc in "
          "/etc/security/limits.conf), or bound the threads the service starts (a fixed-size "
          "pool); other processes of the same uid count against it too");
    }
    if (!p.memlock_exempt && near(p.locked_bytes, p.memlock_soft_bytes)) {
      add(fmt::format("{} has {} of memory locked (VmLck) of its RLIMIT_MEMLOCK {} ({}): "
                      "mlock() and mmap(MAP_LOCKED) fail with ENOMEM or EAGAIN past it",
                      who(ctx, p.pid), bytes(static_cast<double>(p.locked_bytes)),
                      bytes(static_cast<double>(*p.memlock_soft_bytes)),
                      percent(static_cast<double>(p.locked_bytes) /
                              static_cast<double>(*p.memlock_soft_bytes))),
          "raise it (LimitMEMLOCK= in the systemd unit, ulimit -l, memlock in "
          "/etc/security/limits.conf; a container's --ulimit memlock=), or lock less");
    }
    if (near(p.stack_bytes, p.stack_soft_bytes)) {
      add(fmt::format("the main thread of {} uses {} of stack (VmStk) of its RLIMIT_STACK {} "
                      "({}): a deeper call past the limit is a SIGSEGV",
                      who(ctx, p.pid), bytes(static_cast<double>(p.stack_bytes)),
                      bytes(static_cast<double>(*p.stack_soft_bytes)),
                      percent(static_cast<double>(p.stack_bytes) /
                              static_cast<double>(*p.stack_soft_bytes))),
          "raise it (LimitSTACK= in the systemd unit, ulimit -s) or recurse less (an explicit "
          "stack instead of recursion); other threads' stacks are sized at pthread_create "
          "(pthread_attr_setstacksize)");
    }
  }
  return out;
}

}  // namespace chokepoint::analysis::rules
