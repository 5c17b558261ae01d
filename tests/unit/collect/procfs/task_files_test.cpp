#include "collect/procfs/task_files.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "collect/procfs/proc_fs.h"
#include "util/scoped_fd.h"

namespace chokepoint::collect::procfs {
namespace {

constexpr Units kUnits{100, 4096};

std::string fixture_root(const std::string& name) {
  return std::string(CHOKEPOINT_FIXTURES_DIR) + "/proc/" + name;
}

std::uint64_t thread_cpu_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

int gettid_int() {
  return static_cast<int>(::syscall(SYS_gettid));
}

TEST(TaskFilesFixture, ReadsRegularFilesToo) {
  auto files = TaskFiles::open(fixture_root("comm_weird"), 4242, 4242,
                               kSamplerFiles | TaskFile::kWchan | TaskFile::kStatus, kUnits);
  ASSERT_TRUE(files) << files.error().message;
  std::array<char, kTaskFileBufferBytes> buf;
  auto stat = files->stat(buf);
  ASSERT_TRUE(stat) << stat.error().message;
  EXPECT_EQ(stat->comm, "a) b\nc)");
  EXPECT_EQ(stat->utime_ns, 2'500'000'000u);
  auto sched = files->schedstat(buf);
  ASSERT_TRUE(sched);
  EXPECT_EQ(sched->run_delay_ns, 120'000'000u);
  auto sys = files->syscall(buf);
  ASSERT_TRUE(sys);
  EXPECT_EQ(sys->kind, SyscallState::Kind::kRunning);
  auto wchan = files->wchan(buf);
  ASSERT_TRUE(wchan);
  EXPECT_EQ(*wchan, "");
  auto status = files->status(buf);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->uid, 1000u);
  // io was not requested.
  EXPECT_FALSE(files->is_open(TaskFile::kIo));
  auto io = files->io(buf);
  ASSERT_FALSE(io);
  EXPECT_EQ(io.error().errno_value, EBADF);
}

TEST(TaskFilesFixture, VanishedTaskFailsOpen) {
  auto files = TaskFiles::open(fixture_root("vanished"), 777, 777, kSamplerFiles, kUnits);
  ASSERT_FALSE(files);
  EXPECT_TRUE(is_vanished(files.error()));
}

TEST(TaskFilesFixture, SmallBufferIsAnError) {
  auto files = TaskFiles::open(fixture_root("comm_weird"), 4242, 4242, kSamplerFiles, kUnits);
  ASSERT_TRUE(files);
  std::array<char, 16> small;
  auto stat = files->stat(small);
  ASSERT_FALSE(stat);
  EXPECT_EQ(stat.error().errno_value, EOVERFLOW);
}

TEST(TaskFilesLive, SchedstatFollowsCpuUse) {
  const int pid = ::getpid();
  auto files = TaskFiles::open("/proc", pid, gettid_int(), kSamplerFiles);
  ASSERT_TRUE(files) << files.error().message;
  std::array<char, kTaskFileBufferBytes> buf;
  auto before = files->schedstat(buf);
  ASSERT_TRUE(before) << before.error().message;
  // Burn 50 ms of this thread's CPU time (bounded by 10 s of wall time on a busy machine).
  // schedstat's run_ns is the same sum_exec_runtime as CLOCK_THREAD_CPUTIME_ID, except that it
  // may lag by up to a scheduler tick for a running task.
  const std::uint64_t cpu0 = thread_cpu_ns();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  volatile std::uint64_t sink = 0;
  while (thread_cpu_ns() - cpu0 < 50'000'000 && std::chrono::steady_clock::now() < deadline) {
    sink = sink + 1;
  }
  auto after = files->schedstat(buf);
  const std::uint64_t cpu1 = thread_cpu_ns();
  ASSERT_TRUE(after);
  const std::uint64_t run_delta = after->run_ns - before->run_ns;
  EXPECT_GE(run_delta + 25'000'000, cpu1 - cpu0);  // two ticks of lag at HZ=100, plus slack
  EXPECT_LE(run_delta, cpu1 - cpu0 + 25'000'000);
  EXPECT_GE(run_delta, 25'000'000u);
  EXPECT_GT(after->timeslices, 0u);
  EXPECT_GE(after->timeslices, before->timeslices);
  auto stat = files->stat(buf);
  ASSERT_TRUE(stat);
  EXPECT_EQ(stat->pid, gettid_int());
  EXPECT_EQ(stat->state, 'R');
  auto sys = files->syscall(buf);
  ASSERT_TRUE(sys) << sys.error().message;
  // Reading its own syscall file, the thread is inside pread64(2) on that very fd.
  EXPECT_EQ(sys->kind, SyscallState::Kind::kInSyscall);
  EXPECT_EQ(sys->nr, SYS_pread64);
}

TEST(TaskFilesLive, SeesABlockedReadAndItsFd) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  util::ScopedFd read_end(fds[0]), write_end(fds[1]);
  std::atomic<int> tid{0};
  std::thread reader([&] {
    tid = gettid_int();
    char c;
    (void)!::read(read_end.get(), &c, 1);  // blocks until the test writes
  });
  while (tid.load() == 0) std::this_thread::yield();

