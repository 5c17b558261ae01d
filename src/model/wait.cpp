#include "model/wait.h"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>

#include <fmt/format.h>

namespace chokepoint::model {
namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// FUTEX_WAIT_BITSET is how glibc 2.36 sleeps in rwlocks, semaphores, timed mutexes, condition
// variables and pthread_join alike (checked: a reader queued on a write-locked rwlock shows
// "202 addr 0x189 0x3", a sem_wait "202 addr 0x189 0x0", a condvar "202 addr 0x189 0x0"); the
// function the thread called is what tells them apart. Without it the wait reads as idle: a
// parked pool thread is the common case, and time is never invented for a lock.
WaitClass classify_bitset_wait(const std::string& caller, const std::string& addr) {
  if (starts_with(caller, "pthread_rwlock_"))
    return {Resource::kLock, "rwlock " + addr + " (" + caller + ")"};
  if (starts_with(caller, "sem_"))
    return {Resource::kLock, "semaphore " + addr + " (" + caller + ")"};
  if (starts_with(caller, "pthread_mutex_")) return {Resource::kLock, "mutex " + addr};
  if (starts_with(caller, "pthread_barrier_")) return {Resource::kIdle, "barrier " + addr};
  if (caller.find("join") != std::string::npos) return {Resource::kIdle, caller};
  return {Resource::kIdle, "condvar " + addr};
}

// glibc's pthread_mutex_lock waits with FUTEX_WAIT and value 2 ("locked, with waiters"); condition
// variables, semaphores, pthread_join and barriers use FUTEX_WAIT_BITSET. Checked on glibc 2.36:
// a contended std::mutex shows "202 addr 0x80 0x2", a std::condition_variable "202 addr 0x189 0x0".
WaitClass classify_futex(const WaitObservation& obs) {
  auto op = static_cast<int>(obs.args[1] & FUTEX_CMD_MASK);
  std::string addr = fmt::format("{:#x}", obs.args[0]);
  switch (op) {
    case FUTEX_WAIT:
      if (obs.args[2] == 2) return {Resource::kLock, "mutex " + addr};
      // Other FUTEX_WAIT users (older glibc condvars, hand-rolled locks) block on a value: treat
      // as a lock only when it looks like one, otherwise the thread waits for an event.
      return {Resource::kIdle, "futex wait " + addr};
    case FUTEX_LOCK_PI:
#ifdef FUTEX_LOCK_PI2
    case FUTEX_LOCK_PI2:
#endif
      return {Resource::kLock, "pi-mutex " + addr};
    case FUTEX_WAIT_BITSET:
      return classify_bitset_wait(obs.futex_caller, addr);
    case FUTEX_WAIT_REQUEUE_PI:
      return {Resource::kIdle, "condvar " + addr};
    default:
      return {Resource::kIdle, "futex " + addr};
  }
}

WaitClass classify_fd_io(const WaitObservation& obs, const std::string& name, bool is_write) {
  std::string detail = obs.fd_detail.empty() ? name : name + " " + obs.fd_detail;
  switch (obs.fd_role) {
    case FdRole::kRegularFile:
    case FdRole::kBlockDevice:
      return {Resource::kDisk, detail};
    case FdRole::kSocketClient:
      // Blocked reading a connection we opened: waiting for the peer's reply.
      return {Resource::kNetwork, detail};
    case FdRole::kSocketServer:
    case FdRole::kSocketOther:
      // Blocked writing means the send buffer is full: the peer or the link is slow. Blocked
      // reading a client's connection means waiting for its next request: idle.
      return {is_write ? Resource::kNetwork : Resource::kIdle, detail};
    case FdRole::kTimerfd:
      return {Resource::kSleep, detail};
    default:
      return {Resource::kIdle, detail};
  }
}

// vfork(2), and clone(2) with CLONE_VFORK (the first argument holds the flags on x86-64), park the
// parent until the child execs or exits (an uninterruptible, killable wait: state D). clone3's
// flags are in a struct in the caller's memory; glibc's posix_spawn uses it with CLONE_VFORK, and
// a parent seen in D inside clone3 is in that wait (a plain clone3 does not sleep).
bool is_vfork_wait(const WaitObservation& obs) {
  const long nr = obs.syscall_nr;
#ifdef SYS_vfork
  if (nr == SYS_vfork) return true;
#endif
  if (nr == SYS_clone) return (obs.args[0] & CLONE_VFORK) != 0;
#ifdef SYS_clone3
  if (nr == SYS_clone3) return obs.state == 'D';
#endif
  return false;
}

}  // namespace

