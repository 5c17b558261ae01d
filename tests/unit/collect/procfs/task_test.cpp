#include "collect/procfs/task.h"
#include "unit/collect/procfs/fixture_text.h"

#include <gtest/gtest.h>

#include <fstream>
#include <limits>
#include <sstream>
#include <string>

namespace chokepoint::collect::procfs {
namespace {

constexpr Units kUnits = testing::kFixtureUnits;
constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

using testing::fixture;

std::string host_pid() {
  std::string pid = fixture("host/SUBJECT_PID");
  while (!pid.empty() && pid.back() == '\n') pid.pop_back();
  return pid;
}

TEST(TaskStat, ParsesAHostLine) {
  const std::string pid = host_pid();
  auto s = parse_task_stat(fixture("host/" + pid + "/stat"), kUnits);
  ASSERT_TRUE(s);
  EXPECT_EQ(std::to_string(s->pid), pid);
  EXPECT_EQ(s->comm, "python3");
  EXPECT_EQ(s->state, 'S');
  EXPECT_GT(s->ppid, 0);
  EXPECT_EQ(s->num_threads, 3);
  EXPECT_GT(s->start_time_ticks, 0u);
  EXPECT_EQ(s->start_time_ns, s->start_time_ticks * 10'000'000);
  EXPECT_GT(s->rss_bytes, 0u);
  EXPECT_EQ(s->rss_bytes % 4096, 0u);
  ASSERT_TRUE(s->processor);
  EXPECT_GE(*s->processor, 0);
  ASSERT_TRUE(s->delayacct_blkio_ns);
}

TEST(TaskStat, ConvertsFieldsAndUnits) {
  auto s = parse_task_stat(fixture("comm_weird/4242/task/4242/stat"), kUnits);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->pid, 4242);
  EXPECT_EQ(s->state, 'R');
  EXPECT_EQ(s->ppid, 1);
  EXPECT_EQ(s->minflt, 100u);                     // (10)
  EXPECT_EQ(s->majflt, 2u);                       // (12)
  EXPECT_EQ(s->utime_ns, 2'500'000'000u);         // (14) 250 ticks at 100 Hz
  EXPECT_EQ(s->stime_ns, 500'000'000u);           // (15)
  EXPECT_EQ(s->priority, 20);                     // (18)
  EXPECT_EQ(s->num_threads, 1);                   // (20)
  EXPECT_EQ(s->start_time_ticks, 12345u);         // (22)
  EXPECT_EQ(s->vsize_bytes, 10485760u);           // (23)
  EXPECT_EQ(s->rss_bytes, 256u * 4096);           // (24)
  EXPECT_EQ(s->processor, 1);                     // (39)
  EXPECT_EQ(s->delayacct_blkio_ns, 70'000'000u);  // (42) 7 ticks
}

TEST(TaskStat, CommWithSpacesParenAndNewline) {
  auto s = parse_task_stat(fixture("comm_weird/4242/task/4242/stat"), kUnits);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->comm, "a) b\nc)");
  // The same trick with a comm that looks like fields: only the last ')' ends it.
  auto fake = parse_task_stat(
      "5 (x) S 1 2 3) R 9 0 0 0 -1 0 1 0 2 0 3 4 0 0 20 0 1 0 77 4096 1 0 0 0", kUnits);
  ASSERT_TRUE(fake);
  EXPECT_EQ(fake->comm, "x) S 1 2 3");
  EXPECT_EQ(fake->state, 'R');
  EXPECT_EQ(fake->ppid, 9);
  EXPECT_EQ(fake->start_time_ticks, 77u);
  EXPECT_FALSE(fake->processor);
}

TEST(TaskStat, ShortOlderKernelLine) {
  auto s = parse_task_stat(fixture("old_kernel/300/task/300/stat"), kUnits);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->comm, "httpd");
  EXPECT_EQ(s->state, 'D');
  EXPECT_EQ(s->majflt, 12u);
  EXPECT_EQ(s->utime_ns, 6'000'000'000u);
  EXPECT_EQ(s->processor, 0);           // (39) is the last field here
  EXPECT_FALSE(s->delayacct_blkio_ns);  // (42) did not exist yet
}

TEST(TaskStat, CountersNearUint64MaxSaturate) {
  auto s = parse_task_stat(fixture("counters_max/900/task/900/stat"), kUnits);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->minflt, kMax);
  EXPECT_EQ(s->majflt, kMax - 1);
  EXPECT_EQ(s->utime_ns, kMax);
  EXPECT_EQ(s->stime_ns, kMax);
  EXPECT_EQ(s->rss_bytes, kMax);
  EXPECT_EQ(s->delayacct_blkio_ns, kMax);
}

