#pragma once
// Stacks over time for `chokepoint record`: the target's on-CPU stacks (perf cpu-clock samples at
// a low rate) and, where eBPF works, its off-CPU stacks with the time blocked and the waker's
// stack, cut into slices (every slice_ns, and one at the end), symbolized when each slice ends
// (while the processes are likely alive: their mappings were snapshotted when first seen, so a
// process that exited since still resolves) and handed over as folded counts for the recording's
// stack tables (store/stack_slices.h).
//
// On-CPU sampling opens one cpu-clock event per CPU, not one per thread: a thousand-thread
// service then costs two events and no per-thread rescans. A cgroup v2 target is filtered by the
// kernel (PERF_FLAG_PID_CGROUP); for a pid, name or command the samples of other processes are
// dropped here (the target's processes are re-resolved every second, as the off-CPU tracer's).
//
// Never fails: a source that cannot run (not root, no BPF, perf_event_paranoid) says why in
// sources(), and the recording goes on without it.
//
// Thread-safety: start() runs a thread of its own; take() may be called from any one other
// thread (the sampler's, through SliceWritingSink) while it runs; stop() from the owner's thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "analysis/verdict.h"
#include "collect/sampler/target.h"
#include "model/observation.h"
#include "model/samples.h"
#include "profile/profile.h"
#include "store/recording.h"
#include "util/clock.h"

namespace chokepoint::app {

// Samples per second per CPU. At 49 Hz a core the target keeps busy yields ~490 samples a 10 s
// slice; the cost is measured in docs/benchmarks.md ("record: stacks over time").
inline constexpr double kDefaultStackRateHz = 49;
inline constexpr std::int64_t kDefaultStackSliceNs = 10 * util::kNsPerSec;
// The sources' names (model::Source), distinct from diagnose's stacks after its window.
inline constexpr const char* kRecordedOnCpuSource = "stacks over time, on-CPU (perf)";
inline constexpr const char* kRecordedOffCpuSource = "stacks over time, off-CPU (eBPF)";

struct StackRecorderOptions {
  collect::sampler::TargetSpec target;
  double frequency_hz = kDefaultStackRateHz;
  std::int64_t slice_ns = kDefaultStackSliceNs;
  bool off_cpu = true;  // also trace off-CPU time (eBPF), when the kernel allows
};

class StackRecorder {
 public:
  // Starts the thread, which opens what can be opened (in the background: the recording does not
  // wait for the BPF programs to load) and samples; sources() says what ran, after stop().
  static std::unique_ptr<StackRecorder> start(const StackRecorderOptions& options);
  ~StackRecorder();  // stop()s
  StackRecorder(const StackRecorder&) = delete;
  StackRecorder& operator=(const StackRecorder&) = delete;

  // The slices finished since the last take(), oldest first.
  std::vector<store::StackSlice> take();
  // Ends the current slice (it is symbolized and queued: take() it after) and joins the thread.
  void stop();
  // kRecordedOnCpuSource and kRecordedOffCpuSource: available, or why not with a hint, and the
  // slices and samples they kept. REQUIRES: stop() was called.
  std::vector<model::Source> sources() const;

  struct State;

 private:
  explicit StackRecorder(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// How the recorder cuts its slices, apart from its sources (a unit test drives it with fakes):
// read(ns) reads the sources for up to ns (0: only what they hold now), cut(from_ns, to_ns) ends a
// slice (symbolizes it). Slices follow each other without gaps until stop; each is read up to its
// end, in steps of at most step_ns, and once more when it ends, however late: a cut that outlasts
// the next slice's length (symbolizing beside CPU hogs took seconds) would otherwise leave that
// slice unread, with nothing and nothing lost, and its samples to the one after.
void run_slices(std::int64_t slice_ns, std::int64_t step_ns, const std::atomic<bool>& stop,
                const std::function<void(std::int64_t ns)>& read,
                const std::function<void(std::int64_t from_ns, std::int64_t to_ns)>& cut);

// The JSON note a recording keeps about its stacks (`note.record_stacks`): the sources, the rate
// and the slice length. Read back by recorded_stack_sources.
std::string stack_sources_note(const std::vector<model::Source>& sources, double frequency_hz,
                               std::int64_t slice_ns);
std::vector<model::Source> recorded_stack_sources(const store::RecordingReader& reader);

// Reading them back (replay, report): the slices of a window of the recording, oldest first.
struct RecordedStacks {
  std::vector<store::StackSlice> on_cpu, off_cpu;
  bool empty() const { return on_cpu.empty() && off_cpu.empty(); }
};

// The slices that overlap [from_ns, to_ns] (monotonic ns, as the ticks). Errors: the stack tables
// are damaged.
util::Result<RecordedStacks> read_recorded_stacks(const store::RecordingReader& reader,
                                                  std::int64_t from_ns, std::int64_t to_ns);

struct TimeSpan {
  std::int64_t from_ns = 0, to_ns = 0;
};

// The slices that overlap any of `spans`, merged into one profile (values summed by stack), its
// title naming `what` and the time it covers; nullopt when no slice overlaps.
std::optional<profile::Profile> merge_slices(const std::vector<store::StackSlice>& slices,
                                             const std::vector<TimeSpan>& spans,
                                             const std::string& what);

// The evidence the recorded stacks give `verdict` over `spans`, as a live diagnose's stacks after
// its window give it (analysis::stack_evidence): the on-CPU slices' hottest code for cpu, the
// off-CPU slices' blocked time under the service's code (and who woke it) for lock, disk,
// network and memory. Empty when no slice of the kind needed overlaps, or for kNone.
std::vector<std::string> recorded_stack_evidence(const RecordedStacks& stacks,
                                                 const std::vector<TimeSpan>& spans,
                                                 analysis::Verdict verdict);

// replay --json's "recorded_stacks": per kind the slices' count, time covered, rate, lost, and
// the merged folded stacks ([frames, value], largest first); null for a kind with no slices.
// nlohmann::json's destructor may allocate, and clang-tidy's bugprone-exception-escape counts
// that as a throw.
nlohmann::json recorded_stacks_json(const RecordedStacks& stacks);

// The recording's sink, with the stacks: forwards every tick to the writer, then writes the
// slices the recorder finished meanwhile (on the sampler's thread, the writer's only user).
class SliceWritingSink : public model::SampleSink {
 public:
  SliceWritingSink(store::RecordingWriter& writer, StackRecorder* stacks)
      : writer_(writer), stacks_(stacks) {}
  void begin(const model::RecordingInfo& info) override { writer_.begin(info); }
  void add(model::Tick tick) override;
  // Writes the slices left (after the sampler ended and stop()).
  void flush();
  std::uint64_t slices_written() const { return written_; }
  std::uint64_t slices_lost() const { return lost_; }

 private:
  store::RecordingWriter& writer_;
  StackRecorder* stacks_;  // null: none
  std::uint64_t written_ = 0, lost_ = 0;
};

}  // namespace chokepoint::app
