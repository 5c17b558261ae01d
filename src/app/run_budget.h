#pragma once
// The wall-time promise of one run, and the priority that lets it keep the promise.
//
// A run ends by what the user asked for (diagnose: --duration, plus --stacks-duration when stacks
// are taken; profile: --duration) plus kGraceNs. Each phase has its share: start-up (listing the
// target, opening events) may use kStartupGraceNs before the capture is cut short by as much as it
// overran; symbolizing stops kOutputReserveNs before the end and leaves the rest as bare addresses
// (symbolize::DeadlineSymbolizer); tearing down and output get what is left. The phases' wall times
// are kept for the report, so that a run that was slow says where.
//
// Thread-safety: one thread owns a RunBudget.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "collect/sampler/target.h"

namespace chokepoint::app {

class RunBudget {
 public:
  static constexpr std::int64_t kGraceNs = 5'000'000'000;
  static constexpr std::int64_t kStartupGraceNs = 2'000'000'000;
  // Output, and tearing the capture down (closing one perf event per thread of a large target).
  static constexpr std::int64_t kOutputReserveNs = 1'500'000'000;

  // The promise counts from main() (mark_main_start(); now when it was not called), the run's
  // wall time from exec (/proc/self/stat): what the dynamic loader did in between is the first
  // phase, "loading". No code of chokepoint runs then, so nothing of it can be cut; beside a
  // CPU-saturated target a nice-0 process spent 2 to 10 s there (every page fault and system call
  // of the loader waits for a core), and the report says so rather than hide it or blame the
  // phases after it. asked_ns is the capture time asked for.
  explicit RunBudget(std::int64_t asked_ns);

  // When main() started: the promise's start.
  std::int64_t start_ns() const { return start_ns_; }
  // exec to main(), in seconds.
  double loading_s() const { return static_cast<double>(start_ns_ - exec_ns_) / 1e9; }
  // When the whole run must be over: start + asked + kGraceNs.
  std::int64_t end_ns() const { return start_ns_ + asked_ns_ + kGraceNs; }
  // The latest a capture may end: start + asked + kStartupGraceNs.
  std::int64_t capture_end_ns() const { return start_ns_ + asked_ns_ + kStartupGraceNs; }
  // When symbolizing stops: end_ns() - kOutputReserveNs.
  std::int64_t symbolize_deadline_ns() const { return end_ns() - kOutputReserveNs; }

  // The phase that ran since the previous mark (or the start) ended now.
  void mark(const std::string& phase);
  // Since exec: what the user waited.
  double elapsed_s() const;
  // The calling thread's CPU time since the budget started, in seconds.
  double thread_cpu_s() const;
  const std::vector<std::pair<std::string, double>>& phases() const { return phases_; }
  // "loading 0.0 s, start-up 0.9 s, window 5.0 s, stacks 2.1 s, output 0.1 s"
  std::string phases_text() const;
  // "took 8.1 s of the 12.0 s promised (loading 0.0 s, start-up 0.9 s, ...)"; when loading took
  // a second or more, "took 14.1 s: 3.2 s loading before chokepoint's code ran (...), then 10.9 s
  // of the 12.0 s promised (...)".
  std::string summary() const;

 private:
  std::int64_t exec_ns_;
  std::int64_t start_ns_;
  std::int64_t asked_ns_;
  std::int64_t last_mark_ns_;
  std::int64_t start_cpu_ns_;
  std::vector<std::pair<std::string, double>> phases_;
};

// Called first in app::run(): when chokepoint's own code began (RunBudget's start).
void mark_main_start();

// Lowers the calling thread's nice value to -20 where allowed (root, or CAP_SYS_NICE), so that a
// CPU-saturated target cannot starve the measurement: beside 100 spinning threads on 2 cores a
// nice-0 chokepoint got 4% of a core, and a 5 s diagnose took 35 s or more. chokepoint's own CPU
// use is small and bounded (the sampler's budget, the capture's rate), so the target loses little.
// Threads the caller creates afterwards inherit it: call it after creating threads that must keep
// their priority (a load generator). Returns whether the priority was raised.
bool raise_measuring_priority();

// Gives the calling thread back the nice value it had before raise_measuring_priority() first
// raised it (nothing when it never did). Threads it creates afterwards inherit that one: diagnose
// starts raised (start-up is chokepoint's own work: beside 100 spinning threads a nice-0 start-up
// took 8 to 10 s of a 12 s promise) and comes back to the user's priority before it starts the
// load generator and, for a small target, the window.
void restore_user_priority();

// The nice value the thread had before raise_measuring_priority() first raised it, nullopt when
// it never did. A command chokepoint launches afterwards gets it back (app/launch.h), so that it
// runs at the priority the user gave.
std::optional<int> nice_before_raise();

// Whether diagnose's window should run at that priority too: only for targets of at least
// kManyThreads threads. At nice -20 the sampler's ticks preempt the target on time, which changes
// where its threads are seen (on the lab's disk scenario the fsync share fell from 10% to 4% of
// thread time: at nice 0 the sampler's wakeups wait until the target's threads block), and the
// verdict thresholds are calibrated at nice 0. A target with thousands of threads needs the
// priority: the sampler's work per tick grows with them, and at a few percent of a core a 5 s
// window took 40 s. Later phases (stacks, symbolizing, output) always raise it.
inline constexpr std::size_t kManyThreads = 1000;
bool window_needs_priority(const collect::sampler::TargetSpec& target);

}  // namespace chokepoint::app
