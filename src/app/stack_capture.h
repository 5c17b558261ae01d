#pragma once
// Collecting a target's stacks for one window, shared by `chokepoint profile` (which writes them
// out) and `chokepoint diagnose` (which turns the verdict's stacks into evidence):
//   capture_on_cpu:  perf_event_open samples (collect/perf) -> profile::Profile of samples
//   capture_off_cpu: eBPF blocked time (collect/bpf)       -> profile::Profile of nanoseconds
//   capture_memory:  eBPF allocator uprobes (collect/bpf)  -> profile::Profile of bytes
// Both symbolize while the target is alive (processes are attached when first seen) and follow
// processes of the target that start during the window. Errors carry hints; a target that exits
// mid-window is not an error (target_exited is set and what was collected is kept).
//
// Thread-safety: the caller's thread only; `stop` may be set from a signal handler.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "collect/bpf/memory_profile.h"
#include "collect/bpf/offcpu_profile.h"
#include "collect/perf/perf_sampler.h"
#include "collect/sampler/target.h"
#include "profile/aggregate.h"
#include "profile/profile.h"
#include "symbolize/dwarf_unwind.h"
#include "symbolize/symbolizer.h"
#include "util/result.h"

namespace chokepoint::app {

// The symbolizer as the aggregator's Resolver. attach() errors are kept: the symbolizer turns
// that pid's lookups into unresolved frames with the reason, and the profile notes the error once.
class SymbolizerResolver : public profile::Resolver {
 public:
  explicit SymbolizerResolver(symbolize::Symbolizer& s) : s_(s) {}
  void attach(int pid) override { note(pid, s_.attach(pid)); }
  profile::Frame user(int pid, std::uint64_t address) override { return s_.user(pid, address); }
  profile::Frame kernel(std::uint64_t address) override { return s_.kernel(address); }
  // Attaches a pid the first time it is seen (during collection, while it is alive).
  void attach_once(int pid) {
    if (attached_.insert(pid).second) attach(pid);
  }
  bool attached(int pid) const { return attached_.count(pid) > 0; }
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  void note(int pid, const util::Result<void>& r);
  symbolize::Symbolizer& s_;
  std::unordered_set<int> attached_;
  std::unordered_set<int> noted_;
  std::vector<std::string> notes_;
};

struct OnCpuCapture {
  profile::Profile profile;  // weight: samples at the requested frequency
  collect::perf::PerfInfo info;
  collect::perf::PerfRunStats stats;
  std::size_t distinct_stacks = 0;
  std::int64_t build_start_ns = 0;  // when symbolizing began (for cost lines)
  bool cut_short = false;           // ended at end_ns, before duration_ns
  // DWARF mode (options.user_stack_bytes > 0): how the user stacks unwound, and the median time
  // one unwind took on the sampling thread. Unwinds that stopped early are added to
  // profile.truncated_stacks and explained in profile.notes.
  bool dwarf = false;
  symbolize::UnwindStats unwind;
  double unwind_median_us = 0;
};

// Both captures take end_ns (util::monotonic_ns(), 0: none): the latest the capture may end. When
// opening the events ran late, the capture is shortened to end by then, and a profile note says so
// (a run's deadline, app/run_budget.h). Symbolizing is bounded by the symbolizer passed in
// (symbolize::DeadlineSymbolizer).

// Samples on-CPU stacks. User stacks come from the kernel's frame-pointer callchain, or in DWARF
// mode (options.user_stack_bytes > 0) from symbolize::DwarfUnwinder, run on each sample as it is
// read, while the process is alive. on_open runs once the events are open (for a progress line).
util::Result<OnCpuCapture> capture_on_cpu(
    const collect::perf::PerfOptions& options, bool thread_frames, std::int64_t duration_ns,
    symbolize::Symbolizer& symbolizer, const std::atomic<bool>* stop,
    const std::function<void(const collect::perf::PerfInfo&)>& on_open = {},
    std::int64_t end_ns = 0);

struct OffCpuSettings {
  bool thread_frames = false;
  bool kernel_stacks = true;
  collect::bpf::WakerLayout wakers = collect::bpf::WakerLayout::kNone;
  // Blocks per CPU per second traced in full; above it they are sampled (0: all), see
  // collect::bpf::OffCpuOptions::full_blocks_per_cpu_per_s.
  std::uint32_t full_blocks_per_cpu_per_s = collect::bpf::OffCpuOptions{}.full_blocks_per_cpu_per_s;
  // Also show threads that were blocked for the whole window (they never ran, so the tracer never
  // saw a block end): their syscall and kernel stack from /proc, weighed by the window. Not for
  // a verdict's evidence, where a parked pool thread would outweigh the waits that matter.
  bool whole_window_blocks = false;
};

struct OffCpuCapture {
  profile::Profile profile;      // weight: nanoseconds blocked
  std::uint64_t blocks = 0;      // estimated when blocks were sampled (blocks_measured < blocks)
  std::uint64_t blocked_ns = 0;  // likewise
  std::uint64_t blocks_measured = 0;
  double duration_s = 0;
  std::string attach_kind;
  std::uint64_t min_block_ns = 0;
  bool target_exited = false;
  std::int64_t build_start_ns = 0;
  bool cut_short = false;  // ended at end_ns, before duration_ns
};

// Traces where the target's threads block. on_start runs once the programs are loaded.
util::Result<OffCpuCapture> capture_off_cpu(
    const collect::sampler::TargetSpec& target, const OffCpuSettings& settings,
    std::int64_t duration_ns, symbolize::Symbolizer& symbolizer, const std::atomic<bool>* stop,
    const std::function<void(std::uint64_t min_block_ns)>& on_start = {}, std::int64_t end_ns = 0);

struct MemoryCapture {
  profile::Profile live;       // allocated during the window, still live at its end (bytes)
  profile::Profile allocated;  // allocated during the window (bytes)
  collect::bpf::MemoryCounters counters;
  std::vector<collect::bpf::ProbedAllocator> allocators;
  std::uint64_t sample_period_bytes = 0;
  std::uint64_t live_bytes = 0, allocated_bytes = 0;  // totals (estimates)
  double duration_s = 0;
  bool target_exited = false;
  std::int64_t build_start_ns = 0;
  bool cut_short = false;  // ended at end_ns, before duration_ns
  // The tracer, stopped but with its probes still attached: destroying it detaches them, which
  // takes seconds here (RCU grace periods), so the caller drops it after writing its output.
  std::shared_ptr<collect::bpf::MemoryTracer> tracer;
};

// Traces the target's allocations (processes resolved once, at the start; a command just
// launched is given up to 2 s to map its allocator). The whole host is refused with a hint: the
// probes go into each process's allocator. on_start runs once the probes are attached.
util::Result<MemoryCapture> capture_memory(
    const collect::sampler::TargetSpec& target, std::uint64_t sample_period_bytes,
    std::int64_t duration_ns, symbolize::Symbolizer& symbolizer, const std::atomic<bool>* stop,
    const std::function<void(const std::vector<collect::bpf::ProbedAllocator>&)>& on_start = {},
    std::int64_t end_ns = 0);

}  // namespace chokepoint::app