TEST(TaskStat, RejectsMalformedLines) {
  EXPECT_FALSE(parse_task_stat("", kUnits));
  EXPECT_FALSE(parse_task_stat("1 (x", kUnits));
  EXPECT_FALSE(parse_task_stat("1 x) S", kUnits));
  EXPECT_FALSE(
      parse_task_stat("(x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21", kUnits));
  EXPECT_FALSE(parse_task_stat("1 (x) S 1 2 3", kUnits));  // too short
  EXPECT_FALSE(parse_task_stat("1 (x) SS 1 0 0 0 -1 0 1 0 2 0 3 4 0 0 20 0 1 0 77 4096 1",
                               kUnits));  // state
  EXPECT_FALSE(parse_task_stat("1 (x) S 1 0 0 0 -1 0 1 0 2 0 zz 4 0 0 20 0 1 0 77 4096 1",
                               kUnits));  // utime
  EXPECT_FALSE(parse_task_stat("99999999999 (x) S 1 0 0 0 -1 0 1 0 2 0 3 4 0 0 20 0 1 0 77 4096 1",
                               kUnits));  // pid
}

TEST(Schedstat, ParsesThreeCounters) {
  const std::string pid = host_pid();
  auto host = parse_schedstat(fixture("host/" + pid + "/task/" + pid + "/schedstat"));
  ASSERT_TRUE(host);
  EXPECT_GT(host->run_ns, 0u);
  EXPECT_GT(host->timeslices, 0u);
  auto s = parse_schedstat("2500000000 120000000 31\n");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->run_ns, 2'500'000'000u);
  EXPECT_EQ(s->run_delay_ns, 120'000'000u);
  EXPECT_EQ(s->timeslices, 31u);
  auto max = parse_schedstat(fixture("counters_max/900/task/900/schedstat"));
  ASSERT_TRUE(max);
  EXPECT_EQ(max->run_ns, kMax);
  EXPECT_FALSE(parse_schedstat("1 2\n"));
  EXPECT_FALSE(parse_schedstat("1 2 3 4\n"));
  EXPECT_FALSE(parse_schedstat("1 -2 3\n"));
}

TEST(TaskStatus, ParsesTheFieldsWorthHaving) {
  const std::string pid = host_pid();
  auto s = parse_task_status(fixture("host/" + pid + "/status"));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->name, "python3");
  EXPECT_EQ(s->state, 'S');
  EXPECT_EQ(std::to_string(s->tgid), pid);
  EXPECT_EQ(s->pid, s->tgid);
  EXPECT_EQ(s->uid, 0u);
  EXPECT_EQ(s->threads, 3);
  ASSERT_TRUE(s->vm_rss_bytes);
  ASSERT_TRUE(s->vm_hwm_bytes);
  EXPECT_GE(*s->vm_hwm_bytes, *s->vm_rss_bytes);
  EXPECT_EQ(*s->vm_rss_bytes % 1024, 0u);
  ASSERT_TRUE(s->rss_anon_bytes);  // RssAnon: where a leak grows
  EXPECT_LE(*s->rss_anon_bytes, *s->vm_rss_bytes);
  EXPECT_GT(*s->rss_anon_bytes, 0u);
  EXPECT_EQ(s->vm_lck_bytes, 0u);              // VmLck: RLIMIT_MEMLOCK's use
  EXPECT_EQ(s->vm_stk_bytes, 132u * 1024);     // VmStk: RLIMIT_STACK's
  EXPECT_EQ(s->cap_eff, 0x000001fffeffffffu);  // CapEff, as captured

  auto weird = parse_task_status(fixture("comm_weird/4242/status"));
  ASSERT_TRUE(weird);
  EXPECT_EQ(weird->name, "a) b\nc)");  // status escapes the newline; the parser undoes it
  EXPECT_EQ(weird->uid, 1000u);
  EXPECT_EQ(weird->ppid, 1);
  EXPECT_EQ(weird->vm_rss_bytes, 1024u * 1024);
  EXPECT_EQ(weird->vm_hwm_bytes, 2048u * 1024);
  EXPECT_EQ(weird->voluntary_ctxt_switches, 5u);
  EXPECT_EQ(weird->nonvoluntary_ctxt_switches, 7u);
}

