#pragma once
// The exact mode's kernel half: an eBPF program (src/bpf/stateacct.bpf.c) on sched_switch and
// sched_waking (tp_btf) that sums, for each thread of the target processes, its blocked time per
// (state, system call, wait object) and its run-queue time, in the kernel; the system call and
// its object are read from the registers saved at kernel entry when the thread leaves the CPU.
// The run-queue time after a wakeup from a futex block is summed too (kind 3, under the block's
// call and word), and, when asked (StateAccountingOptions::file_calls), a target thread's time on
// the CPU inside a file system call on a regular file (kind 5, syscall_nr -1, object the fd; from
// the thread's first such call after create(), whether or not it has left a CPU since): from
// fentry/fexit on the 15 calls' entry points where the kernel accepts BPF trampolines (no
// other system call pays anything), else, if allowed, from raw_syscalls sys_enter/sys_exit (every
// system call of the host takes the traced path: getppid 166 -> 470 ns here). Which hook ran,
// and why a cheaper one did not, is file_hook() and file_hook_problem().
// Nothing is streamed per event: the sums, the wait-for edges and the threads' phases are in
// mmapable BPF arrays (a hash maps each key to its entry), so read() and read_edges() read them in
// place, with no system call and no copy, and pass on only the sums that changed.
//
// Each wakeup of a target thread also counts a wait-for edge (waker, wakee, call, object) with
// the blocked time it ended (read_edges()).
//
// The kernel's tables are fixed in size (STATEACCT_MAX_SUMS, STATEACCT_MAX_EDGES in
// src/bpf/stateacct.h); what does not fit is counted as lost. Entries are given back when their
// thread ends (forget()), and, once a table is more than half in use, when they did not change
// for two reads: the totals live on here, and a key met again adds to the same total. So keys
// that come and go (waits on ever new futex words) do not fill a table while the live ones fit.
//
// Cost: on every context switch and wakeup in the system, a task-local storage lookup of the
// tasks involved (whether each is a target is looked up in a hash once per task and per change of
// the target set); for target threads an array lookup of their phase, one hash update of the
// sum where a phase ends, and one of the wait-for edge at a wakeup. Above `budget_per_cpu_s`
// blocks ending per CPU per second the program thins by length where a block ends: a block longer
// than a threshold (set per CPU every 10 ms so that about the budget are kept) is accounted as it
// is, a shorter one with probability its length / the threshold, weighed by the inverse. The sums
// stay unbiased, a long wait is never thinned out, and a thinned-out block costs its start and
// one test (stateacct.bpf.c's thin_block).
//
// Thread-safety: one thread uses a tracer.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/result.h"

namespace chokepoint::collect::bpf {

// How to time the target's file system calls on the CPU (kind 5 sums).
enum class FileCallTiming : std::uint8_t {
  kOff,        // not at all: neither hook is loaded
  kCheapOnly,  // fentry/fexit where the kernel accepts them, else not at all (diagnose's auto)
  kAny,        // fentry/fexit, else raw_syscalls sys_enter/sys_exit (an explicit --mode exact)
};

// The hook that times them.
enum class FileCallHook : std::uint8_t { kNone, kFentry, kRawSyscalls };
// "fentry", "raw_syscalls", "none".
std::string_view file_call_hook_name(FileCallHook hook);

struct StateAccountingOptions {
  // Blocks ending per CPU per second accounted in full; 0: every one, whatever the rate.
  std::uint32_t budget_per_cpu_s = 5'000;
  // Count the wait-for edges (read_edges()); off only to measure what they cost.
  bool wake_edges = true;
  // Time the target's file system calls on the CPU (kind 5 sums): see FileCallTiming. The hooks
  // not chosen are not even loaded.
  FileCallTiming file_calls = FileCallTiming::kOff;
};

// One entry of the kernel's sums (see src/bpf/stateacct.h): kind is enum stateacct_kind.
struct StateSum {
  int pid = 0;
  int tid = 0;
  std::uint64_t start_time_ticks = 0;  // the thread's start (/proc/PID/task/TID/stat field 22)
  int kind = 0;
  long syscall_nr = -1;
  std::uint64_t object = 0;  // a futex word without how it was waited on (futex_how)
  std::uint64_t ns = 0;
  std::uint64_t count = 0;
  // For a futex wait: how the thread waited (src/bpf/stateacct.h's STATEACCT_FUTEX_*, the op and
  // value the kernel read at the switch-out); 0 for anything else.
  std::uint8_t futex_how = 0;
};

// One entry of the kernel's wait-for edges (issue 15): target thread wakee_tid, blocked in
// (syscall_nr, object), was woken by waker_tid; waker_kind is enum stateacct_waker (0 a thread,
// 1 a kernel thread, 2 an interrupt: stateacct.h). ns: the blocked time those wakeups ended.
struct WakeEdgeSum {
  int waker_pid = 0;
  int waker_tid = 0;
  int wakee_pid = 0;
  int wakee_tid = 0;
  long syscall_nr = -1;
  int waker_kind = 0;
  std::uint64_t object = 0;
  std::uint64_t ns = 0;
  std::uint64_t count = 0;
};

struct StateAccountingStats {
  std::uint64_t switches = 0;     // target switch-outs seen
  std::uint64_t thinned_out = 0;  // blocks not accounted (thinned out)
  std::uint64_t lost = 0;         // intervals or threads that did not fit the maps
  // The largest thinning threshold used: blocks shorter were thinned (0: none was).
  std::uint64_t thin_below_ns_max = 0;
  // Times a thread's accumulated blocks went into the sums' hash (a new wait with every
  // accumulator in use, or the thread's exit): the rest of its blocks cost no hashing.
  std::uint64_t sums_hashed = 0;
};

class StateAccounting {
 public:
  // Loads and attaches the programs. Errors (each with a hint): built without BPF, no BTF, not
  // root (or unprivileged BPF disabled), a program the kernel refuses.
  static util::Result<std::unique_ptr<StateAccounting>> create(
      const StateAccountingOptions& options);
  ~StateAccounting();
  StateAccounting(const StateAccounting&) = delete;
  StateAccounting& operator=(const StateAccounting&) = delete;

  // The target processes are exactly `tgids` from now on (at most 4,096).
  util::Result<void> set_targets(const std::vector<int>& tgids);
  // The sums of the target's threads that changed since the last read (the first read: every
  // one), cumulative, with the phases still open added up to the read (so a thread blocked for
  // the whole window has its wait so far). Unsorted. The kernel keys a futex wait by its word and
  // how the thread waited; here by the word, with the latest how in futex_how.
  std::vector<StateSum> read();
  // The wait-for edges into the target's threads that changed since the last read_edges(),
  // cumulative (weighted as the sums), keyed by the futex word as the sums are. Unsorted.
  std::vector<WakeEdgeSum> read_edges();
  // A thread: its id and start time (field 22), which tell a reused thread id from the old one.
  using ThreadId = std::pair<int, std::uint64_t>;
  // Drops the kernel's sums and wait-for edges of threads that ended (their sums were read).
  void forget(const std::vector<ThreadId>& threads);
  StateAccountingStats stats() const;
  std::uint32_t budget_per_cpu_s() const;
  // The hook attached for the file calls (kNone when not asked, or none was allowed that the
  // kernel accepts), and why the cheaper ones were not used ("" when fentry runs or when the file
  // calls were not asked for).
  FileCallHook file_hook() const;
  const std::string& file_hook_problem() const;

 private:
  struct Impl;
  explicit StateAccounting(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace chokepoint::collect::bpf
