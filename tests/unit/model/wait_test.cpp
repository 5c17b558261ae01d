#include "model/wait.h"

#include <gtest/gtest.h>
#include <linux/futex.h>
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

TEST(ClassifyWait, FsyncIsDiskWhateverTheFd) {
  EXPECT_EQ(classify_wait(in_syscall(SYS_fdatasync, FdRole::kRegularFile, 'D')).resource,
            Resource::kDisk);
  EXPECT_EQ(classify_wait(in_syscall(SYS_fsync)).resource, Resource::kDisk);
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

}  // namespace
}  // namespace chokepoint::model
