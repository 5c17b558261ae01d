#include "collect/procfs/proc_fs.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "util/scoped_fd.h"

namespace chokepoint::collect::procfs {
namespace {

constexpr Units kUnits{100, 4096};

std::string fixture_root(const std::string& name) {
  return std::string(CHOKEPOINT_FIXTURES_DIR) + "/proc/" + name;
}

int host_pid() {
  std::ifstream in(fixture_root("host") + "/SUBJECT_PID");
  int pid = 0;
  in >> pid;
  return pid;
}

TEST(ProcFsFixture, ListsTheCapturedProcessAndItsThreads) {
  ProcFs fs(fixture_root("host"), kUnits);
  auto pids = fs.list_pids();
  ASSERT_TRUE(pids) << pids.error().message;
  ASSERT_EQ(*pids, std::vector<int>{host_pid()});
  auto tids = fs.list_tids(host_pid());
  ASSERT_TRUE(tids) << tids.error().message;
  ASSERT_EQ(tids->size(), 3u);
  EXPECT_EQ((*tids)[0], host_pid());  // the leader's tid is its pid, and the lowest
  int in_recv = 0;
  for (int tid : *tids) {
    auto stat = fs.read_task_stat(host_pid(), tid);
    ASSERT_TRUE(stat) << stat.error().message;
    EXPECT_EQ(stat->pid, tid);
    auto sched = fs.read_task_schedstat(host_pid(), tid);
    ASSERT_TRUE(sched) << sched.error().message;
    auto status = fs.read_task_status(host_pid(), tid);
    ASSERT_TRUE(status) << status.error().message;
    EXPECT_EQ(status->tgid, host_pid());
    EXPECT_TRUE(fs.read_task_io(host_pid(), tid));
    auto sys = fs.read_task_syscall(host_pid(), tid);
    ASSERT_TRUE(sys) << sys.error().message;
    EXPECT_EQ(sys->kind, SyscallState::Kind::kInSyscall);
    auto wchan = fs.read_task_wchan(host_pid(), tid);
    ASSERT_TRUE(wchan);
    EXPECT_FALSE(wchan->empty());
    if (sys->nr == 45) ++in_recv;  // recvfrom on x86_64: the "reader" thread
  }
  EXPECT_EQ(in_recv, 1);
}

TEST(ProcFsFixture, ProcessFiles) {
  ProcFs fs(fixture_root("host"), kUnits);
  auto stat = fs.read_process_stat(host_pid());
  ASSERT_TRUE(stat);
  EXPECT_EQ(stat->num_threads, 3);
  EXPECT_TRUE(fs.read_process_status(host_pid()));
  EXPECT_TRUE(fs.read_process_io(host_pid()));
  auto limits = fs.read_limits(host_pid());
  ASSERT_TRUE(limits);
  EXPECT_NE(limits->max_open_files(), nullptr);
  auto cgroup = fs.read_cgroup(host_pid());
  ASSERT_TRUE(cgroup);
  EXPECT_FALSE(cgroup->empty());
}

TEST(ProcFsFixture, FdTargetsOfEveryKind) {
  ProcFs fs(fixture_root("host"), kUnits);
  auto fds = fs.read_fd_targets(host_pid());
  ASSERT_TRUE(fds) << fds.error().message;
  std::map<FdTarget::Kind, int> kinds;
  int last_fd = -1;
  for (const auto& e : *fds) {
    EXPECT_GT(e.fd, last_fd);  // ascending
    last_fd = e.fd;
    ++kinds[e.target.kind];
    if (e.target.kind == FdTarget::Kind::kRegularFile) {
      EXPECT_TRUE(e.target.deleted);
    }
  }
  EXPECT_EQ(kinds[FdTarget::Kind::kSocket], 2);  // a socketpair
  EXPECT_GE(kinds[FdTarget::Kind::kPipe], 2);
  EXPECT_EQ(kinds[FdTarget::Kind::kEventfd], 1);
  EXPECT_EQ(kinds[FdTarget::Kind::kEpoll], 1);
  EXPECT_GE(kinds[FdTarget::Kind::kDevice], 1);
  EXPECT_EQ(kinds[FdTarget::Kind::kRegularFile], 1);
  // One fd at a time, as a sampler does for the fd a blocked syscall names.
  for (const auto& e : *fds) {
    auto one = fs.read_fd_target(host_pid(), e.fd);
    ASSERT_TRUE(one) << one.error().message;
    EXPECT_EQ(one->kind, e.target.kind);
    EXPECT_EQ(one->path, e.target.path);
  }
  auto closed = fs.read_fd_target(host_pid(), 999);
  ASSERT_FALSE(closed);
  EXPECT_TRUE(is_vanished(closed.error()));
}

// Regression: the error for an fd entry that cannot be read named the entry after closedir() had
// freed it (a heap use-after-free that ASan caught on a whole-host diagnose).
TEST(ProcFsFixture, UnreadableFdEntryErrorNamesTheEntry) {
  const std::string root = ::testing::TempDir() + "/procfs-bad-fd-" + std::to_string(getpid());
  std::filesystem::create_directories(root + "/4321/fd");
  // A plain file where a symlink belongs: readlinkat fails with EINVAL, not ENOENT.
  std::ofstream(root + "/4321/fd/7") << "not a link";
  ProcFs fs(root, kUnits);
  auto fds = fs.read_fd_targets(4321);
  ASSERT_FALSE(fds);
  EXPECT_EQ(fds.error().errno_value, EINVAL);
  EXPECT_NE(fds.error().message.find("/4321/fd/7"), std::string::npos) << fds.error().message;
  std::filesystem::remove_all(root);
}

TEST(ProcFsFixture, SystemFiles) {
  ProcFs fs(fixture_root("host"), kUnits);
  EXPECT_TRUE(fs.read_system_stat());
  EXPECT_TRUE(fs.read_meminfo());
  EXPECT_TRUE(fs.read_vmstat());
  EXPECT_TRUE(fs.read_diskstats());
  EXPECT_TRUE(fs.read_net_dev());
  EXPECT_TRUE(fs.read_net_snmp());
  EXPECT_TRUE(fs.read_net_netstat());
  EXPECT_TRUE(fs.read_sockstat());
  EXPECT_TRUE(fs.read_loadavg());
  EXPECT_TRUE(fs.read_file_nr());
  EXPECT_TRUE(fs.read_file_max());
  for (const char* resource : {"cpu", "memory", "io"}) {
    auto p = fs.read_pressure(resource);
    ASSERT_TRUE(p) << resource;
    EXPECT_TRUE(p->supported);
    EXPECT_TRUE(p->some);
  }
}

TEST(ProcFsFixture, VanishedTaskIsDistinguishable) {
  ProcFs fs(fixture_root("vanished"), kUnits);
  auto tids = fs.list_tids(777);
  ASSERT_TRUE(tids);
  EXPECT_EQ(*tids, std::vector<int>{777});
  auto stat = fs.read_task_stat(777, 777);
  ASSERT_FALSE(stat);
  EXPECT_TRUE(is_vanished(stat.error()));
  EXPECT_FALSE(is_permission_denied(stat.error()));
  EXPECT_NE(stat.error().hint.find("exited"), std::string::npos);
  EXPECT_NE(stat.error().message.find("777/task/777/stat"), std::string::npos);
  // A pid that is gone altogether.
  auto gone = fs.list_tids(778);
  ASSERT_FALSE(gone);
  EXPECT_TRUE(is_vanished(gone.error()));
  auto fds = fs.read_fd_targets(778);
  ASSERT_FALSE(fds);
  EXPECT_TRUE(is_vanished(fds.error()));
}

TEST(ProcFsFixture, PressureUnsupportedIsAValue) {
  ProcFs fs(fixture_root("no_psi"), kUnits);
  auto p = fs.read_pressure("cpu");
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->supported);
  EXPECT_FALSE(p->some);
  EXPECT_NE(p->unsupported_reason.find("CONFIG_PSI"), std::string::npos);
  // The file exists but PSI is off: open() fails with EOPNOTSUPP. A fixture cannot do that, so
  // check the errno mapping the reader uses.
  auto off = unsupported_pressure(EOPNOTSUPP, "/proc/pressure/io");
  ASSERT_TRUE(off);
  EXPECT_FALSE(off->supported);
  EXPECT_NE(off->unsupported_reason.find("psi=1"), std::string::npos);
  EXPECT_FALSE(unsupported_pressure(EACCES, "/proc/pressure/io"));
  // System files a kernel lacks get a kernel hint, not a "task exited" one.
  auto stat = fs.read_system_stat();
  ASSERT_FALSE(stat);
  EXPECT_NE(stat.error().hint.find("kernel"), std::string::npos);
}

TEST(ProcFsFixture, MalformedTextIsEbadmsg) {
  char dir_template[] = "/tmp/chokepoint-procfs-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::filesystem::path dir(dir_template);
  std::ofstream(dir / "loadavg") << "not a load average\n";
  ProcFs fs(dir.string(), kUnits);
  auto l = fs.read_loadavg();
  std::filesystem::remove_all(dir);
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().errno_value, EBADMSG);
  EXPECT_FALSE(is_vanished(l.error()));
  EXPECT_NE(l.error().message.find("cannot parse"), std::string::npos);
}

