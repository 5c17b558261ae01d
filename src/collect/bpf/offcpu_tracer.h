#pragma once
// Off-CPU tracing with eBPF: where the target's threads block, for how long, with which user and
// kernel stack, and which thread woke them (the user half of src/bpf/offcpu.bpf.c).
//
//   OffCpuOptions options;
//   options.tgids = {pid};
//   auto tracer = OffCpuTracer::create(options);       // loads (the verifier runs here)
//   if (!tracer) print the error and its hint;
//   auto result = (*tracer)->run(&cancel);             // attach, wait duration_ns, detach, read
//   profile::Profile p = to_profile(*result, symbolizer);  // collect/bpf/offcpu_profile.h
//
// Everything is summed in the kernel (one map entry per distinct blocked stack); user space reads
// the maps once, at the end, so the cost follows the context-switch rate, not the run's length.
// What counts as off-CPU: a target thread switched out in TASK_INTERRUPTIBLE or
// TASK_UNINTERRUPTIBLE (sleeping on a lock, IO, a timer, a socket...), from that switch-out to its
// wakeup. A runnable thread (preempted, or woken and waiting for a core) is CPU wait, not off-CPU
// (see docs/offcpu.md).
//
// Thread safety: one thread at a time per tracer. Ownership: the tracer owns the loaded programs
// and maps (a libbpf skeleton); destroying it detaches and frees them.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "util/result.h"

namespace chokepoint::collect::bpf {

struct OffCpuOptions {
  // Whom to trace. tgids (processes; every thread of each) and cgroup_path are exclusive; both
  // empty traces every task except the idle tasks.
  std::vector<int> tgids;
  std::string cgroup_path;  // a cgroup v2 directory: the tasks in it and in its descendants
  // Blocks shorter than this are not counted (they still pay for their stack walk).
  std::uint64_t min_block_ns = 10'000;
  // How long run() traces.
  std::uint64_t duration_ns = 10'000'000'000;
  // Record the waker's stacks for each block (sched_waking), so lock waits show the holder.
  bool waker_stacks = true;
  // What each block records. Stack walks are most of the cost per context switch.
  bool kernel_stacks = true;
  bool user_stacks = true;
  bool leaf_callers = true;  // recover the caller of a frameless libc wrapper (see the .bpf.c)
  // Reuse a thread's last stack ids while its user registers and top two frame-pointer frames are
  // unchanged (same call site, same depth), instead of walking again: a walk costs microseconds.
  // A stack that differs only deeper than two frames is then counted under the cached one.
  bool cache_stacks = true;
  // Also reuse the blocked side's kernel stack on a cache hit. Off by default: the same call site
  // can block in different kernel paths (an fsync waiting on the journal or on writeback), and
  // that difference is the evidence. The waker's kernel stack is always reused on a hit.
  bool cache_block_kernel_stacks = false;
  // The kernel stack of an interrupt that wakes a thread (a disk completion's flush_end_io, a
  // timer). Off: such wakers show as [interrupt] alone.
  bool interrupt_waker_stacks = true;
  // Blocks per CPU per second traced in full (0: every block). Above it, the next 10 ms window
  // on that CPU traces each block with probability 1/N (N from the last window's rate, at most
  // 256) and weighs it by N: totals and counts become unbiased estimates, and the cost per CPU
  // stays near this budget's (a block costs two stack captures, microseconds each). The default
  // keeps tracing exact up to 2,000 blocks per CPU per second.
  std::uint32_t full_blocks_per_cpu_per_s = 2000;
  // Map sizes. Overflows are counted in OffCpuDrops, never silent.
  std::uint32_t max_stacks = 16384;           // distinct stacks (user and kernel share the map)
  std::uint32_t max_distinct_blocks = 32768;  // distinct (thread, stacks, waker stacks) keys
  std::uint32_t max_blocked_threads = 32768;  // threads blocked at the same time
  std::string proc_root = "/proc";            // where comm and maps are read
};

// Events the kernel side could not record, summed over CPUs.
struct OffCpuDrops {
  std::uint64_t stack_collisions = 0;  // the stack map's bucket held another stack: stack lost
  std::uint64_t stack_failures = 0;    // the kernel could not walk a stack
  std::uint64_t counts_full = 0;       // blocks lost: the summary map was full
  std::uint64_t start_full = 0;        // blocks lost: too many threads blocked at once
  // Not drops: how often the stack signature cache saved a walk (OffCpuOptions::cache_stacks).
  std::uint64_t cache_hits = 0;
  std::uint64_t cache_misses = 0;
  std::uint64_t interrupt_wakeups = 0;  // not drops: wakeups from interrupt context
  // Not drops: blocks traced, and blocks left out by sampling (full_blocks_per_cpu_per_s); the
  // records' totals are scaled to stand for the blocks left out too.
  std::uint64_t blocks_traced = 0;
  std::uint64_t blocks_sampled_out = 0;
};

// One distinct blocked stack of one thread and the time blocked there. Addresses are innermost
// first, as the kernel walks them; each is a return address except a sampled leaf, so callers
// that symbolize should look up address - 1 to stay inside the calling function.
struct OffCpuRecord {
  int tgid = 0;
  int tid = 0;
  std::string comm;          // thread name at its first block
  std::string process_comm;  // the process's name (/proc/TGID/comm at the end; comm if gone)
  std::vector<std::uint64_t> user_addresses;
  std::vector<std::uint64_t> kernel_addresses;
  int user_stack_error = 0;    // errno when the user stack is missing (ENOENT: kernel thread)
  int kernel_stack_error = 0;  // errno when the kernel stack is missing
  // True when user_addresses[1] is the caller of a frameless leaf (a libc syscall wrapper), found
  // on the stack above the stack pointer and proven to follow a call that leads to the leaf
  // (collect/bpf/call_site.h; a stale return address on a reused stack is not): a frame pointer
  // walk skips that caller.
  bool leaf_caller_added = false;

