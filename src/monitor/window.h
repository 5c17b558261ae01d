#pragma once
// Diagnosis windows: sample a target (collect/sampler), build its observation (model/) and
// diagnose it (analysis/). diagnose, check, top and agent all run this one path, so a number means
// the same in each. A single window (diagnose, check) is the first window of a series; top and the
// agent keep one series per target, so one sampler lives across their windows and a window costs
// what the target's threads did in it, not what it takes to open every thread's files again.
//
// Thread-safety: diagnose_window calls are independent (several threads may run windows at once);
// one thread drives a WindowSeries.

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>

#include "analysis/diagnosis.h"
#include "collect/sampler/exact_accounting.h"
#include "collect/sampler/target.h"
#include "model/observation.h"
#include "model/samples.h"
#include "util/result.h"

namespace chokepoint::collect::sampler {
class Sampler;
}
namespace chokepoint::model {
class ObservationSink;
}

namespace chokepoint::monitor {

struct DiagnosisWindow {
  // What the window read, when kept for a recording. The first window's begins the stream; a later
  // window's continue it (its info is repeated).
  model::Samples samples;
  model::Observation observation;
  analysis::Diagnosis diagnosis;
};

struct WindowOptions {
  std::int64_t duration_ns = 10'000'000'000;
  std::int64_t interval_ns = 100'000'000;
  const std::atomic<bool>* stop = nullptr;  // ends the window early when set
  bool keep_samples = false;
  // For a series whose windows follow each other (top, the agent): see SamplerOptions::rolling.
  bool rolling = false;
  // The exact mode (collect/sampler/exact_accounting.h); nullopt: not asked about.
  std::optional<collect::sampler::SplitMode> split_mode = std::nullopt;
  // Several series in one process (the agent): see SamplerOptions::shared_clock.
  bool shared_clock = false;
};

// Consecutive windows of one target from one sampler. Window N runs from window N-1's close for
// duration_ns; each thread's counters and wait at that close are the new window's starting point,
// so no time is lost or counted twice at the seam, and window N's observation is what a window
// built alone over the same ticks gives (model::ObservationSink).
class WindowSeries {
 public:
  // Checks the options and that the target exists now (errors carry hints). keep_samples is read
  // at each next().
  static util::Result<std::unique_ptr<WindowSeries>> open(const collect::sampler::TargetSpec& spec,
                                                          const WindowOptions& options);
  ~WindowSeries();
  WindowSeries(const WindowSeries&) = delete;
  WindowSeries& operator=(const WindowSeries&) = delete;

  // Watches the next window and diagnoses it. Errors: the target cannot be read, or it exited
  // before any of its threads was seen (ESRCH); with hints.
  // REQUIRES: !ended().
  util::Result<DiagnosisWindow> next(bool keep_samples = false);
  // The target exited (the last window said so) or a window failed: open a new series to go on.
  bool ended() const { return ended_; }
  std::uint64_t windows() const { return windows_; }

 private:
  WindowSeries() = default;
  std::unique_ptr<collect::sampler::Sampler> sampler_;
  std::unique_ptr<model::ObservationSink> sink_;
  bool ended_ = false;
  std::uint64_t windows_ = 0;
};

// Watches `spec` for one window and diagnoses it: the first window of a series. Errors: the target
// is gone or cannot be read, or it exited before any of its threads was seen (ESRCH); with hints.
util::Result<DiagnosisWindow> diagnose_window(const collect::sampler::TargetSpec& spec,
                                              const WindowOptions& options);

}  // namespace chokepoint::monitor