TEST(ProcFsLive, ThisKernelsFilesParse) {
  // Every system file of the running kernel must parse: the fixtures may go stale, this cannot.
  ProcFs fs;
  auto stat = fs.read_system_stat();
  ASSERT_TRUE(stat) << stat.error().message;
  EXPECT_EQ(stat->cpus.size(), static_cast<std::size_t>(::sysconf(_SC_NPROCESSORS_ONLN)));
  auto mem = fs.read_meminfo();
  ASSERT_TRUE(mem) << mem.error().message;
  EXPECT_TRUE(mem->mem_available_bytes());
  auto vm = fs.read_vmstat();
  ASSERT_TRUE(vm) << vm.error().message;
  EXPECT_TRUE(vm->workingset_refault_file());
  EXPECT_TRUE(fs.read_diskstats());
  auto dev = fs.read_net_dev();
  ASSERT_TRUE(dev) << dev.error().message;
  auto snmp = fs.read_net_snmp();
  ASSERT_TRUE(snmp) << snmp.error().message;
  EXPECT_TRUE(snmp->get("Tcp.RetransSegs"));
  auto netstat = fs.read_net_netstat();
  ASSERT_TRUE(netstat) << netstat.error().message;
  EXPECT_TRUE(netstat->get("TcpExt.ListenDrops"));
  EXPECT_TRUE(fs.read_sockstat());
  EXPECT_TRUE(fs.read_loadavg());
  EXPECT_TRUE(fs.read_file_nr());
  EXPECT_TRUE(fs.read_file_max());
  for (const char* resource : {"cpu", "memory", "io"}) {
    auto p = fs.read_pressure(resource);  // supported or not, never an error
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(p->supported, p->some.has_value());
  }
}

