#include "model/wait.h"

#include <gtest/gtest.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>

namespace chokepoint::model {
namespace {

WaitObservation in_syscall(long nr, FdRole role = FdRole::kUnknown, char state = 'S') {
  WaitObservation o;
  o.state = state;
  o.where = SyscallWhere::kInSyscall;
  o.syscall_nr = nr;
  o.fd_role = role;
  return o;
}

TEST(ClassifyWait, ContendedMutexIsLockAndCondvarIsIdle) {
  // Seen on glibc 2.36: "202 addr 0x80 0x2" for a contended std::mutex.
  auto mutex = in_syscall(SYS_futex);
  mutex.args = {0x1000, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 2, 0, 0, 0};
  EXPECT_EQ(classify_wait(mutex).resource, Resource::kLock);
  EXPECT_EQ(classify_wait(mutex).detail, "mutex 0x1000");
  // "202 addr 0x189 0x0" for std::condition_variable::wait.
  auto cv = in_syscall(SYS_futex);
  cv.args = {0x2000, 0x189, 0, 0, 0, 0xffffffff};
  EXPECT_EQ(classify_wait(cv).resource, Resource::kIdle);
}

// Recorded on glibc 2.36 (/proc/TID/syscall of threads blocked in each call): rwlocks,
// semaphores and condition variables all sleep in FUTEX_WAIT_BITSET; the libc function found on
// the stack decides.
TEST(ClassifyWait, BitsetWaitsAreLockOnlyUnderRwlocksAndSemaphores) {
  auto reader = in_syscall(SYS_futex);  // "202 0x55cab9ed6248 0x189 0x3": pthread_rwlock_rdlock
  reader.args = {0x55cab9ed6248, 0x189, 3, 0, 0, 0xffffffff};
  reader.futex_caller = "pthread_rwlock_rdlock";
  EXPECT_EQ(classify_wait(reader).resource, Resource::kLock);
  EXPECT_EQ(classify_wait(reader).detail, "rwlock 0x55cab9ed6248 (pthread_rwlock_rdlock)");
  EXPECT_TRUE(is_lock_queue(classify_wait(reader)));

  auto sem = in_syscall(SYS_futex);  // "202 0x55cab9ed61e0 0x189 0x0": sem_wait
  sem.args = {0x55cab9ed61e0, 0x189, 0, 0, 0, 0xffffffff};
  sem.futex_caller = "sem_wait";
  EXPECT_EQ(classify_wait(sem).resource, Resource::kLock);
  EXPECT_EQ(classify_wait(sem).detail, "semaphore 0x55cab9ed61e0 (sem_wait)");
  // A semaphore has no owner to hand off to: its run-queue time stays cpu_wait.
  EXPECT_FALSE(is_lock_queue(classify_wait(sem)));

  auto cv = in_syscall(SYS_futex);  // "202 0x55cab9ed6188 0x189 0x0": pthread_cond_wait
  cv.args = {0x55cab9ed6188, 0x189, 0, 0, 0, 0xffffffff};
  cv.futex_caller = "pthread_cond_wait";
  EXPECT_EQ(classify_wait(cv).resource, Resource::kIdle);
  EXPECT_EQ(classify_wait(cv).detail, "condvar 0x55cab9ed6188");

  auto join = in_syscall(SYS_futex);  // "202 0x7f9d6bff7990 0x109 0x2a61": pthread_join
  join.args = {0x7f9d6bff7990, 0x109, 0x2a61, 0, 0, 0xffffffff};
  join.futex_caller = "pthread_join";
  EXPECT_EQ(classify_wait(join).resource, Resource::kIdle);

  // Unknown caller (no ptrace access, no symbols): today's answer, idle.
  auto unknown = reader;
  unknown.futex_caller.clear();
  EXPECT_EQ(classify_wait(unknown).resource, Resource::kIdle);
  EXPECT_EQ(classify_wait(unknown).detail, "condvar 0x55cab9ed6248");
}

TEST(FutexWaiterFunction, NormalizesDynsymNamesAndRejectsOthers) {
  EXPECT_EQ(futex_waiter_function("__pthread_rwlock_wrlock"), "pthread_rwlock_wrlock");
  EXPECT_EQ(futex_waiter_function("pthread_cond_wait@@GLIBC_2.3.2"), "pthread_cond_wait");
  EXPECT_EQ(futex_waiter_function("pthread_cond_clockwait@GLIBC_2.30"), "pthread_cond_clockwait");
  EXPECT_EQ(futex_waiter_function("__new_sem_wait_slow64"), "sem_wait");
  EXPECT_EQ(futex_waiter_function("sem_timedwait"), "sem_timedwait");
  // Internal helpers and stale frames say nothing about the wait.
  EXPECT_EQ(futex_waiter_function("__futex_abstimed_wait_common"), std::nullopt);
  EXPECT_EQ(futex_waiter_function("_IO_file_sync@@GLIBC_2.2.5"), std::nullopt);
  EXPECT_EQ(futex_waiter_function("pthread_rwlock_unlock"), std::nullopt);
  EXPECT_EQ(futex_waiter_function(""), std::nullopt);
}

TEST(ClassifyWait, FsyncIsDiskWhateverTheFd) {
  EXPECT_EQ(classify_wait(in_syscall(SYS_fdatasync, FdRole::kRegularFile, 'D')).resource,
            Resource::kDisk);
  EXPECT_EQ(classify_wait(in_syscall(SYS_fsync)).resource, Resource::kDisk);
}

// The syscalls whose on-CPU kernel time around them is disk work (the builder moves it to disk).
TEST(IsDiskWork, SyncsAndFileReadsAndWritesButNotSockets) {
  EXPECT_TRUE(is_disk_work(in_syscall(SYS_fdatasync)));
  EXPECT_TRUE(is_disk_work(in_syscall(SYS_write, FdRole::kRegularFile, 'D')));
  EXPECT_TRUE(is_disk_work(in_syscall(SYS_pwrite64, FdRole::kBlockDevice, 'D')));
  EXPECT_TRUE(is_disk_work(in_syscall(SYS_pread64, FdRole::kRegularFile, 'D')));
  EXPECT_FALSE(is_disk_work(in_syscall(SYS_write, FdRole::kSocketServer)));
  EXPECT_FALSE(is_disk_work(in_syscall(SYS_read, FdRole::kPipe)));
  EXPECT_FALSE(is_disk_work(in_syscall(SYS_openat, FdRole::kRegularFile)));
  WaitObservation running;
  running.state = 'R';
  running.where = SyscallWhere::kRunning;
  EXPECT_FALSE(is_disk_work(running));
}

TEST(ClassifyWait, SocketReadsDependOnWhoOpenedTheConnection) {
  EXPECT_EQ(classify_wait(in_syscall(SYS_read, FdRole::kSocketClient)).resource,
            Resource::kNetwork);
  EXPECT_EQ(classify_wait(in_syscall(SYS_recvfrom, FdRole::kSocketServer)).resource,
            Resource::kIdle);
  // Blocked writing to a client: its send buffer is full.
  EXPECT_EQ(classify_wait(in_syscall(SYS_sendto, FdRole::kSocketServer)).resource,
            Resource::kNetwork);
  EXPECT_EQ(classify_wait(in_syscall(SYS_write, FdRole::kRegularFile)).resource, Resource::kDisk);
  EXPECT_EQ(classify_wait(in_syscall(SYS_read, FdRole::kPipe)).resource, Resource::kIdle);
}

TEST(ClassifyWait, EventLoopsAreIdleUnlessTheProcessWaitsOnPeers) {
  auto loop = in_syscall(SYS_epoll_wait);
  EXPECT_EQ(classify_wait(loop).resource, Resource::kIdle);
  loop.process_waits_on_network = true;
  EXPECT_EQ(classify_wait(loop).resource, Resource::kNetwork);
}

TEST(ClassifyWait, AcceptIsIdleSleepIsSleepConnectIsNetwork) {
  EXPECT_EQ(classify_wait(in_syscall(SYS_accept4)).resource, Resource::kIdle);
  EXPECT_EQ(classify_wait(in_syscall(SYS_clock_nanosleep)).resource, Resource::kSleep);
  EXPECT_EQ(classify_wait(in_syscall(SYS_connect)).resource, Resource::kNetwork);
}

TEST(ClassifyWait, PageFaultOutsideSyscallIsMemory) {
  WaitObservation o;
  o.state = 'D';
  o.where = SyscallWhere::kNotInSyscall;
  o.majflt_delta = 3;
  EXPECT_EQ(classify_wait(o).resource, Resource::kMemory);
}

TEST(ClassifyWait, UnknownSyscallViewFallsBackToState) {
  WaitObservation o;
  o.state = 'D';
  EXPECT_EQ(classify_wait(o).resource, Resource::kDisk);
  o.state = 'S';
  EXPECT_EQ(classify_wait(o).resource, Resource::kIdle);
}

TEST(ClassifyWait, FileLocksAreLocks) {
  EXPECT_EQ(classify_wait(in_syscall(SYS_flock, FdRole::kRegularFile)).resource, Resource::kLock);
  auto f = in_syscall(SYS_fcntl, FdRole::kRegularFile);
  f.args[1] = 7;  // F_SETLKW
  EXPECT_EQ(classify_wait(f).resource, Resource::kLock);
}

TEST(SyscallName, KnownAndUnknown) {
  EXPECT_EQ(syscall_name(SYS_futex), "futex");
  EXPECT_EQ(syscall_name(99999), "syscall_99999");
}

// Regression (issue 18): a parent in vfork read as "syscall_58". Every syscall the C library names
// has its name, not only the ones the classifier cares about.
TEST(SyscallName, EveryKnownSyscallHasItsName) {
  EXPECT_EQ(syscall_name(SYS_vfork), "vfork");
  EXPECT_EQ(syscall_name(SYS_clone3), "clone3");
  EXPECT_EQ(syscall_name(SYS_getpid), "getpid");
  EXPECT_EQ(syscall_name(SYS_io_uring_setup), "io_uring_setup");
  EXPECT_EQ(syscall_name(SYS_pidfd_open), "pidfd_open");
  EXPECT_EQ(syscall_name(SYS_exit_group), "exit_group");
  // x86-64 numbers 0..334 are contiguous; none of them reads as a number.
  for (long nr = 0; nr <= 334; ++nr) {
    EXPECT_NE(syscall_name(nr).rfind("syscall_", 0), 0u) << nr;
  }
}

// Regression (issue 18): held threads wait for nobody's resource. A parent inside vfork (state D,
// "58 ...") read as disk; a v1-frozen thread (D, "-1 sp pc") as paging; a stopped one as idle
// with no word.
TEST(ClassifyWait, HeldThreadsAreIdleAndNamed) {
  auto vfork = in_syscall(SYS_vfork, FdRole::kUnknown, 'D');
  EXPECT_EQ(classify_wait(vfork).resource, Resource::kIdle);
  EXPECT_EQ(classify_wait(vfork).hold, Hold::kVfork);
  EXPECT_NE(classify_wait(vfork).detail.find("vfork"), std::string::npos);
  auto spawn = in_syscall(SYS_clone3, FdRole::kUnknown, 'D');
  EXPECT_EQ(classify_wait(spawn).hold, Hold::kVfork);
  auto clone_vfork = in_syscall(SYS_clone, FdRole::kUnknown, 'D');
  clone_vfork.args[0] = CLONE_VM | CLONE_VFORK | SIGCHLD;
  EXPECT_EQ(classify_wait(clone_vfork).hold, Hold::kVfork);
  auto plain_clone = in_syscall(SYS_clone, FdRole::kUnknown, 'D');
  plain_clone.args[0] = SIGCHLD;
  EXPECT_EQ(classify_wait(plain_clone).hold, Hold::kNone);

  WaitObservation frozen;
  frozen.state = 'D';
  frozen.where = SyscallWhere::kNotInSyscall;
  frozen.frozen = true;
  EXPECT_EQ(classify_wait(frozen).resource, Resource::kIdle);
  EXPECT_EQ(classify_wait(frozen).hold, Hold::kFrozen);
  auto frozen_in_read = in_syscall(SYS_read, FdRole::kRegularFile, 'D');
  frozen_in_read.frozen = true;
  EXPECT_EQ(classify_wait(frozen_in_read).hold, Hold::kFrozen);

  auto stopped = in_syscall(SYS_read, FdRole::kRegularFile, 'T');
  EXPECT_EQ(classify_wait(stopped).resource, Resource::kIdle);
  EXPECT_EQ(classify_wait(stopped).hold, Hold::kStopped);
  auto traced = in_syscall(SYS_nanosleep, FdRole::kUnknown, 't');
  EXPECT_EQ(classify_wait(traced).hold, Hold::kTraced);
  EXPECT_EQ(hold_name(Hold::kTraced), "traced");
}

}  // namespace
}  // namespace chokepoint::model