// Regression (issue 18): processes[].name held a literal "\n" where threads[].comm held a real
// newline. The name is now the comm's raw bytes, as in stat.
TEST(TaskStatus, NameIsTheRawCommLikeStat) {
  auto s = parse_task_status(
      "Name:\ta\\\\b\\nc\x1b]0;\a\\x\nState:\tS (sleeping)\nTgid:\t9\nPid:\t9\nPPid:\t1\n"
      "Uid:\t0\t0\t0\t0\n");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->name, "a\\b\nc\x1b]0;\a\\x");  // ESC and BEL are not escaped by the kernel
}

TEST(TaskStatus, KernelThreadsHaveNoVmLines) {
  auto s = parse_task_status(
      "Name:\tkthreadd\nState:\tS (sleeping)\nTgid:\t2\nPid:\t2\nPPid:\t0\nUid:\t0\t0\t0\t0\n"
      "Threads:\t1\n");
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->vm_rss_bytes);
  EXPECT_FALSE(s->vm_hwm_bytes);
}

TEST(TaskStatus, RejectsMissingOrBadFields) {
  EXPECT_FALSE(parse_task_status(""));
  EXPECT_FALSE(parse_task_status("Name:\tx\nState:\tS\nTgid:\t1\nPid:\t1\nPPid:\t0\n"));  // Uid
  EXPECT_FALSE(parse_task_status(
      "Name:\tx\nState:\tS\nTgid:\t1\nPid:\t1\nPPid:\t0\nUid:\t0\nVmRSS:\t12 MB\n"));
  EXPECT_FALSE(parse_task_status("Name:\tx\nState:\t\nTgid:\t1\nPid:\t1\nPPid:\t0\nUid:\t0\n"));
}

TEST(TaskIo, ParsesAllSeven) {
  const std::string pid = host_pid();
  auto host = parse_task_io(fixture("host/" + pid + "/io"));
  ASSERT_TRUE(host);
  EXPECT_GT(host->rchar, 0u);
  EXPECT_GT(host->syscr, 0u);
  auto max = parse_task_io(fixture("counters_max/900/task/900/io"));
  ASSERT_TRUE(max);
  EXPECT_EQ(max->rchar, kMax);
  EXPECT_EQ(max->wchar, kMax - 1);
  EXPECT_EQ(max->syscr, kMax - 2);
  EXPECT_EQ(max->syscw, kMax - 3);
  EXPECT_EQ(max->read_bytes, kMax - 4);
  EXPECT_EQ(max->write_bytes, kMax - 5);
  EXPECT_EQ(max->cancelled_write_bytes, 0u);
  EXPECT_FALSE(parse_task_io("rchar: 1\nwchar: 2\n"));
  EXPECT_FALSE(
      parse_task_io("rchar: x\nwchar: 2\nsyscr: 1\nsyscw: 1\nread_bytes: 0\n"
                    "write_bytes: 0\ncancelled_write_bytes: 0\n"));
}

TEST(Syscall, ThreeShapes) {
  auto running = parse_syscall("running\n");
  ASSERT_TRUE(running);
  EXPECT_EQ(running->kind, SyscallState::Kind::kRunning);
  EXPECT_EQ(running->nr, -1);

  auto blocked = parse_syscall("-1 0x7ffe1234 0x401000\n");
  ASSERT_TRUE(blocked);
  EXPECT_EQ(blocked->kind, SyscallState::Kind::kNotInSyscall);
  EXPECT_EQ(blocked->sp, 0x7ffe1234u);
  EXPECT_EQ(blocked->pc, 0x401000u);

  // The host fixture's reader thread is in recvfrom (45 on x86_64) on fd 3.
  auto in = parse_syscall("45 0x3 0x7fb5befaf260 0x1 0x0 0x0 0x0 0x7fb5beefba10 0x7fb5bf528974\n");
  ASSERT_TRUE(in);
  EXPECT_EQ(in->kind, SyscallState::Kind::kInSyscall);
  EXPECT_EQ(in->nr, 45);
  EXPECT_EQ(in->args[0], 3u);
  EXPECT_EQ(in->args[2], 1u);
  EXPECT_EQ(in->pc, 0x7fb5bf528974u);

  EXPECT_FALSE(parse_syscall(""));
  EXPECT_FALSE(parse_syscall("-1 0x1"));
  EXPECT_FALSE(parse_syscall("45 0x3 0x1 0x1 0x0 0x0 0x0 0x7f"));  // 8 tokens
  EXPECT_FALSE(parse_syscall("45 0x3 0x1 0x1 0x0 0x0 zz 0x7f 0x7f"));
  EXPECT_FALSE(parse_syscall("-2 0x3 0x1 0x1 0x0 0x0 0x0 0x7f 0x7f"));
}