TEST(ProcFsLive, OwnProcess) {
  ProcFs fs;
  const int pid = ::getpid();
  auto stat = fs.read_process_stat(pid);
  ASSERT_TRUE(stat) << stat.error().message;
  EXPECT_EQ(stat->pid, pid);
  EXPECT_EQ(stat->state, 'R');               // it is reading its own stat
  EXPECT_EQ(stat->comm, "collect_procfs_");  // TASK_COMM_LEN truncates to 15 bytes
  auto status = fs.read_process_status(pid);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->uid, ::getuid());
  auto tids = fs.list_tids(pid);
  ASSERT_TRUE(tids);
  EXPECT_EQ((*tids)[0], pid);
  auto sys = fs.read_task_syscall(pid, pid);
  ASSERT_TRUE(sys) << sys.error().message;
  // A thread reading its own syscall file is inside read(2) while the kernel looks.
  EXPECT_EQ(sys->kind, SyscallState::Kind::kInSyscall);
  EXPECT_EQ(sys->nr, SYS_read);
  auto limits = fs.read_limits(pid);
  ASSERT_TRUE(limits);
  ASSERT_NE(limits->max_open_files(), nullptr);
  EXPECT_EQ(limits->max_open_files()->soft, static_cast<std::uint64_t>(::sysconf(_SC_OPEN_MAX)));
  auto cgroup = fs.read_cgroup(pid);
  ASSERT_TRUE(cgroup) << cgroup.error().message;
}

