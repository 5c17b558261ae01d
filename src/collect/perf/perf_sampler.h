#pragma once
// On-CPU stack sampling with perf_event_open(2): a timer-driven sampling event per target thread
// (or per CPU, filtered by a cgroup v2 group, or for the whole host), each with its own mmap ring
// buffer, user and kernel callchains through frame pointers. With user_stack_bytes set (DWARF
// mode, x86-64 only) each sample also carries the user registers and a copy of the top of the
// user stack (PERF_SAMPLE_REGS_USER, PERF_SAMPLE_STACK_USER) for an unwinder that reads CFI
// (symbolize/dwarf_unwind.h); the callchain then holds kernel frames only
// (exclude_callchain_user, as perf record --call-graph dwarf does).
//
//   auto s = PerfSampler::open(options);          // checks privileges, picks the event, opens it
//   if (!s) { print s.error(); }                  // errors carry a hint (paranoid, EMFILE, ...)
//   auto stats = s->run(5 * kNsPerSec, &stop, sink);  // sink gets every sample as it is read
//
// Event: hardware cycles where the CPU has a PMU, else the software cpu-clock (VMs without
// counters); info() says which. Threads of the target are re-resolved every rescan_interval_ns
// (collect/sampler/target.h), so threads and processes that start during the run are followed;
// samples a new thread takes before it is found are not seen (noted).
//
// Ownership: a PerfSampler owns its fds and mappings; move-only. Not thread-safe: one thread calls
// run(). Nothing is sampled outside run() (events are opened enabled, but rings are only drained
// there; samples taken between open() and run() are read by the first drain).

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "collect/perf/records.h"
#include "collect/sampler/target.h"
#include "util/clock.h"
#include "util/result.h"