  auto files = TaskFiles::open("/proc", ::getpid(), tid.load(),
                               kSamplerFiles | TaskFile::kWchan | TaskFile::kIo);
  ASSERT_TRUE(files) << files.error().message;
  std::array<char, kTaskFileBufferBytes> buf;
  // Wait (bounded) until the thread is asleep inside read(2).
  SyscallState sys;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    auto s = files->syscall(buf);
    ASSERT_TRUE(s) << s.error().message;
    sys = *s;
    if (sys.kind == SyscallState::Kind::kInSyscall && sys.nr == SYS_read) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(sys.kind, SyscallState::Kind::kInSyscall);
  EXPECT_EQ(sys.nr, SYS_read);
  EXPECT_EQ(sys.args[0], static_cast<std::uint64_t>(read_end.get()));
  EXPECT_EQ(sys.args[2], 1u);
  auto stat = files->stat(buf);
  ASSERT_TRUE(stat);
  EXPECT_EQ(stat->state, 'S');
  auto wchan = files->wchan(buf);
  ASSERT_TRUE(wchan);
  EXPECT_FALSE(wchan->empty());  // e.g. pipe_read
  // Asleep means not running: schedstat does not move between two reads.
  auto a = files->schedstat(buf);
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto b = files->schedstat(buf);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->run_ns, b->run_ns);
  EXPECT_EQ(a->timeslices, b->timeslices);

  ASSERT_EQ(::write(write_end.get(), "x", 1), 1);
  reader.join();
  // The thread is gone: the kept fds now fail with ESRCH, never with another task's data.
  auto gone = files->schedstat(buf);
  ASSERT_FALSE(gone);
  EXPECT_TRUE(is_vanished(gone.error())) << gone.error().message;
  EXPECT_FALSE(files->stat(buf));
  EXPECT_FALSE(files->syscall(buf));
  // And opening it again fails the same way.
  auto reopen = TaskFiles::open("/proc", ::getpid(), tid.load(), kSamplerFiles);
  ASSERT_FALSE(reopen);
  EXPECT_TRUE(is_vanished(reopen.error()));
}

TEST(TaskFilesLive, IsMovable) {
  auto files = TaskFiles::open("/proc", ::getpid(), gettid_int(), kSamplerFiles);
  ASSERT_TRUE(files);
  TaskFiles moved = std::move(*files);
  std::array<char, kTaskFileBufferBytes> buf;
  EXPECT_TRUE(moved.schedstat(buf));
  EXPECT_EQ(moved.tid(), gettid_int());
}

// The sampler opens schedstat first, relative to the task directory, and stat and syscall later.
TEST(TaskFilesLive, OpensRelativeToTheTaskDirectoryAndMoreLater) {
  const std::string dir = "/proc/" + std::to_string(::getpid()) + "/task";
  const int dir_fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dir_fd, 0);
  auto files = TaskFiles::open("/proc", ::getpid(), gettid_int(),
                               static_cast<unsigned>(TaskFile::kSchedstat), Units::host(), dir_fd);
  ASSERT_TRUE(files) << files.error().message;
  EXPECT_EQ(files->open_count(), 1);
  EXPECT_FALSE(files->is_open(TaskFile::kStat));
  std::array<char, kTaskFileBufferBytes> buf;
  EXPECT_TRUE(files->schedstat(buf));
  EXPECT_FALSE(files->stat(buf));  // not opened yet
  ASSERT_TRUE(files->open_more(TaskFile::kStat | TaskFile::kSyscall, dir_fd));
  EXPECT_EQ(files->open_count(), 3);
  auto st = files->stat(buf);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, 'R');
  // Opening again what is open keeps the same fds.
  ASSERT_TRUE(files->open_more(kSamplerFiles, dir_fd));
  EXPECT_EQ(files->open_count(), 3);
  // A tid that does not exist fails like open() by path does.
  EXPECT_FALSE(
      TaskFiles::open("/proc", ::getpid(), 0x7ffffff0, kSamplerFiles, Units::host(), dir_fd));
  ::close(dir_fd);
}

TEST(TaskFilesLive, RefusedSyscallIsReportedPerRead) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root, to drop to another uid in a child";
  const int parent = ::getpid();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(10);
    int code = 0;
    auto files =
        TaskFiles::open("/proc", parent, parent, kSamplerFiles | TaskFile::kWchan | TaskFile::kIo);
    if (!files) ::_exit(11);  // stat and schedstat are world-readable: open must succeed
    std::array<char, kTaskFileBufferBytes> buf;
    if (!files->stat(buf)) code |= 1;
    if (!files->schedstat(buf)) code |= 2;
    auto sys = files->syscall(buf);
    if (sys || !is_permission_denied(sys.error())) code |= 4;
    if (!sys && sys.error().hint.find("run as root") == std::string::npos) code |= 8;
    auto io = files->io(buf);
    if (io || !is_permission_denied(io.error())) code |= 16;
    auto wchan = files->wchan(buf);  // readable, but hides the symbol: "0"
    if (!wchan || !wchan->empty()) code |= 32;
    ::_exit(code);
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);
}

}  // namespace
}  // namespace chokepoint::collect::procfs
