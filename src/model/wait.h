#pragma once
// What an off-CPU thread is waiting for, decided from one sample of its state: the scheduler state,
// the syscall it is in (/proc/PID/task/TID/syscall), the kind of fd that syscall works on, and what
// the process's sockets say. Pure: the sampler gathers the observation, this decides.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "model/time_split.h"

namespace chokepoint::model {

// What the fd named by a syscall's argument refers to, as the sampler resolved it.
enum class FdRole : std::uint8_t {
  kUnknown = 0,  // not resolved (no fd argument, fd closed, no permission)
  kRegularFile,
  kBlockDevice,
  kSocketServer,  // a connection accepted from a listening socket of this host: a client of ours
  kSocketClient,  // a connection we opened to someone else's port: an upstream
  kSocketListen,
  kSocketOther,  // unix, udp, netlink, ...
  kPipe,
  kEventfd,
  kTimerfd,
  kSignalfd,
  kEpoll,
  kCharDevice,  // ttys and the like
  kOther,
};

// Where the thread was when sampled.
enum class SyscallWhere : std::uint8_t {
  kUnknown = 0,   // /proc/.../syscall unreadable (permission) or the task vanished
  kRunning,       // "running": on a CPU or runnable
  kNotInSyscall,  // "-1 sp pc": blocked outside a syscall, e.g. in a page fault
  kInSyscall,
};

// A state in which a thread cannot run whatever resources it gets: someone else holds it. Its
// time is counted as idle (no resource would help) and named as this state, so that analysis can
// report it as what it is instead of as a bottleneck.
enum class Hold : std::uint8_t {
  kNone = 0,
  kStopped,  // SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU: state T
  kTraced,   // stopped by a tracer (a debugger, strace): state t
  kFrozen,   // its cgroup is frozen (v1 freezer.state FROZEN, v2 cgroup.freeze)
  kVfork,    // a parent inside vfork (or clone with CLONE_VFORK), waiting for its child to exec
};
inline constexpr std::size_t kHoldCount = 5;

// "stopped", "traced", "frozen", "vfork", "" for kNone: for JSON and evidence text.
std::string_view hold_name(Hold hold);

struct WaitObservation {
  char state = '?';  // /proc stat field 3: R S D T t Z X I P
  // The thread's cgroup is frozen (the sampler asks the freezer): it shows as D or S, in or out
  // of a syscall, but waits for nothing of its own.
  bool frozen = false;
  SyscallWhere where = SyscallWhere::kUnknown;
  long syscall_nr = -1;
  std::array<std::uint64_t, 6> args{};
  FdRole fd_role = FdRole::kUnknown;  // for the fd the syscall waits on, when it takes one
  std::string fd_detail;              // a file path, or a peer "10.0.0.2:5432"
  // For event-loop waits: the process has client connections with a request sent and no reply
  // yet, or sockets with data queued to a slow peer. Set by the sampler from tcp_info.
  bool process_waits_on_network = false;
  // Major faults the thread took since the previous sample.
  std::uint64_t majflt_delta = 0;
  // For a futex(FUTEX_WAIT_BITSET) sleeper: the libc function it waits under, found on its stack
  // by the sampler ("pthread_rwlock_wrlock", "sem_wait", "pthread_cond_wait", as returned by
  // futex_waiter_function); empty when unknown (no ptrace access, no symbols, not glibc).
  std::string futex_caller;
};

struct WaitClass {
  Resource resource = Resource::kIdle;
  // A short, stable description of the wait for evidence: "fdatasync /data/log", "mutex
  // 0x55d0c0a0", "recvfrom 127.0.0.1:9001", "epoll_wait", "accept".
  std::string detail;
  Hold hold = Hold::kNone;  // resource is kIdle when set
};

// Classifies one off-CPU observation. Never called for time already counted by schedstat
// (on_cpu, cpu_wait); state R/running gives kOnCpu as a fallback.
WaitClass classify_wait(const WaitObservation& obs);

// The wait of a thread whose cgroup is frozen (what classify_wait returns for obs.frozen).
WaitClass frozen_wait();

// The syscall's name ("read", "futex", "vfork", ...) for every syscall the C library's
// <sys/syscall.h> knows on this architecture; "syscall_<nr>" only for numbers it does not.
std::string syscall_name(long nr);

// Which argument of syscall nr names the fd it waits on, or -1 when it takes none.
int fd_argument_index(long nr);

// glibc's rwlocks, semaphores, condition variables, pthread_join and barriers all sleep in
// futex(FUTEX_WAIT_BITSET); only the function the thread called tells a queued reader or writer
// (lock) from a parked pool thread (idle). Given a symbol name of libc's .dynsym as a symbolizer
// returns it ("__pthread_rwlock_wrlock", "pthread_cond_wait@@GLIBC_2.3.2"), returns the public
// name when it is one of those waits ("pthread_rwlock_wrlock"), else nullopt: internal helpers
// and unrelated functions say nothing about the wait, so a stack scan skips them.
std::optional<std::string> futex_waiter_function(std::string_view symbol);

// True when the wait is a queue on a lock that hands off to the next waiter at unlock (a mutex
// or an rwlock): run-queue time between two such waits is part of the lock's cost.
bool is_lock_queue(const WaitClass& wait);

// True for syscalls whose time is disk work even when spent on-CPU in the kernel (fsync & co).
bool is_disk_sync_syscall(long nr);

// True when a thread seen (off-CPU) in this syscall is doing disk work, so that the on-CPU kernel
// time around it is disk too: a disk sync, or a read or write of a regular file or a block device
// it was caught blocked in. A write blocks there when the file is O_DSYNC/O_SYNC (the journal
// commit runs inside write(2), partly on the CPU) or when writeback throttles it; a read when the
// page is not cached. A buffered write that copies into the page cache never blocks, so it is not
// caught here and its CPU stays on_cpu.
bool is_disk_work(const WaitObservation& obs);

}  // namespace chokepoint::model
