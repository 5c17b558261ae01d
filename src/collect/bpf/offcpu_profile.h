#pragma once
// Off-CPU records (collect/bpf/offcpu_tracer.h) -> profile::Profile (src/profile/profile.h),
// symbolized through symbolize::Symbolizer. Weight::kNanoseconds, off_cpu = true; each Stack's
// value is the time blocked there and its count the number of blocks.
//
// Stack layout, outermost first:
//   "comm (pid)" ["thread (tid)"] user frames (main .. the libc wrapper) kernel frames
//   (entry_SYSCALL_64 .. schedule): the last frame is where the thread blocked.
// With WakerLayout::kAppended the waker follows, as in Brendan Gregg's offwaketime flame graphs:
//   ... blocked stack ... "--- woken by ---" waker kernel frames (try_to_wake_up .. the syscall
//   entry) waker user frames (the unlock/write/notify call .. main) "waker-comm (pid)"
// i.e. the waker's stack reversed, so that the block and the wakeup meet at the marker: a flame
// graph shows each wait with the code that ended it above it. That layout breaks the "last frame
// is where the time was spent" rule, so use it for flame graphs only, never for --top or
// evidence; kNone (the default) is for those.
//
// A waker that is an interrupt (disk completion, timer, network packet; recognised by interrupt
// entry frames on its kernel stack) is shown by its kernel stack under "[interrupt]": the task it
// interrupted had nothing to do with the wakeup.

#include <set>
#include <string>

#include "collect/bpf/offcpu_tracer.h"
#include "profile/profile.h"
#include "symbolize/symbolizer.h"

namespace chokepoint::collect::bpf {

enum class WakerLayout {
  kNone,      // blocked stacks only
  kAppended,  // blocked stack, "--- woken by ---", the waker's stack reversed
};

inline constexpr const char* kWokenByMarker = "--- woken by ---";

struct OffCpuProfileOptions {
  bool thread_frames = false;  // a "thread (tid)" frame below each process frame
  WakerLayout wakers = WakerLayout::kNone;
  // Pids the caller already attached to the symbolizer while they were alive (the targets, at
  // start). Every other pid met (children, wakers in other processes) is attached when first met.
  std::set<int> attached_pids;
};

// REQUIRES: `symbolizer` is used by this thread only for the call's duration.
profile::Profile to_profile(const OffCpuResult& result, symbolize::Symbolizer& symbolizer,
                            const OffCpuProfileOptions& options = {});

// True for the tracer's own kernel frames (the BPF program, bpf_trace_run*, __bpf_trace_*), which
// to_profile drops from the leaf end of kernel stacks.
bool is_tracer_frame(const std::string& kernel_function);

// True when a kernel frame name is an interrupt entry (hard IRQ, IPI, timer or device vector).
bool is_interrupt_entry(const std::string& kernel_function);

}  // namespace chokepoint::collect::bpf