namespace chokepoint::collect::perf {

struct PerfOptions {
  sampler::TargetSpec target;  // kPid, kName, kCommand, kCgroup or kHost
  double frequency_hz = 99;    // samples per second per thread while it runs on a CPU
  bool kernel_stacks = true;   // also kernel frames (left out when perf_event_paranoid forbids)
  // Data pages per ring buffer, a power of two; 0 sizes it by the frequency (ring_pages_for).
  std::uint32_t ring_data_pages = 0;
  std::int64_t drain_interval_ns = 50 * util::kNsPerMs;
  std::int64_t rescan_interval_ns = 200 * util::kNsPerMs;
  std::string proc_root = "/proc";  // /proc (and /proc/sys/kernel for the perf sysctls)
  // 0: user stacks through frame pointers (the kernel's callchain). Otherwise DWARF mode: bytes
  // of user stack to copy per sample, a multiple of 8 from 8 to kMaxUserStackBytes.
  std::uint32_t user_stack_bytes = 0;
  // The latest util::monotonic_ns() by which open() stops opening per-thread events (0: none).
  // Opening costs one perf_event_open and one mmap per thread, and beside a CPU-saturated target
  // of thousands of threads that took seconds. Threads not opened by then are opened by run()'s
  // rescans, at most kRescanSliceNs of it per rescan so that the rings keep being drained; they
  // miss the start of the capture, and notes() says how many.
  std::int64_t open_deadline_ns = 0;
};

// The longest one of run()'s rescans spends opening events on threads left over (see
// PerfOptions::open_deadline_ns): half the 200 ms rescan interval.
inline constexpr std::int64_t kRescanSliceNs = 100 * util::kNsPerMs;

// perf's default and the largest stack copy (a sample's size is a u16, so the kernel could not
// fit more; perf record --call-graph dwarf uses the same numbers).
inline constexpr std::uint32_t kDefaultUserStackBytes = 8192;
inline constexpr std::uint32_t kMaxUserStackBytes = 65528;

// The user registers DWARF mode asks for (attr.sample_regs_user), perf's PERF_REG_X86_*
// numbering (<asm/perf_regs.h>): ax, bx, cx, dx, si, di, bp, sp, ip (bits 0-8) and r8-r15
// (bits 16-23), every general-purpose register an x86-64 CFI rule may name. 0 on other
// architectures, where DWARF mode is refused.
#if defined(__x86_64__)
inline constexpr std::uint64_t kUserRegsMask = 0x1ffull | (0xffull << 16);
#else
inline constexpr std::uint64_t kUserRegsMask = 0;
#endif

// Checks a --call-graph dwarf stack size: EINVAL with a hint when it is not a multiple of 8 in
// [8, kMaxUserStackBytes], ENOTSUP when this build is not for x86-64.
util::Result<void> check_user_stack_bytes(std::uint64_t bytes);

// What open() chose, for notes and titles.
struct PerfInfo {
  std::string event_name;       // "cycles" or "cpu-clock"
  bool hardware = false;        // true for cycles
  bool kernel_stacks = false;   // kernel frames requested
  bool per_cpu = false;         // one event per CPU: filtered by a cgroup v2 group
                                // (PERF_FLAG_PID_CGROUP), or the whole host
  std::uint32_t max_stack = 0;  // callchain limit (kernel.perf_event_max_stack)
  int paranoid = 0;             // kernel.perf_event_paranoid
  // DWARF mode: the stack copy per sample and the registers (PerfOptions::user_stack_bytes,
  // kUserRegsMask); both 0 in frame-pointer mode.
  std::uint32_t user_stack_bytes = 0;
  std::uint64_t regs_user_mask = 0;
};

struct PerfRunStats {
  RecordStats records;                 // samples, lost, truncated, throttled, malformed
  std::uint64_t threads_followed = 0;  // threads (or CPUs in cgroup mode) an event was opened on
  std::uint64_t threads_failed = 0;    // threads we could not open an event on (EACCES, EMFILE)
  // Threads whose event was opened during the capture, not before it: open() ran out of its
  // deadline (PerfOptions::open_deadline_ns). They are in threads_followed too.
  std::uint64_t threads_opened_late = 0;
  std::uint64_t threads_never_opened = 0;  // still waiting for an event when the capture ended
  bool target_exited = false;              // every target process was gone before the end
  double duration_s = 0;                   // time actually sampled
};

// Called for every sample in the order read; names are the process's and the thread's comm
// (empty when unknown). The Sample is only valid during the call.
using SampleSink = std::function<void(const Sample& sample, std::string_view process_name,
                                      std::string_view thread_name)>;

class PerfSampler {
 public:
  // Checks the privileges (kernel.perf_event_paranoid, CAP_PERFMON / CAP_SYS_ADMIN), the frequency
  // (kernel.perf_event_max_sample_rate) and the target, picks the event, and opens it on every
  // thread of the target (or every CPU for a cgroup v2 target). Errors: EINVAL for a frequency
  // the kernel refuses (a usage error), ESRCH for a target that does not exist, EACCES/EPERM with
  // the paranoid level and what to do, ENOENT/EOPNOTSUPP when no usable event exists, EMFILE.
  static util::Result<PerfSampler> open(const PerfOptions& options);

  PerfSampler(PerfSampler&&) noexcept;
  PerfSampler& operator=(PerfSampler&&) noexcept;
  PerfSampler(const PerfSampler&) = delete;
  PerfSampler& operator=(const PerfSampler&) = delete;
  ~PerfSampler();

  // Samples for duration_ns, or until *stop (may be null) turns true, or until every target
  // process has exited (target_exited; what was collected so far is still delivered). An error
  // is returned only when nothing can go on (EMFILE while the only events fail); threads that
  // vanish are dropped quietly.
  util::Result<PerfRunStats> run(std::int64_t duration_ns, const std::atomic<bool>* stop,
                                 const SampleSink& sink);

  const PerfInfo& info() const;
  // Plain sentences about what this run cannot see and why (event fallback, no kernel frames,
  // threads not followed, cgroup v1 fallback, throttling).
  std::vector<std::string> notes() const;

 private:
  struct Impl;
  explicit PerfSampler(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Data pages per ring buffer for a frequency: room for four drain intervals of samples, at least
// 16 pages (64 KiB, plenty at 99 Hz), at most 4096 (16 MiB at 4 KiB pages). user_stack_bytes
// (DWARF mode) adds the stack copy and the registers to every sample.
std::uint32_t ring_pages_for(double frequency_hz, std::int64_t drain_interval_ns,
                             std::size_t page_bytes, std::uint32_t user_stack_bytes = 0);

// Parses the CapEff line of /proc/self/status: true when CAP_PERFMON (38) or CAP_SYS_ADMIN (21)
// is effective, which lifts the perf_event_paranoid limits.
bool caps_allow_perf(std::string_view proc_self_status);

}  // namespace chokepoint::collect::perf
