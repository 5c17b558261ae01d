#pragma once
// The derivation from raw samples (model/samples.h) to an Observation: per-thread intervals and
// their time split, kernel-work attribution, lock waits behind disk IO, process and system
// summaries, and the sources with their hints. Pure: no I/O, no clocks. A live diagnosis builds
// over the in-memory samples of its window; a replay builds over a recording's.

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "model/observation.h"
#include "model/samples.h"

namespace chokepoint::model {

// A part of a recording, in its own monotonic ns. Unset bounds mean the first and the last tick.
struct Window {
  std::optional<std::int64_t> from_ns;
  std::optional<std::int64_t> to_ns;
};

// Builds the observation of `window` from ticks in time order. Ticks before the window only set
// each thread's and process's starting point. An interval in which a thread ran and that crosses
// the window's start is counted from the start (its counters whole: the clamp to wall time in
// add_interval bounds them); quiet time is cut at both ends exactly. Threads still watched at the
// window's end are accounted up to it in the wait they were last seen in.
// An empty window (no tick inside it) gives an observation with no threads.
Observation build_observation(const RecordingInfo& info, const std::vector<Tick>& ticks,
                              const Window& window = {});

// The same, fed one tick at a time (a recording too large to hold): add ticks in time order until
// it returns false (past the window's end), then finish once. The window's bounds must be set
// (the caller knows the recording's first and last tick).
class ObservationBuilder {
 public:
  ObservationBuilder(const RecordingInfo& info, std::int64_t from_ns, std::int64_t to_ns);
  // A window from the first tick added to the last (a live one, whose end is not known yet).
  explicit ObservationBuilder(const RecordingInfo& info);
  ~ObservationBuilder();
  ObservationBuilder(const ObservationBuilder&) = delete;
  ObservationBuilder& operator=(const ObservationBuilder&) = delete;

  bool add(const Tick& tick);
  Observation finish();
  // Cuts the window at `last`, the tick just added: returns the observation from the window's
  // start to last.at_ns, and the builder goes on with the rest of the window, keeping every
  // thread's and process's starting point. One pass over a recording so gives the observations
  // of consecutive windows cut at ticks, each the same as a builder of that window alone, fed
  // every tick from the start, would give (the report's columns); except that the system counters,
  // read now and then rather than at every tick, start from the last read before the window (the
  // rates are over the time between the reads), and a window with no read of its own has none.
  Observation cut_after(const Tick& last);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A sink that builds the observations of live windows as their ticks arrive, so that the
// windows' samples need not be held. One sink serves one sampler for its whole life: every closing
// tick ends a window (its observation waits for finish()) and starts the next one, which goes on
// from where each thread and process was at that tick (collect::sampler::Sampler::run, called
// again, continues the stream). So window N of one sink equals build_observation over the whole
// stream cut to [closing tick N-1, closing tick N] (cut_after's terms), and a single window is
// simply the first.
class ObservationSink : public SampleSink {
 public:
  // The ticks of the next window (only) are also kept in `keep` when it is given.
  explicit ObservationSink(Samples* keep = nullptr);
  ~ObservationSink() override;
  void begin(const RecordingInfo& info) override;
  void add(Tick tick) override;
  // Where the ticks of the next window are kept (nullptr: nowhere); `keep` gets the stream's info.
  void keep_next(Samples* keep);
  // The observation of the window the last closing tick ended, or, when no window has closed
  // since the last call, of the ticks added since (a stream cut off without its closing tick).
  // REQUIRES: begin was called. Once per window.
  Observation finish();

 private:
  Samples* keep_;
  RecordingInfo info_;
  std::unique_ptr<ObservationBuilder> builder_;
  std::optional<Observation> closed_;
};

// Rates and shares over `seconds` between two system samples.
SystemSummary summarize_system(const SystemSample& first, const SystemSample& last, double seconds);

// Which system sources were available in a sample, with hints for the missing ones.
std::vector<Source> system_sources(const SystemSample& sample);

}  // namespace chokepoint::model
