#pragma once
// A window of a recording diagnosed again, for replay and diff: the recording opened, the window
// chosen (--from and --to are offsets from its first tick), the observation built and diagnosed,
// and the stacks diagnose kept added back.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "analysis/diagnosis.h"
#include "analysis/services.h"
#include "app/recorded_window.h"
#include "app/stack_recorder.h"
#include "model/observation.h"
#include "monitor/tier_window.h"
#include "store/recording.h"

namespace chokepoint::app {

// nlohmann::json's destructor may allocate (it flattens nested values on a stack), and
// clang-tidy's bugprone-exception-escape counts that as a throw.
// NOLINTNEXTLINE(bugprone-exception-escape)
struct ReplayedWindow {
  // False for a run alone (chokepoint load or knee --record): then only meta, load or knee, and
  // the observation's target (kind "load" or "knee") are set.
  bool sampled = true;
  model::Observation observation;
  analysis::Diagnosis diagnosis;
  store::RecordingMeta meta;
  RecordedLoad load;   // the load diagnose --load drove (whole recordings only)
  RecordedLoad knee;   // a knee run alone: its report
  nlohmann::json run;  // the live run's "run" (whole recordings only; null: none)
  // The services' rules: over the window from the probe series (schema 5), else whole recordings
  // only (the summary note).
  std::vector<analysis::ServiceReport> services;
  std::vector<model::ServiceObservation> service_observations;  // what they were folded from
  // The stacks diagnose captured after its window, for a flame graph (whole recordings only;
  // nullopt: none kept).
  std::optional<profile::Profile> profile;
  // The stacks chokepoint record kept over time (schema 3), the slices in the window.
  RecordedStacks recorded_stacks;
  // Where the evidence the recorded stacks gave (set_recorded_evidence, when diagnose kept no
  // stacks of its own) starts in the primary bottleneck's evidence: it runs to the end. nullopt:
  // none was added.
  std::optional<std::size_t> recorded_evidence_at;
  std::int64_t first_tick_ns = 0;  // the recording's first tick (monotonic ns)
  double from_s = 0, to_s = 0;     // the window, from the recording's first tick
  double length_s = 0;             // the whole recording
};

// Sets the recorded stacks' evidence for the verdict over `spans` (monotonic ns) as the primary
// bottleneck's last evidence lines, replacing what an earlier call set (the report narrows it to
// the verdict's window); nothing when there is no bottleneck or no slice of the kind needed
// overlaps. replay_window calls it for the window replayed when diagnose kept no stacks of its
// own (the live run's evidence, which stays).
void set_recorded_evidence(ReplayedWindow& w, const std::vector<TimeSpan>& spans);

// Another reader of the same pass over the recording (the report's timeline): begin gets the
// reader and the window's bounds (monotonic ns) before the first tick, each gets every tick read.
struct TickTap {
  std::function<void(const store::RecordingReader&, std::int64_t from_ns, std::int64_t to_ns)>
      begin;
  std::function<void(const model::Tick&)> each;
};

// Throws util::FatalError: the file cannot be read (exit 1), the window is outside the
// recording or empty (exit 2), a window asked of a run alone (exit 2). A run alone gives
// sampled = false, and the tap is not called. sampled_only: the exact mode's sums the recording
// holds are set aside, giving the sampled split of the same window (replay --mode sample).
ReplayedWindow replay_window(const std::string& path, const std::string& from,
                             const std::string& to, const TickTap& tap = {},
                             bool sampled_only = false);

// A multi-tier recording (diagnose --record with several --pid, or --cgroup PATH --tiers; the
// roots saved_tier_roots reads) diagnosed again tier by tier over the window --from and --to
// choose, as the live run did (monitor::diagnose_tiers).
// nlohmann::json's destructor may allocate, as above.
// NOLINTNEXTLINE(bugprone-exception-escape)
struct ReplayedTiers {
  monitor::TierWindows tiers;
  std::vector<analysis::ServiceReport> services;  // as ReplayedWindow's
  RecordedLoad load;                              // whole recordings only
  nlohmann::json run;                             // whole recordings only (null: none)
  double from_s = 0, to_s = 0, length_s = 0;
};

// nullopt for a recording that holds no tiers. Throws util::FatalError as replay_window does;
// the window must hold a tick. sampled_only: as for replay_window.
std::optional<ReplayedTiers> replay_tiers(const std::string& path, const std::string& from,
                                          const std::string& to, bool sampled_only = false);

}  // namespace chokepoint::app
