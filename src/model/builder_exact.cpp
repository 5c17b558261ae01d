// The exact split's feed of model::ObservationBuilder (builder_state.h): the kernel's per-thread
// sums and state of each tick, and the source line that says which time split ran.
#include <fmt/format.h>

#include <string>

#include "model/builder_state.h"
#include "util/counters.h"

namespace chokepoint::model::builder_internal {

void Builder::exact_sample(const Tick& t, bool first_pass) {
  const bool before = t.at_ns <= start_;
  if (!before && !in_window(t.at_ns)) return;
  // The second pass is for the threads first seen in the tick: taking the others' sums again
  // changes nothing.
  if (first_pass || new_thread_in_tick_) {
    auto cursor = threads_.begin();
    for (const auto& w : t.exact->waits) {
      const auto it = find_thread({w.pid, w.tid}, cursor);
      // A thread id handed out again: the new thread's sums are not the old one's.
      if (it == threads_.end() || (w.start_time_ticks != 0 &&
                                   w.start_time_ticks != it->second.account.key.start_time_ticks)) {
        continue;
      }
      it->second.exact.sum(w, before);
    }
  }
  if (!first_pass) return;
  const ExactState& state = t.exact->state;
  if (!state.file_hook_problem.empty()) file_hook_problem_ = state.file_hook_problem;
  if (before) exact_before_ = state;
  if (in_window(t.at_ns)) {
    if (!exact_first_) exact_first_ = state;
    exact_last_ = state;
  }
  for (const auto& e : t.exact->edges) {
    EdgeSums& sums = edge_sums(e);
    if (before) {
      sums.base_ns = e.ns;
      sums.base_count = e.count;
    }
    sums.last_ns = e.ns;
    sums.last_count = e.count;
  }
}

namespace {

// How the file system calls' time on the CPU was timed, for the time split's sources line; ""
// for recordings made before the hook was kept.
std::string file_calls_text(const std::string& hook, const std::string& problem) {
  const std::string why = problem.empty() ? "" : ": " + problem;
  if (hook == "fentry") {
    return "; file system calls' on-CPU time is disk, timed by fentry/fexit on their entry points "
           "(no other system call pays for it)";
  }
  if (hook == "raw_syscalls") {
    return "; file system calls' on-CPU time is disk, timed on raw_syscalls sys_enter/sys_exit, "
           "which every system call of the host pays for while attached (no fentry" +
           why + ")";
  }
  if (hook == "none") {
    return "; file system calls' on-CPU time is not timed and stays on_cpu (no fentry" + why +
           "; raw_syscalls, which every system call of the host would pay for, only with --mode "
           "exact)";
  }
  return "";
}

}  // namespace

// Which time split ran and why, from the exact mode's samples at the window's start and end.
Source exact_source(const ExactState& first, const ExactState& last, const Observation& obs,
                    int exact_threads, const std::string& file_hook_problem) {
  const std::string mode = last.mode.empty() ? std::string("auto") : last.mode;
  if (!last.on) {
    return {"time split", false, "",
            fmt::format("sampled (--mode {}): {}{}{}", mode, last.problem,
                        last.hint.empty() ? "" : "; hint: ", last.hint)};
  }
  const double secs = static_cast<double>(obs.duration_ns) / 1e9;
  const std::uint64_t switches = util::saturating_delta(first.switches, last.switches);
  const std::uint64_t thinned = util::saturating_delta(first.thinned_out, last.thinned_out);
  const std::uint64_t lost = util::saturating_delta(first.lost, last.lost);
  const double thinned_pct = 100.0 * static_cast<double>(thinned) /
                             static_cast<double>(std::max<std::uint64_t>(1, switches));
  std::string budget;
  if (thinned == 0) {
    budget = "every one accounted";
  } else if (last.thin_below_ns_max > 0) {
    const double tau_us = static_cast<double>(last.thin_below_ns_max) / 1e3;
    budget = fmt::format(
        "above {} blocks per CPU per second thinned by length: a block shorter than the "
        "threshold (at most {}) accounted with probability its length / the threshold and "
        "weighed by the inverse, a longer one always ({:.1f}% of the switches not accounted)",
        last.budget_per_cpu_s,
        tau_us < 1e3 ? fmt::format("{:.0f} µs", tau_us) : fmt::format("{:.1f} ms", tau_us / 1e3),
        thinned_pct);
  } else {
    // Recordings made before blocks were thinned by length.
    budget = fmt::format(
        "above {} per CPU per second 1 in up to {} accounted and weighed by it ({:.1f}% not "
        "accounted)",
        last.budget_per_cpu_s, last.thin_every_max, thinned_pct);
  }
  if (lost > 0) budget += fmt::format("; {} intervals did not fit the kernel's maps", lost);
  if (!last.problem.empty()) budget += "; " + last.problem;  // e.g. too many target processes
  return {
      "time split", true,
      fmt::format(
          "exact (--mode {}): each thread's off-CPU time divided by eBPF state "
          "accounting of every switch and wakeup, with the system call and its fd or futex read "
          "at each switch-out ({} of {} threads; "
          "{:.0f} switches/s, {}); each wait classed as the sampler classes it; "
          "on-CPU and run-queue time from schedstat{}",
          mode, exact_threads, obs.threads.size(),
          secs > 0 ? static_cast<double>(switches) / secs : 0.0, budget,
          file_calls_text(last.file_hook, file_hook_problem)),
      ""};
}

}  // namespace chokepoint::model::builder_internal
