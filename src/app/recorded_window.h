#pragma once
// A diagnosis window kept in a recording and brought back: the samples, and what diagnose added
// after the window (the stack evidence for its verdict), so that a replay prints the report the
// live run printed.

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "analysis/diagnosis.h"
#include "app/diagnose_stacks.h"
#include "model/observation.h"
#include "model/samples.h"
#include "model/service.h"
#include "store/recording.h"

namespace chokepoint::app {

// The load diagnose --load drove while it watched, as its report printed it: the JSON object
// (null when there was no load) and the text section (empty when the load failed).
// nlohmann::json's destructor may allocate (it flattens nested values on a stack), and
// clang-tidy's bugprone-exception-escape counts that as a throw.
// NOLINTNEXTLINE(bugprone-exception-escape)
struct RecordedLoad {
  nlohmann::json json;
  std::string text;
};

struct RecordedServices {
  std::vector<model::ServiceObservation> observations;
  std::vector<std::string> notes;
  // Schema 5: the probes and every poll they made (save_window writes them as the probe series).
  std::vector<model::ServiceProbe> probes;
  std::vector<model::ServicePoll> polls;
};

// What the whole diagnose run cost (model::Overhead::run_wall_s and run_cpu_s): kept, so that a
// replay of the whole recording prints the live report's cost line.
// nlohmann::json's destructor may allocate (it flattens nested values on a stack), and
// clang-tidy's bugprone-exception-escape counts that as a throw.
// NOLINTNEXTLINE(bugprone-exception-escape)
struct RecordedRunCost {
  double wall_s = 0;
  double cpu_s = 0;
  nlohmann::json run;  // the JSON report's "run": wall_s, promised_s, phases_s (null: none)
};

// Adds stacks found after the window to its report: sentences to the primary bottleneck's
// evidence, and the stacks' source. Does nothing for a verdict without stacks.
void add_stacks(const VerdictStacks& stacks, model::Observation& obs, analysis::Diagnosis& d);

// Keeps what the service probes read (the note saved_services reads back); nothing when there is
// nothing. Errors: the file could not be written (with hints).
util::Result<void> save_services(store::RecordingWriter& writer, const RecordedServices& services);

// Writes the window's ticks, and the stacks and the load when there are some; the probes' polls
// (services.polls) each with the first tick at or after it. Errors: the file
// could not be written (with hints).
util::Result<void> save_window(store::RecordingWriter& writer, const model::Samples& samples,
                               const std::optional<VerdictStacks>& stacks, const RecordedLoad& load,
                               const RecordedRunCost& cost, const RecordedServices& services);

// The target kinds of a recording that holds a run alone, with no samples: a load run (chokepoint
// load --record, kept as diagnose --load keeps its load) or a knee run (chokepoint knee --record:
// its JSON report and the text it printed, in the same RecordedLoad shape).
inline constexpr const char* kLoadRunTargetKind = "load";
inline constexpr const char* kKneeRunTargetKind = "knee";

// Writes a run alone: the recording's target is `kind` (kLoadRunTargetKind or kKneeRunTargetKind)
// with `label` (the URLs), and the run is kept as saved_load or saved_knee reads it back. Errors:
// the file could not be written (with hints).
util::Result<void> save_run_alone(store::RecordingWriter& writer, const char* kind,
                                  const std::string& label, const RecordedLoad& run);

// Creates the recording at `path` and saves the run alone in it, then says so on stderr. Throws
// util::FatalError (exit 1) when it cannot be written.
void record_run_alone(const std::string& path, const char* kind, const std::string& label,
                      const RecordedLoad& run);

// The services the probes read over the window (collect/probes), and the notes on services found
// but not probed: kept, so that a replay of the whole recording re-runs the service rules.
RecordedServices saved_services(const store::RecordingReader& reader);

// The services over [from_ns, to_ns] (monotonic ns) of a recording: folded from its probe series
// (schema 5) when it has one and the window is not the whole recording or the summary note is
// missing (a recorder killed with SIGKILL), else the summary note (the live report's own). The
// notes on services found but not probed come from the note. Throws util::FatalError (exit 1)
// when a probe poll of the window is damaged.
RecordedServices window_services(const store::RecordingReader& reader, std::int64_t from_ns,
                                 std::int64_t to_ns, bool whole);

// A sink that writes each tick, then the probe polls made since (ProbeRunner::take_polls), so
// that a recording keeps the probes' series as it goes (chokepoint record).
class ProbePollWriter {
 public:
  ProbePollWriter(store::RecordingWriter& writer,
                  std::function<std::vector<model::ServicePoll>()> take)
      : writer_(writer), take_(std::move(take)) {}
  // Writes the polls made since the last call; a failure is said once and counted.
  void flush();
  std::uint64_t polls_written() const { return written_; }
  std::uint64_t polls_lost() const { return lost_; }

 private:
  store::RecordingWriter& writer_;
  std::function<std::vector<model::ServicePoll>()> take_;
  std::uint64_t written_ = 0, lost_ = 0;
};

// The tiers of a multi-tier diagnose --record (several --pid, or --cgroup PATH --tiers): their
// root pids in the report's order, kept so that a replay diagnoses the same tiers
// (monitor/tier_window.h). Nothing is written for an empty list. Errors: the file could not be
// written (with hints).
util::Result<void> save_tier_roots(store::RecordingWriter& writer, const std::vector<int>& roots);

// The tier roots a diagnose --record kept; empty for a one-target recording (or a damaged note).
std::vector<int> saved_tier_roots(const store::RecordingReader& reader);

// The stacks a multi-tier diagnose --record took after its window for each tier's verdict, by the
// tier's root pid (tiers whose stacks have no source are left out), kept so that a replay of the
// whole recording gives each tier's stack evidence as the live run did. The note
// "diagnose_tier_stacks": {"tiers": [{"root": PID, "stacks": {as the "diagnose_stacks" note}}]}.
// Nothing is written when no tier has stacks. Errors: the file could not be written (with hints).
util::Result<void> save_tier_stacks(store::RecordingWriter& writer,
                                    const std::map<int, VerdictStacks>& stacks);

// The tier stacks a diagnose --record kept, by root pid; empty when there are none. A damaged
// tier's entry is left out (a recording is a hostile file).
std::map<int, VerdictStacks> saved_tier_stacks(const store::RecordingReader& reader);

// The run cost a diagnose --record kept; zeros when there is none.
RecordedRunCost saved_run_cost(const store::RecordingReader& reader);

// Whether the recording is one diagnose --record kept (its run's cost note), as opposed to one
// chokepoint record made over time.
bool is_diagnosis_recording(const store::RecordingReader& reader);

// The stacks a diagnose --record kept, nullopt when there are none (or the note is damaged).
std::optional<VerdictStacks> saved_stacks(const store::RecordingReader& reader);

// The load a diagnose --load --record (or load --record) kept; json is null when there was none.
RecordedLoad saved_load(const store::RecordingReader& reader);

// The knee run a knee --record kept; json is null when there was none.
RecordedLoad saved_knee(const store::RecordingReader& reader);

}  // namespace chokepoint::app
