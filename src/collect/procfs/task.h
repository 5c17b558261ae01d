#pragma once
// Parsers for the per-task files under /proc/PID and /proc/PID/task/TID: stat, schedstat, status,
// io, syscall, wchan, an fd's link text, limits and cgroup. Each takes the file's text and returns
// the fields the sampler needs in SI units (ns, bytes), or nullopt when the text is malformed.
// They are pure functions: no I/O, never throw, safe on any input, callable from any thread.
// Field numbers in comments are those of proc(5).

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "collect/procfs/text.h"

namespace chokepoint::collect::procfs {

// /proc/PID/task/TID/stat (or /proc/PID/stat, which sums the process's threads).
struct TaskStat {
  std::int32_t pid = 0;                // (1) the thread id for task/TID/stat
  std::string comm;                    // (2) without the parentheses; may hold spaces, ')' and '\n'
  char state = '?';                    // (3) R S D Z T t X I ...
  std::int32_t ppid = 0;               // (4)
  std::uint64_t minflt = 0;            // (10) minor faults
  std::uint64_t majflt = 0;            // (12) major faults (had to read from disk)
  std::uint64_t utime_ns = 0;          // (14) user time
  std::uint64_t stime_ns = 0;          // (15) system time
  std::int64_t priority = 0;           // (18)
  std::int64_t nice = 0;               // (19)
  std::int64_t num_threads = 0;        // (20)
  std::uint64_t start_time_ticks = 0;  // (22) since boot, in clock ticks: with pid, the identity
  std::uint64_t start_time_ns = 0;     // (22) the same, in ns since boot
  std::uint64_t vsize_bytes = 0;       // (23)
  std::uint64_t rss_bytes = 0;         // (24) rss pages * page size
  std::optional<std::int32_t> processor;  // (39) CPU last run on; absent on very old kernels
  // (42) delayacct_blkio_ticks: time blocked on block IO. Absent before 2.6.18; 0 when delay
  // accounting is off (kernel.task_delayacct=0, the default since 5.14).
  std::optional<std::uint64_t> delayacct_blkio_ns;
};
std::optional<TaskStat> parse_task_stat(std::string_view text, const Units& units);

// /proc/PID/task/TID/schedstat: the scheduler's exact counters (needs CONFIG_SCHED_INFO).
struct Schedstat {
  std::uint64_t run_ns = 0;        // time on a CPU
  std::uint64_t run_delay_ns = 0;  // time runnable, waiting on a run queue
  std::uint64_t timeslices = 0;    // times it was scheduled in
};
std::optional<Schedstat> parse_schedstat(std::string_view text);

// /proc/PID/status: the fields worth having. Kernel threads have no Vm* lines (no mm).
struct TaskStatus {
  std::string name;  // Name: the comm's raw bytes (the kernel's "\n" and "\\" escapes undone)
  char state = '?';  // State: first letter
  std::int32_t tgid = 0;
  std::int32_t pid = 0;
  std::int32_t ppid = 0;
  std::uint32_t uid = 0;  // Uid: the real uid (first of four)
  std::optional<std::uint64_t> vm_rss_bytes;
  std::optional<std::uint64_t> vm_hwm_bytes;  // peak RSS
  // RssAnon (4.5+): anonymous memory (heap, stacks), where a leak grows; file pages mapped from
  // the page cache are in VmRSS but are reclaimable cache, not a leak.
  std::optional<std::uint64_t> rss_anon_bytes;
  std::optional<std::uint64_t> vm_lck_bytes;  // VmLck: mlock()ed memory (RLIMIT_MEMLOCK's use)
  std::optional<std::uint64_t> vm_stk_bytes;  // VmStk: the main thread's stack (RLIMIT_STACK's)
  std::uint64_t cap_eff = 0;  // CapEff: effective capabilities, bit N for capability N
  std::int64_t threads = 0;
  std::uint64_t voluntary_ctxt_switches = 0;     // blocked (gave up the CPU)
  std::uint64_t nonvoluntary_ctxt_switches = 0;  // preempted
};
// Requires Name, State, Tgid, Pid, PPid and Uid; the others are taken when present.
std::optional<TaskStatus> parse_task_status(std::string_view text);

// /proc/PID/io (reading another user's task needs ptrace-read permission).
struct TaskIo {
  std::uint64_t rchar = 0;        // bytes passed to read()-like calls, cache hits included
  std::uint64_t wchar = 0;        // bytes passed to write()-like calls
  std::uint64_t syscr = 0;        // read syscalls
  std::uint64_t syscw = 0;        // write syscalls
  std::uint64_t read_bytes = 0;   // bytes really fetched from storage
  std::uint64_t write_bytes = 0;  // bytes caused to be written to storage (at dirtying time)
  std::uint64_t cancelled_write_bytes = 0;  // dirtied then truncated: never written
};
// All seven fields are required.
std::optional<TaskIo> parse_task_io(std::string_view text);

// /proc/PID/task/TID/syscall: what the task is doing in the kernel right now.
struct SyscallState {
  enum class Kind {
    kRunning,       // "running": on a CPU, so no stable answer
    kNotInSyscall,  // "-1 sp pc": blocked, but not in a system call (e.g. a page fault)
    kInSyscall,     // "nr a1..a6 sp pc": blocked in system call nr
  };
  Kind kind = Kind::kRunning;
  std::int64_t nr = -1;  // the syscall number (x86_64 table on this host), -1 unless kInSyscall
  std::array<std::uint64_t, 6> args{};  // zero unless kInSyscall
  std::uint64_t sp = 0;                 // user stack pointer (0 when running)
  std::uint64_t pc = 0;                 // user program counter (0 when running)
};
std::optional<SyscallState> parse_syscall(std::string_view text);

// /proc/PID/task/TID/wchan: the kernel function the task sleeps in. "0" (not sleeping, or not
// allowed to see) reads as the empty string. Never fails: any text is a symbol name.
std::string parse_wchan(std::string_view text);

// /proc/PID/task/TID/stack (root only): the kernel functions of a blocked task, innermost first,
// from lines "[<0>] futex_wait_queue+0xe1/0x120" (offsets dropped). Lines without a name are
// skipped; never fails.
std::vector<std::string> parse_kernel_stack(std::string_view text);

// readlink(/proc/PID/fd/N): what an fd refers to.
struct FdTarget {
  enum class Kind {
    kRegularFile,  // a path (including "/memfd:..." and files under /dev/shm)
    kSocket,       // "socket:[inode]"
    kPipe,         // "pipe:[inode]" (also FIFOs opened by path read as the path: kRegularFile)
    kEventfd,      // "anon_inode:[eventfd]"
    kEpoll,        // "anon_inode:[eventpoll]"
    kTimerfd,      // "anon_inode:[timerfd]"
    kSignalfd,     // "anon_inode:[signalfd]"
    kAnonOther,    // any other "anon_inode:..." (inotify, io_uring, bpf-map, pidfd, ...)
    kDevice,       // a path under /dev/ other than /dev/shm/
    kOther,        // anything else ("net:[...]", "mnt:[...]", ...)
  };
  Kind kind = Kind::kOther;
  std::uint64_t inode = 0;  // for "type:[inode]" links (socket, pipe, ...), else 0
  std::string path;         // the link text, without a trailing " (deleted)"
  bool deleted = false;     // the link ended in " (deleted)"
};
// Returns nullopt only for empty text.
std::optional<FdTarget> parse_fd_target(std::string_view link_text);
std::string_view fd_kind_name(FdTarget::Kind kind);

// /proc/PID/fdinfo/N: the fd's open(2) flags, the octal "flags:" line ("flags:\t0100001"), so
// O_DSYNC / O_SYNC can be seen. nullopt when there is no such line or its number does not parse.
std::optional<std::uint32_t> parse_fdinfo_flags(std::string_view text);

// /proc/PID/limits. "unlimited" reads as kUnlimited.
inline constexpr std::uint64_t kUnlimited = UINT64_MAX;
struct Limit {
  std::string name;  // "Max open files"
  std::uint64_t soft = 0;
  std::uint64_t hard = 0;
  std::string units;  // "files", "bytes", ... (empty when the kernel prints none)
};
struct Limits {
  std::vector<Limit> limits;
  const Limit* find(std::string_view name) const;
  const Limit* max_open_files() const { return find("Max open files"); }
};
// Requires the header line and at least one limit.
std::optional<Limits> parse_limits(std::string_view text);

// /proc/PID/cgroup: "hierarchy-ID:controller-list:cgroup-path" per line; cgroup v2 is "0::/path".
struct CgroupEntry {
  std::int32_t hierarchy_id = 0;
  std::vector<std::string> controllers;  // empty for v2 ("0::") and for named v1 hierarchies' ""
  std::string path;
};
std::optional<std::vector<CgroupEntry>> parse_cgroup(std::string_view text);
// The v2 ("0::") entry's path, when there is one.
std::optional<std::string> cgroup_v2_path(const std::vector<CgroupEntry>& entries);

}  // namespace chokepoint::collect::procfs