TEST(Syscall, HostThreadsAreInSyscalls) {
  const std::string pid = host_pid();
  auto s = parse_syscall(fixture("host/" + pid + "/task/" + pid + "/syscall"));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind, SyscallState::Kind::kInSyscall);  // the main thread sleeps in a syscall
}

TEST(Wchan, ZeroMeansNone) {
  EXPECT_EQ(parse_wchan("0"), "");
  EXPECT_EQ(parse_wchan("0\n"), "");
  EXPECT_EQ(parse_wchan("hrtimer_nanosleep"), "hrtimer_nanosleep");
  EXPECT_EQ(parse_wchan(""), "");
}

TEST(KernelStack, NamesInnermostFirstWithoutOffsets) {
  const auto names = parse_kernel_stack(
      "[<0>] futex_wait_queue+0xe1/0x120\n[<0>] do_futex+0x13a/0x1b0\n"
      "garbage line\n[<0>] \n[<0>] entry_SYSCALL_64_after_hwframe+0x76/0x7e");
  EXPECT_EQ(names, (std::vector<std::string>{"futex_wait_queue", "do_futex",
                                             "entry_SYSCALL_64_after_hwframe"}));
  EXPECT_TRUE(parse_kernel_stack("").empty());
}

TEST(FdTarget, Kinds) {
  struct Case {
    const char* text;
    FdTarget::Kind kind;
    std::uint64_t inode;
    const char* path;
    bool deleted;
  };
  const Case cases[] = {
      {"socket:[123]", FdTarget::Kind::kSocket, 123, "socket:[123]", false},
      {"pipe:[9]", FdTarget::Kind::kPipe, 9, "pipe:[9]", false},
      {"anon_inode:[eventfd]", FdTarget::Kind::kEventfd, 0, "anon_inode:[eventfd]", false},
      {"anon_inode:[eventpoll]", FdTarget::Kind::kEpoll, 0, "anon_inode:[eventpoll]", false},
      {"anon_inode:[timerfd]", FdTarget::Kind::kTimerfd, 0, "anon_inode:[timerfd]", false},
      {"anon_inode:[signalfd]", FdTarget::Kind::kSignalfd, 0, "anon_inode:[signalfd]", false},
      {"anon_inode:inotify", FdTarget::Kind::kAnonOther, 0, "anon_inode:inotify", false},
      {"anon_inode:[io_uring]", FdTarget::Kind::kAnonOther, 0, "anon_inode:[io_uring]", false},
      {"/dev/null", FdTarget::Kind::kDevice, 0, "/dev/null", false},
      {"/dev/pts/0", FdTarget::Kind::kDevice, 0, "/dev/pts/0", false},
      {"/dev/shm/x", FdTarget::Kind::kRegularFile, 0, "/dev/shm/x", false},
      {"/var/x (deleted)", FdTarget::Kind::kRegularFile, 0, "/var/x", true},
      {"/memfd:buf (deleted)", FdTarget::Kind::kRegularFile, 0, "/memfd:buf", true},
      {"/var/lib/a b.db", FdTarget::Kind::kRegularFile, 0, "/var/lib/a b.db", false},
      {"net:[4026531840]", FdTarget::Kind::kOther, 4026531840u, "net:[4026531840]", false},
      {"socket:[x]", FdTarget::Kind::kOther, 0, "socket:[x]", false},
      {"weird", FdTarget::Kind::kOther, 0, "weird", false},
  };
  for (const auto& c : cases) {
    auto t = parse_fd_target(c.text);
    ASSERT_TRUE(t) << c.text;
    EXPECT_EQ(t->kind, c.kind) << c.text << " -> " << fd_kind_name(t->kind);
    EXPECT_EQ(t->inode, c.inode) << c.text;
    EXPECT_EQ(t->path, c.path) << c.text;
    EXPECT_EQ(t->deleted, c.deleted) << c.text;
  }
  EXPECT_FALSE(parse_fd_target(""));
  EXPECT_EQ(fd_kind_name(FdTarget::Kind::kEpoll), "epoll");
}

