#pragma once
// Memory records (collect/bpf/memory_tracer.h) -> profile::Profile (src/profile/profile.h),
// symbolized through symbolize::Symbolizer. Weight::kBytes; each Stack's value is an estimate of
// bytes (sums of sample weights) and its count the sampled allocations behind it.
//
// Stack layout, outermost first: "comm (pid)", then the user frames from main (or
// start_thread) to the allocator's caller: the last frame is the code that allocated.

#include <set>

#include "collect/bpf/memory_tracer.h"
#include "profile/profile.h"
#include "symbolize/symbolizer.h"

namespace chokepoint::collect::bpf {

enum class MemoryView {
  kLive,       // allocated during the window and still live at its end: the leak candidates
  kAllocated,  // allocated during the window, freed or not: where memory is churned
};

struct MemoryProfileOptions {
  MemoryView view = MemoryView::kLive;
  // Pids the caller already attached to the symbolizer while they were alive.
  std::set<int> attached_pids;
};

// REQUIRES: `symbolizer` is used by this thread only for the call's duration.
profile::Profile to_profile(const MemoryResult& result, symbolize::Symbolizer& symbolizer,
                            const MemoryProfileOptions& options = {});

// "one sample per 64 KiB allocated on average" / "every allocation" (for titles and notes).
std::string sampling_text(std::uint64_t sample_period_bytes);

// "/usr/lib/x86_64-linux-gnu/libc.so.6 (glibc), ..." for progress and source lines. Paths come
// from the target's maps: escape them for their output.
std::string allocators_text(const std::vector<ProbedAllocator>& allocators);

}  // namespace chokepoint::collect::bpf