  // Who woke the thread (sched_waking); woken is false for missed wakeups and signals. An
  // interrupt (a timer for sleeps and timeouts, a disk completion, a packet) has no task: then
  // waker_in_interrupt is set, waker_tgid/tid are 0 and only the kernel stack is known.
  bool woken = false;
  bool waker_in_interrupt = false;
  int waker_tgid = 0;
  int waker_tid = 0;       // 0: the kernel side sums wakers per process, not per thread
  std::string waker_comm;  // the name of the first waker thread seen for this key
  std::vector<std::uint64_t> waker_user_addresses;
  std::vector<std::uint64_t> waker_kernel_addresses;

  // Time blocked, summed over `count` blocks. When blocks were sampled (see
  // OffCpuDrops::blocks_sampled_out) both are estimates: each traced block weighs 1/its chance.
  std::uint64_t total_ns = 0;
  std::uint64_t count = 0;
  std::uint64_t measured = 0;  // blocks actually traced (count without the sampling's scaling)
};

struct OffCpuResult {
  std::vector<OffCpuRecord> records;
  OffCpuDrops drops;
  double duration_s = 0;    // time attached
  std::string attach_kind;  // "tp_btf" or "raw_tp": which program type the kernel accepted
  std::uint64_t min_block_ns = 0;
  std::uint32_t max_stack_depth = 0;  // stacks this deep may have been cut
  std::vector<std::string> notes;     // what the trace could not see and why
};

// Whether this build and this kernel can trace off-CPU time, without loading anything. The error
// says what is missing (a build without BPF, no BTF, not root, unprivileged BPF disabled) and its
// hint what to do.
util::Result<void> check_offcpu_support();

class OffCpuTracer {
 public:
  // Opens and loads the programs (tp_btf, falling back to raw_tp when the kernel refuses it) and
  // fills the target map. Errors: no BPF support in this build, no BTF, EPERM (not root,
  // unprivileged BPF disabled), the memlock limit, the verifier rejecting a program (its log's
  // last lines are in the message), a bad cgroup.
  static util::Result<std::unique_ptr<OffCpuTracer>> create(const OffCpuOptions& options);
  ~OffCpuTracer();
  OffCpuTracer(const OffCpuTracer&) = delete;
  OffCpuTracer& operator=(const OffCpuTracer&) = delete;

  // Adds a process to trace (e.g. a child the target started). REQUIRES: created with tgids.
  util::Result<void> add_target(int tgid);
  // Attaches the programs: tracing starts.
  util::Result<void> start();
  // Detaches and reads everything summed so far. The tracer can be started again; its maps keep
  // accumulating.
  util::Result<OffCpuResult> stop();
  // Reads what was summed since the last drain() (or the start) and removes it from the kernel's
  // map, while the programs stay attached: a long trace cut into slices (chokepoint record) that
  // never fills the map with old blocks. duration_s is the time attached since the last drain.
  // Drops and stack collisions stay cumulative. REQUIRES: started.
  util::Result<OffCpuResult> drain();
  // start(), wait options.duration_ns (or until *cancel becomes true), stop().
  util::Result<OffCpuResult> run(const std::atomic<bool>* cancel = nullptr);

  struct Impl;

 private:
  explicit OffCpuTracer(std::unique_ptr<Impl> impl);
  // The maps' records; take: removing each entry read.
  util::Result<OffCpuResult> read(bool take);
  std::unique_ptr<Impl> impl_;
};

}  // namespace chokepoint::collect::bpf
