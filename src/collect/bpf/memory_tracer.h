#pragma once
// Memory allocations with eBPF uprobes: what the target allocated during a window, by stack, and
// what of it is still live at the end (the user half of src/bpf/memory.bpf.c).
//
//   MemoryOptions options;
//   options.tgids = {pid};
//   auto tracer = MemoryTracer::create(options);   // finds the allocator, loads the programs
//   if (!tracer) print the error and its hint;
//   auto result = (*tracer)->run(&cancel);         // attach, wait duration_ns, detach, read
//   profile::Profile p = to_profile(*result, symbolizer, MemoryView::kLive);  // memory_profile.h
//
// The allocator is the one each process maps: glibc's libc, libjemalloc, libtcmalloc, libmimalloc,
// or the executable itself when it defines malloc (statically linked). Its malloc, calloc,
// realloc, posix_memalign, aligned_alloc, memalign, valloc and free get uprobes (and uretprobes
// for the addresses returned); libc's mmap and munmap too, for anonymous memory the program maps
// itself (the allocator's own mmaps are nested in its calls and not counted twice). No restart,
// no LD_PRELOAD.
//
// Allocations are sampled by bytes (one sample per sample_period_bytes allocated on average, an
// exponential distance as in tcmalloc), each weighed by the inverse of its chance to be sampled,
// so every byte figure is an unbiased estimate and the cost of stacks and maps follows the byte
// rate. The uprobe trap itself is paid on every allocator call (about a microsecond on these VMs).
//
// Thread safety: one thread at a time per tracer. Ownership: the tracer owns the loaded programs,
// the probes and the maps; destroying it detaches and frees them.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "util/result.h"

namespace chokepoint::collect::bpf {

// The default sampling period: one sample per 64 KiB allocated on average. Fine enough that a leak
// of a few MiB is estimated within a few percent, coarse enough that stack walks stay rare.
inline constexpr std::uint64_t kDefaultSamplePeriodBytes = std::uint64_t{64} * 1024;

struct MemoryOptions {
  std::vector<int> tgids;  // the processes to trace (at least one)
  // Mean bytes allocated between samples; 0 samples every allocation (exact, and costly).
  std::uint64_t sample_period_bytes = kDefaultSamplePeriodBytes;
  std::uint64_t duration_ns = 10'000'000'000;  // how long run() traces
  bool trace_mmap = true;  // anonymous mmap/munmap outside the allocator (libc's, uprobes)
  std::uint32_t max_live_samples = 262144;  // sampled allocations alive at once
  std::string proc_root = "/proc";          // where maps are read and binaries reached
};

// One allocator binary probed in one process.
struct ProbedAllocator {
  int tgid = 0;
  std::string kind;                    // "glibc", "jemalloc", "tcmalloc", "mimalloc", "executable"
  std::string path;                    // as the target maps it (relative to its root)
  std::vector<std::string> functions;  // the functions it defines and that are probed
};

struct MemoryCounters {
  std::uint64_t alloc_calls = 0;     // outermost allocator calls and anonymous mmaps seen
  std::uint64_t sampled = 0;         // of those, sampled
  std::uint64_t free_calls = 0;      // free calls seen (outside realloc)
  std::uint64_t frees_matched = 0;   // frees (free, realloc, munmap) of sampled allocations
  std::uint64_t allocs_full = 0;     // sampled allocations lost: the live map was full
  std::uint64_t stats_full = 0;      // sampled allocations not summed: the stack map was full
  std::uint64_t stack_failures = 0;  // sampled allocations without a user stack
};

// One allocating stack of one process. Bytes are estimates (sums of sample weights); samples are
// the sampled allocations behind them. Addresses are innermost first, each a return address (the
// first is the allocator's caller), so symbolize address - 1.
struct MemoryRecord {
  int tgid = 0;
  std::string process_comm;
  std::vector<std::uint64_t> user_addresses;
  int stack_error = 0;  // errno when the stack is missing
  // True when user_addresses[1] is the caller of a frameless allocator wrapper (libstdc++'s
  // operator new), found above the stack pointer and proven to follow a call that leads to that
  // wrapper (collect/bpf/call_site.h): a frame-pointer walk skips that caller.
  bool leaf_caller_added = false;
  std::uint64_t allocated_bytes = 0;  // allocated during the window
  std::uint64_t allocated_samples = 0;
  std::uint64_t freed_bytes = 0;  // of those, freed during the window
  std::uint64_t freed_samples = 0;
  std::uint64_t live_bytes = 0;  // of those, still live at the end: the leak candidates
  std::uint64_t live_samples = 0;
};

struct MemoryResult {
  std::vector<MemoryRecord> records;
  MemoryCounters counters;
  std::vector<ProbedAllocator> allocators;
  double duration_s = 0;  // time attached
  std::uint64_t sample_period_bytes = 0;
  std::uint32_t max_stack_depth = 0;  // stacks this deep may have been cut
  std::vector<std::string> notes;     // what the trace could not see and why
  std::vector<int> exited;            // target processes gone by the end
};

// Whether this build and this kernel can trace allocations, without loading anything. The error
// says what is missing and its hint what to do.
util::Result<void> check_memory_support();

// The allocators `tgid` maps that define malloc and free, and which of the probed functions each
// defines and is probed for. A replacement allocator (jemalloc, tcmalloc, mimalloc) takes the
// allocation functions from libc, which keeps mmap and munmap only. Errors: the process is gone,
// its maps cannot be read, or no allocator is found (a statically linked program without malloc
// symbols, a stripped libc): the message says which binaries were looked at and the hint what to
// do. A process whose only shared object mapped is its dynamic loader (between exec and the
// loader's run) is an error with errno EAGAIN: MemoryTracer::create waits for it, up to 2 s.
util::Result<std::vector<ProbedAllocator>> find_allocators(int tgid,
                                                           const std::string& proc_root = "/proc");

class MemoryTracer {
 public:
  // Finds each target's allocator and loads the programs. Errors: no BPF support in this build,
  // EPERM, no such process, no allocator to probe, the verifier refusing a program.
  static util::Result<std::unique_ptr<MemoryTracer>> create(const MemoryOptions& options);
  ~MemoryTracer();
  MemoryTracer(const MemoryTracer&) = delete;
  MemoryTracer& operator=(const MemoryTracer&) = delete;

  const std::vector<ProbedAllocator>& allocators() const;
  // Whether any target process is still alive (a zombie is not: a launched child that exited
  // stays until it is reaped).
  bool any_target_alive() const;
  // Attaches the probes: tracing starts. Errors: a target exited before, a probe refused.
  util::Result<void> start();
  // Ends the window (the programs stop recording) and reads everything recorded so far. The
  // probes are detached by the destructor (it takes up to a second per probe here: RCU grace
  // periods, waited for in parallel), so symbolize before destroying the tracer.
  util::Result<MemoryResult> stop();
  // start(), wait options.duration_ns (or until *cancel becomes true, or every target exited),
  // stop().
  util::Result<MemoryResult> run(const std::atomic<bool>* cancel = nullptr);

  struct Impl;

 private:
  explicit MemoryTracer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace chokepoint::collect::bpf