// read_exe names the file as maps lines do: the kernel's " (deleted)" of a replaced binary goes
// (a root of our own, as readlink returns a symlink's text whether or not its target exists).
TEST(ProcFsLive, ExecutableOfOwnProcessAndOfAReplacedBinary) {
  ProcFs fs;
  auto own = fs.read_exe(::getpid());
  ASSERT_TRUE(own) << own.error().message;
  EXPECT_EQ(*own, std::filesystem::read_symlink("/proc/self/exe").string());

  const std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("chokepoint-exe-" + std::to_string(::getpid()));
  std::filesystem::create_directories(root / "42");
  std::filesystem::create_symlink("/opt/app/server (deleted)", root / "42" / "exe");
  ProcFs fake(root.string());
  auto replaced = fake.read_exe(42);
  std::filesystem::remove_all(root);
  ASSERT_TRUE(replaced) << replaced.error().message;
  EXPECT_EQ(*replaced, "/opt/app/server");
  auto missing = fake.read_exe(43);
  ASSERT_FALSE(missing);
  EXPECT_TRUE(is_vanished(missing.error()));
}

TEST(ProcFsLive, ListsAndLosesRealTasks) {
  ProcFs fs;
  auto pids = fs.list_pids();
  ASSERT_TRUE(pids) << pids.error().message;
  EXPECT_TRUE(std::binary_search(pids->begin(), pids->end(), ::getpid()));
  // A child that has exited and been reaped: every read says "vanished", not "broken".
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  auto tids = fs.list_tids(child);
  ASSERT_FALSE(tids);
  EXPECT_TRUE(is_vanished(tids.error()));
  auto stat = fs.read_task_stat(child, child);
  ASSERT_FALSE(stat);
  EXPECT_TRUE(is_vanished(stat.error()));
  auto fds = fs.read_fd_targets(child);
  ASSERT_FALSE(fds);
  EXPECT_TRUE(is_vanished(fds.error()));
}

