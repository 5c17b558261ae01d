// Held threads: stopped by a signal, stopped by a tracer, frozen by their cgroup, or parked in
// vfork until a child execs. No resource would make them run, so their time is idle in the split
// and they are no bottleneck; but a target that sits still for one of these reasons must not read
// as "nothing limits this service", so each state becomes a finding that names it and what to do.
// See docs/verdicts/held.md.
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "analysis/rules/rule.h"
#include "model/account.h"

namespace chokepoint::analysis::rules {

using model::Hold;

namespace {

// Below this share of the target's thread time a held state is noise (a thread that was stopped
// for a moment by a debugger attach, a fork's few milliseconds in vfork).
constexpr double kMinHeldShare = 0.01;

struct HoldText {
  const char* what;  // "stopped by a signal", after "was" or "were"
  const char* why;   // what it means for the service
  const char* hint;  // what to do; {pids} is replaced by the processes
};

HoldText hold_text(Hold hold) {
  switch (hold) {
    case Hold::kStopped:
      return {"stopped by a signal (SIGSTOP, SIGTSTP, SIGTTIN or SIGTTOU)",
              "a stopped process runs nothing, and its clients wait, until it gets SIGCONT",
              "resume it with 'kill -CONT {pids}' (a shell's Ctrl-Z stopped job: fg or bg); "
              "find who stops it if this repeats"};
    case Hold::kTraced:
      return {"stopped by a tracer (a debugger or strace, through ptrace)",
              "a traced thread runs only when its tracer lets it",
              "continue or detach the tracer (TracerPid in /proc/{pids}/status names it)"};
    case Hold::kFrozen:
      return {"frozen by their cgroup's freezer",
              "a frozen cgroup runs nothing until it is thawed (a paused container)",
              "thaw it: 'echo 0 > CGROUP/cgroup.freeze' (v2), 'echo THAWED > CGROUP/freezer.state' "
              "(v1), or the container runtime's unpause; /proc/{pids}/cgroup names the cgroup"};
    case Hold::kVfork:
      return {"waiting inside vfork (or posix_spawn) for their child to exec",
              "the parent cannot run until the child it started calls exec or exits",
              "look at the child of {pids}: it is stuck or slow before its exec"};
    case Hold::kNone:
      break;
  }
  return {"", "", ""};
}

}  // namespace

RuleResult held(const Context& ctx) {
  RuleResult out;
  const double total_ns = static_cast<double>(ctx.split.total_ns());
  if (total_ns <= 0) return out;
  for (std::size_t h = 1; h < model::kHoldCount; ++h) {
    double held_ns = 0;
    int threads = 0;
    std::set<int> pids;
    for (const auto& t : ctx.obs.threads) {
      if (t.held_ns[h] <= 0) continue;
      held_ns += static_cast<double>(t.held_ns[h]);
      ++threads;
      pids.insert(t.key.pid);
    }
    if (held_ns / total_ns < kMinHeldShare) continue;
    const HoldText text = hold_text(static_cast<Hold>(h));
    std::string pid_list;
    for (int pid : pids) {
      if (pid_list.size() > 40) {
        pid_list += " ...";
        break;
      }
      pid_list += (pid_list.empty() ? "" : " ") + std::to_string(pid);
    }
    Finding f;
    f.resource = FindingResource::kHeld;
    f.severity = Severity::kWarning;
    const std::size_t all = ctx.obs.threads.size();
    const std::string who =
        static_cast<std::size_t>(threads) == all
            ? (all == 1 ? std::string("its only thread was")
                        : fmt::format("all {} threads were", all))
            : fmt::format("{} of {} threads {}", threads, all, threads == 1 ? "was" : "were");
    f.message =
        fmt::format("{}: {} {} for {} of the target's thread time ({:.1f} thread-seconds); {}",
                    model::hold_name(static_cast<Hold>(h)), who, text.what,
                    percent(held_ns / total_ns), held_ns / 1e9, text.why);
    f.hint = text.hint;
    const auto at = f.hint.find("{pids}");
    if (at != std::string::npos) f.hint.replace(at, 6, pid_list);
    out.findings.push_back(std::move(f));
  }
  return out;
}

double held_share(const Context& ctx) {
  const double total_ns = static_cast<double>(ctx.split.total_ns());
  if (total_ns <= 0) return 0;
  double held_ns = 0;
  for (const auto& t : ctx.obs.threads) held_ns += static_cast<double>(model::held_total_ns(t));
  return held_ns / total_ns;
}

}  // namespace chokepoint::analysis::rules
