#pragma once
// Every target thread's scheduler counters in one read(): a BPF task iterator (iter/task, Linux
// 5.8+ with BTF) writes a fixed-size record per thread (src/bpf/taskiter.h), and user space reads
// the iterator's fd once per tick instead of one pread of /proc/TID/schedstat per thread.
//
// The counters are the kernel's own fields behind /proc: sum_exec_runtime and run_delay are
// /proc/TID/schedstat's first two fields (the same numbers, not an estimate), start_boottime is
// /proc/TID/stat's starttime in ns.
//
// One loaded program per process: every TaskIterator alive shares it (shared_object.h: the load
// parses the kernel's BTF, about 100 ms of CPU), each with links of its own, so what one reads is
// not changed by the others (its processes, or the host).
//
// Thread-safety: one thread uses an iterator; iterators on several threads are independent.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "util/result.h"

namespace chokepoint::collect::bpf {

// One thread, as the iterator saw it (units converted at this edge).
struct TaskRecord {
  int tgid = 0;
  int tid = 0;
  std::uint32_t state = 0;  // task->__state: 0 running or runnable, 1 S, 2 D, 4 T, 8 t, ...
  // /proc/TID/stat's state letter (3), derived from __state and exit_state as the kernel's
  // task_state_index does: R S D T t X Z P I.
  char state_letter = '?';
  // The state when the reading thread last got its CPU (taskiter.bpf.c's state_at): a read
  // takes a CPU from the target, and on a busy host the states it finds later in the walk are
  // less often the blocks they were when it woke. 0, 1 (S) or 2 (D), corrected from the
  // scheduler's clocks; else `state` (a task on a CPU, a kernel without the fields).
  std::uint32_t state_at_arrival = 0;
  char state_letter_at_arrival = '?';
  bool kernel_thread = false;
  std::string comm;  // task->comm, as the kernel holds it (hostile: escape before printing)
  std::uint64_t start_time_ticks = 0;  // /proc/TID/stat's starttime (22), in USER_HZ ticks
  std::uint64_t run_ns = 0;            // schedstat (1): time on a CPU
  std::uint64_t run_delay_ns = 0;      // schedstat (2): time runnable, waiting for a CPU
  std::uint64_t timeslices = 0;        // schedstat (3): times it ran
  std::uint64_t utime_ns = 0;          // task->utime (not /proc's cputime_adjust'ed split)
  std::uint64_t stime_ns = 0;
  std::uint64_t majflt = 0;
  // Time blocked on block IO (delay accounting), in /proc's clock ticks as stat's field 42 has
  // it, converted to ns: 0 when delay accounting is off.
  std::uint64_t blkio_delay_ns = 0;
  // The user registers: what /proc/TID/syscall prints for a thread that is not running.
  std::int64_t syscall_nr = -1;  // the system call it is in; -1: none (kernel thread, a fault)
  std::array<std::uint64_t, 6> args{};
  std::uint64_t sp = 0, pc = 0;
};

// /proc's state letter for a task's __state and exit_state (task_state_index in
// include/linux/sched.h, Linux 6.x).
char state_letter(std::uint32_t state, std::uint32_t exit_state);

// The size of one record in the iterator's output.
std::size_t task_record_bytes();

// Decodes the iterator's output into `out` (replaced). `ticks_per_s` is USER_HZ
// (sysconf(_SC_CLK_TCK)), /proc's unit for start times. Errors: a length that is not a whole
// number of records (a truncated read). The layout is taskiter.h's, little-endian, on any build
// (BPF or not).
util::Result<void> parse_task_records(const std::vector<std::uint8_t>& bytes, long ticks_per_s,
                                      std::vector<TaskRecord>& out);

class TaskIterator {
 public:
  // Loads the iter/task program, unless another iterator of the process holds it loaded, and
  // attaches it. Errors: no BPF in the build, no BTF, not root, a kernel without task iterators
  // (before 5.8); each with a hint.
  static util::Result<std::unique_ptr<TaskIterator>> create();
  ~TaskIterator();
  TaskIterator(const TaskIterator&) = delete;
  TaskIterator& operator=(const TaskIterator&) = delete;

  // How many times the process loaded the program (0 without BPF): a test's check that
  // iterators alive at once share it.
  static std::uint64_t loads();
  // The kernel's id of the loaded program (bpf_prog_info.id; 0 when it cannot be read): the same
  // for every iterator alive at once.
  std::uint32_t program_id() const;

  // Which threads read() returns: every task on the host, or only those of the watched
  // processes (the default: none until watch()).
  void set_all_tasks(bool all);
  // Adds a process to the watched set: an iterator link of its own, which walks its threads
  // only. Errors: a kernel without the iterator's pid option (before 6.1).
  util::Result<void> watch(int tgid);
  void unwatch(int tgid);

  // One pass over the tasks: replaces `out` with a record per selected thread. Errors: the
  // iterator cannot be created or read (the caller falls back to /proc).
  util::Result<void> read(std::vector<TaskRecord>& out);

 private:
  struct Impl;
  explicit TaskIterator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace chokepoint::collect::bpf