TEST(ProcFsLive, FdTargetsOfOwnFds) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  util::ScopedFd s0(sv[0]), s1(sv[1]);
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  util::ScopedFd p0(pipe_fds[0]), p1(pipe_fds[1]);
  util::ScopedFd efd(::eventfd(0, EFD_CLOEXEC));
  util::ScopedFd ep(::epoll_create1(EPOLL_CLOEXEC));
  util::ScopedFd tfd(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC));
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR2);
  util::ScopedFd sfd(::signalfd(-1, &mask, SFD_CLOEXEC));
  util::ScopedFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  char tmp[] = "/tmp/chokepoint-fd-XXXXXX";
  util::ScopedFd file(::mkostemp(tmp, O_CLOEXEC));
  ASSERT_TRUE(file.valid());
  ::unlink(tmp);

  ProcFs fs;
  auto fds = fs.read_fd_targets(::getpid());
  ASSERT_TRUE(fds) << fds.error().message;
  std::map<int, FdTarget> by_fd;
  for (auto& e : *fds) by_fd[e.fd] = e.target;
  auto kind_of = [&](const util::ScopedFd& fd) { return by_fd.at(fd.get()).kind; };
  EXPECT_EQ(kind_of(s0), FdTarget::Kind::kSocket);
  EXPECT_NE(by_fd.at(s0.get()).inode, 0u);
  EXPECT_NE(by_fd.at(s0.get()).inode, by_fd.at(s1.get()).inode);
  EXPECT_EQ(kind_of(p0), FdTarget::Kind::kPipe);
  EXPECT_EQ(by_fd.at(p0.get()).inode, by_fd.at(p1.get()).inode);  // one pipe, two ends
  EXPECT_EQ(kind_of(efd), FdTarget::Kind::kEventfd);
  EXPECT_EQ(kind_of(ep), FdTarget::Kind::kEpoll);
  EXPECT_EQ(kind_of(tfd), FdTarget::Kind::kTimerfd);
  EXPECT_EQ(kind_of(sfd), FdTarget::Kind::kSignalfd);
  EXPECT_EQ(kind_of(null), FdTarget::Kind::kDevice);
  EXPECT_EQ(kind_of(file), FdTarget::Kind::kRegularFile);
  EXPECT_TRUE(by_fd.at(file.get()).deleted);
  EXPECT_EQ(by_fd.at(file.get()).path, tmp);
  auto one = fs.read_fd_target(::getpid(), s1.get());
  ASSERT_TRUE(one) << one.error().message;
  EXPECT_EQ(one->kind, FdTarget::Kind::kSocket);
  EXPECT_EQ(one->inode, by_fd.at(s1.get()).inode);
}

// fdinfo's flags tell a file opened O_DSYNC or O_SYNC (its writes sync) from a plain one.
TEST(ProcFsLive, FdFlagsOfOwnFiles) {
  char tmp[] = "/tmp/chokepoint-flags-XXXXXX";
  util::ScopedFd plain(::mkostemp(tmp, O_CLOEXEC));
  ASSERT_TRUE(plain.valid());
  util::ScopedFd dsync(::open(tmp, O_WRONLY | O_DSYNC | O_CLOEXEC));
  util::ScopedFd sync(::open(tmp, O_WRONLY | O_SYNC | O_CLOEXEC));
  ::unlink(tmp);
  ASSERT_TRUE(dsync.valid() && sync.valid());
  ProcFs fs;
  auto p = fs.read_fd_flags(::getpid(), plain.get());
  auto d = fs.read_fd_flags(::getpid(), dsync.get());
  auto s = fs.read_fd_flags(::getpid(), sync.get());
  ASSERT_TRUE(p && d && s);
  EXPECT_EQ(*p & O_DSYNC, 0u);
  EXPECT_NE(*d & O_DSYNC, 0u);
  EXPECT_NE(*d & O_SYNC, static_cast<std::uint32_t>(O_SYNC));
  EXPECT_EQ(*s & O_SYNC, static_cast<std::uint32_t>(O_SYNC));
  EXPECT_EQ(*d & O_ACCMODE, static_cast<std::uint32_t>(O_WRONLY));
  auto closed = fs.read_fd_flags(::getpid(), 99999);
  ASSERT_FALSE(closed);
  EXPECT_TRUE(is_vanished(closed.error()));
}

TEST(ProcFsLive, PermissionDeniedCarriesAHint) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root, to drop to another uid in a child";
  // A child running as nobody may not read root's /proc/PID/io or fd (ptrace-read check).
  const int parent = ::getpid();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(10);
    ProcFs fs;
    int code = 0;
    auto io = fs.read_process_io(parent);
    if (io || !is_permission_denied(io.error())) code |= 1;
    if (!io && io.error().hint.find("run as root or as the process's owner") == std::string::npos)
      code |= 2;
    auto fds = fs.read_fd_targets(parent);
    if (fds || !is_permission_denied(fds.error())) code |= 4;
    auto stat = fs.read_process_stat(parent);  // stat is world-readable
    if (!stat) code |= 8;
    ::_exit(code);
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);
}

}  // namespace
}  // namespace chokepoint::collect::procfs