TEST(FdinfoFlags, OctalFlagsLine) {
  EXPECT_EQ(parse_fdinfo_flags("pos:\t0\nflags:\t0100001\nmnt_id:\t25\nino:\t12\n"), 0100001u);
  EXPECT_EQ(parse_fdinfo_flags("flags:\t02\n"), 02u);
  EXPECT_EQ(parse_fdinfo_flags("pos:\t9\nflags:\t04010001"), 04010001u);  // O_SYNC, no newline
  EXPECT_EQ(parse_fdinfo_flags("flags:\t37777777777\n"), 037777777777u);  // 32 bits
  EXPECT_FALSE(parse_fdinfo_flags(""));
  EXPECT_FALSE(parse_fdinfo_flags("pos:\t0\nmnt_id:\t25\n"));
  EXPECT_FALSE(parse_fdinfo_flags("flags:\t\n"));
  EXPECT_FALSE(parse_fdinfo_flags("flags:\t0109\n"));  // not octal
  EXPECT_FALSE(parse_fdinfo_flags("flags:\t-1\n"));
  EXPECT_FALSE(parse_fdinfo_flags("flags:\t77777777777\n"));  // over 32 bits
}

TEST(Limits, MaxOpenFiles) {
  const std::string pid = host_pid();
  auto limits = parse_limits(fixture("host/" + pid + "/limits"));
  ASSERT_TRUE(limits);
  EXPECT_EQ(limits->limits.size(), 16u);
  const Limit* nofile = limits->max_open_files();
  ASSERT_NE(nofile, nullptr);
  EXPECT_GT(nofile->soft, 0u);
  EXPECT_GE(nofile->hard, nofile->soft);
  EXPECT_EQ(nofile->units, "files");
  const Limit* cpu = limits->find("Max cpu time");
  ASSERT_NE(cpu, nullptr);
  EXPECT_EQ(cpu->soft, kUnlimited);
  EXPECT_EQ(cpu->units, "seconds");
  const Limit* nice = limits->find("Max nice priority");
  ASSERT_NE(nice, nullptr);
  EXPECT_EQ(nice->units, "");  // printed without units
  EXPECT_EQ(limits->find("Max nothing"), nullptr);

  EXPECT_FALSE(parse_limits(""));
  EXPECT_FALSE(parse_limits("Limit Soft Limit Hard Limit Units\n"));
  EXPECT_FALSE(parse_limits("Max open files 1024 4096 files\n"));  // no header
  EXPECT_FALSE(parse_limits("Limit Soft Limit Hard Limit Units\nMax open files 1024\n"));
}

TEST(Cgroup, V1AndV2) {
  const std::string pid = host_pid();
  auto host = parse_cgroup(fixture("host/" + pid + "/cgroup"));
  ASSERT_TRUE(host);
  EXPECT_GE(host->size(), 1u);
  EXPECT_EQ(cgroup_v2_path(*host), "/");

  auto v1 = parse_cgroup("4:memory:/a/b\n3:cpu,cpuacct:/x:y\n1:name=systemd:/user.slice\n");
  ASSERT_TRUE(v1);
  ASSERT_EQ(v1->size(), 3u);
  EXPECT_EQ((*v1)[0].hierarchy_id, 4);
  EXPECT_EQ((*v1)[0].controllers, std::vector<std::string>{"memory"});
  EXPECT_EQ((*v1)[1].controllers, (std::vector<std::string>{"cpu", "cpuacct"}));
  EXPECT_EQ((*v1)[1].path, "/x:y");  // a path may hold ':'
  EXPECT_FALSE(cgroup_v2_path(*v1));

  auto v2 = parse_cgroup("0::/system.slice/nginx.service\n");
  ASSERT_TRUE(v2);
  EXPECT_EQ(cgroup_v2_path(*v2), "/system.slice/nginx.service");

  EXPECT_FALSE(parse_cgroup(""));
  EXPECT_FALSE(parse_cgroup("x::/\n"));
  EXPECT_FALSE(parse_cgroup("0:/\n"));
}

}  // namespace
}  // namespace chokepoint::collect::procfs