std::string syscall_name(long nr) {
  struct Row {
    long nr;
    const char* name;
  };
  static constexpr Row kRows[] = {
#include "model/syscall_names.inc"
  };
  for (const Row& r : kRows) {
    if (r.nr == nr) return r.name;
  }
  return fmt::format("syscall_{}", nr);
}

WaitClass frozen_wait() {
  return {Resource::kIdle, "frozen by its cgroup's freezer", Hold::kFrozen};
}

std::string_view hold_name(Hold hold) {
  switch (hold) {
    case Hold::kNone:
      return "";
    case Hold::kStopped:
      return "stopped";
    case Hold::kTraced:
      return "traced";
    case Hold::kFrozen:
      return "frozen";
    case Hold::kVfork:
      return "vfork";
  }
  return "";
}

int fd_argument_index(long nr) {
  switch (nr) {
    case SYS_read:
    case SYS_write:
    case SYS_pread64:
    case SYS_pwrite64:
    case SYS_readv:
    case SYS_writev:
    case SYS_preadv:
    case SYS_pwritev:
    case SYS_preadv2:
    case SYS_pwritev2:
    case SYS_recvfrom:
    case SYS_recvmsg:
    case SYS_recvmmsg:
    case SYS_sendto:
    case SYS_sendmsg:
    case SYS_sendmmsg:
    case SYS_sendfile:  // out_fd first: a socket when serving files
    case SYS_splice:
    case SYS_fsync:
    case SYS_fdatasync:
    case SYS_sync_file_range:
    case SYS_syncfs:
    case SYS_fallocate:
    case SYS_ftruncate:
    case SYS_accept:
    case SYS_accept4:
    case SYS_connect:
    case SYS_flock:
    case SYS_fcntl:
    case SYS_msync:
      return 0;
    default:
      return -1;
  }
}

std::optional<std::string> futex_waiter_function(std::string_view symbol) {
  // "pthread_cond_wait@@GLIBC_2.3.2" -> "pthread_cond_wait"; "__pthread_rwlock_wrlock" (the
  // internal alias) -> "pthread_rwlock_wrlock".
  symbol = symbol.substr(0, symbol.find('@'));
  while (!symbol.empty() && symbol.front() == '_') symbol.remove_prefix(1);
  // With glibc's debug symbols, the semaphore's slow path has a name of its own.
  if (starts_with(symbol, "new_sem_wait")) return std::string("sem_wait");
  static constexpr std::string_view kWaits[] = {
      // lock: a reader or writer queued on an rwlock, a thread waiting for a semaphore's permit,
      // a timed mutex lock.
      "pthread_rwlock_rdlock", "pthread_rwlock_wrlock", "pthread_rwlock_timedrdlock",
      "pthread_rwlock_timedwrlock", "pthread_rwlock_clockrdlock", "pthread_rwlock_clockwrlock",
      "sem_wait", "sem_timedwait", "sem_clockwait", "pthread_mutex_timedlock",
      "pthread_mutex_clocklock",
      // idle: waiting for an event or for another thread to finish.
      "pthread_cond_wait", "pthread_cond_timedwait", "pthread_cond_clockwait", "pthread_join",
      "pthread_timedjoin_np", "pthread_clockjoin_np", "pthread_barrier_wait"};
  for (std::string_view w : kWaits) {
    if (symbol == w) return std::string(w);
  }
  return std::nullopt;
}

bool is_lock_queue(const WaitClass& wait) {
  return wait.resource == Resource::kLock &&
         (starts_with(wait.detail, "mutex") || starts_with(wait.detail, "rwlock"));
}

bool is_disk_sync_syscall(long nr) {
  return nr == SYS_fsync || nr == SYS_fdatasync || nr == SYS_sync_file_range || nr == SYS_syncfs ||
         nr == SYS_sync || nr == SYS_msync;
}

bool is_disk_work(const WaitObservation& obs) {
  if (obs.where != SyscallWhere::kInSyscall) return false;
  if (is_disk_sync_syscall(obs.syscall_nr)) return true;
  if (obs.fd_role != FdRole::kRegularFile && obs.fd_role != FdRole::kBlockDevice) return false;
  switch (obs.syscall_nr) {
    case SYS_read:
    case SYS_pread64:
    case SYS_readv:
    case SYS_preadv:
    case SYS_preadv2:
    case SYS_write:
    case SYS_pwrite64:
    case SYS_writev:
    case SYS_pwritev:
    case SYS_pwritev2:
    case SYS_fallocate:
    case SYS_ftruncate:
      return true;
    default:
      return false;
  }
}

WaitClass classify_wait(const WaitObservation& obs) {
  if (obs.state == 'R' || obs.where == SyscallWhere::kRunning) return {Resource::kOnCpu, "running"};
  // Held by someone else, whatever it was doing: a frozen thread shows D and a syscall or "-1"
  // (which read as disk or paging), a stopped one keeps the syscall it was stopped in.
  if (obs.frozen) return frozen_wait();
  if (obs.state == 'T') return {Resource::kIdle, "stopped by a signal (SIGSTOP)", Hold::kStopped};
  if (obs.state == 't') return {Resource::kIdle, "stopped by a tracer (ptrace)", Hold::kTraced};
  if (obs.where == SyscallWhere::kInSyscall && is_vfork_wait(obs)) {
    return {Resource::kIdle,
            "in " + syscall_name(obs.syscall_nr) + ", waiting for its child to exec", Hold::kVfork};
  }

  if (obs.where == SyscallWhere::kNotInSyscall) {
    // Blocked outside a syscall: a page fault (major faults mean reading a page from disk or
    // swap), or reclaim. Without faults, uninterruptible sleep outside a syscall is still memory
    // management more often than not.
    if (obs.majflt_delta > 0 || obs.state == 'D') {
      return {Resource::kMemory, obs.majflt_delta > 0 ? "major page fault" : "page fault/reclaim"};
    }
    return {Resource::kIdle, "stopped outside a syscall"};
  }
  if (obs.where == SyscallWhere::kUnknown) {
    // No syscall view (no permission): only the state is known. D is almost always IO.
    if (obs.state == 'D') return {Resource::kDisk, "uninterruptible (D) sleep"};
    return {Resource::kIdle, "sleeping (syscall not visible)"};
  }

  const long nr = obs.syscall_nr;
  std::string name = syscall_name(nr);
  if (is_disk_sync_syscall(nr)) {
    return {Resource::kDisk, obs.fd_detail.empty() ? name : name + " " + obs.fd_detail};
  }
  switch (nr) {
    case SYS_futex:
      return classify_futex(obs);
    case SYS_read:
    case SYS_pread64:
    case SYS_readv:
    case SYS_preadv:
    case SYS_preadv2:
    case SYS_recvfrom:
    case SYS_recvmsg:
    case SYS_recvmmsg:
      return classify_fd_io(obs, name, false);
    case SYS_write:
    case SYS_pwrite64:
    case SYS_writev:
    case SYS_pwritev:
    case SYS_pwritev2:
    case SYS_sendto:
    case SYS_sendmsg:
    case SYS_sendmmsg:
    case SYS_sendfile:
    case SYS_splice:
    case SYS_fallocate:
    case SYS_ftruncate:
      return classify_fd_io(obs, name, true);
    case SYS_connect:
      return {Resource::kNetwork, obs.fd_detail.empty() ? name : name + " " + obs.fd_detail};
    case SYS_accept:
    case SYS_accept4:
      return {Resource::kIdle, name};
    case SYS_epoll_pwait:
    case SYS_epoll_pwait2:
    case SYS_ppoll:
    case SYS_pselect6:
#ifdef SYS_epoll_wait
    case SYS_epoll_wait:
#endif
#ifdef SYS_poll
    case SYS_poll:
#endif
#ifdef SYS_select
    case SYS_select:
#endif
      // An event loop waits here for everything. It is waiting on the network when its process
      // has requests out to upstreams or data stuck in send buffers; otherwise it has no work.
      if (!obs.process_waits_on_network) return {Resource::kIdle, name};
      return {Resource::kNetwork, obs.fd_detail.empty() ? name : name + " " + obs.fd_detail};
    case SYS_flock:
      return {Resource::kLock, "flock " + obs.fd_detail};
    case SYS_fcntl:
      // F_SETLKW (7) and F_OFD_SETLKW (38) block on a record lock.
      if (obs.args[1] == 7 || obs.args[1] == 38)
        return {Resource::kLock, "fcntl lock " + obs.fd_detail};
      return {Resource::kIdle, name};
    case SYS_nanosleep:
    case SYS_clock_nanosleep:
      return {Resource::kSleep, name};
    case SYS_io_getevents:
    case SYS_io_uring_enter:
      return {Resource::kDisk, name};
    case SYS_mmap:
    case SYS_munmap:
    case SYS_madvise:
      return {obs.state == 'D' ? Resource::kMemory : Resource::kIdle, name};
    case SYS_openat:
#ifdef SYS_open
    case SYS_open:
#endif
      return {obs.state == 'D' ? Resource::kDisk : Resource::kIdle, name};
    default:
      if (obs.state == 'D') return {Resource::kDisk, name + " (D state)"};
      return {Resource::kIdle, name};
  }
}

}  // namespace chokepoint::model
