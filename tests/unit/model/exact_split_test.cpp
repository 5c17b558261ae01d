// The exact mode in the builder: the kernel's sums divide each thread's off-CPU time, classed as
// the sampler classed the same (system call, object); unseen objects take the system call's
// class; time the kernel did not see keeps the sampled division; windows cut at ticks start from
// the sums at the cut.
#include <gtest/gtest.h>
#include <linux/futex.h>
#include <sys/syscall.h>

#include "model/builder.h"
#include "model/exact_split.h"

namespace chokepoint::model {
namespace {

constexpr std::int64_t kMs = 1'000'000;
constexpr std::uint64_t kSocketFd = 5;
constexpr std::uint64_t kMutex = 0x1000;

WaitObservation upstream_read() {
  WaitObservation w;
  w.state = 'S';
  w.where = SyscallWhere::kInSyscall;
  w.syscall_nr = SYS_read;
  w.args = {kSocketFd, 0, 0, 0, 0, 0};
  w.fd_role = FdRole::kSocketClient;
  w.fd_detail = "10.0.0.2:5432";
  return w;
}

WaitObservation mutex_wait() {
  WaitObservation w;
  w.state = 'S';
  w.where = SyscallWhere::kInSyscall;
  w.syscall_nr = SYS_futex;
  w.args = {kMutex, FUTEX_WAIT_PRIVATE, 2, 0, 0, 0};
  return w;
}

// A read at `at`; the one before (prev_poll_ns) was the tick before, 1000 ms earlier.
ThreadSample sample(std::int64_t at, bool first, std::uint64_t run_ns, WaitObservation wait) {
  ThreadSample s;
  s.key = {100, 1, 7};
  s.at_ns = at;
  s.prev_poll_ns = first ? at : at - 1000 * kMs;
  s.first = first;
  s.comm = "worker";
  s.process_name = "svc";
  s.has_stat = true;
  s.run_ns = run_ns;
  s.wait = std::move(wait);
  return s;
}

ExactWait sum(ExactKind kind, long nr, std::uint64_t object, std::int64_t ms) {
  ExactWait w;
  w.pid = 100;
  w.tid = 1;
  w.start_time_ticks = 7;  // sample()'s thread
  w.kind = kind;
  w.syscall_nr = nr;
  w.object = object;
  w.ns = static_cast<std::uint64_t>(ms * kMs);
  w.count = 1;
  return w;
}

ExactSample exact(std::vector<ExactWait> waits, std::uint64_t switches = 0) {
  ExactSample x;
  x.state.on = true;
  x.state.mode = "exact";
  x.waits = std::move(waits);
  x.state.switches = switches;
  return x;
}

RecordingInfo info() {
  RecordingInfo i;
  i.target = {"pid", "100", {}};
  i.interval_ns = 100 * kMs;
  return i;
}

// Thread 1: first seen reading its upstream socket, read again at 1000 ms after running 100 ms,
// queued on a mutex. Sampled: the 900 ms off the CPU are all the mutex's (the wait seen at the
// interval's end).
std::vector<Tick> ticks_with(std::optional<ExactSample> at_end) {
  std::vector<Tick> ticks(2);
  ticks[0].at_ns = 0;
  ticks[0].threads.push_back(sample(0, true, 0, upstream_read()));
  if (at_end) ticks[0].exact = exact({});
  ticks[1].at_ns = 1000 * kMs;
  ticks[1].threads.push_back(sample(1000 * kMs, false, 100 * kMs, mutex_wait()));
  ticks[1].exact = std::move(at_end);
  return ticks;
}

const Source* find_source(const Observation& obs, const std::string& name) {
  for (const auto& s : obs.sources) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

TEST(ExactSplit, TheKernelsSumsDivideTheOffCpuTimeClassedAsTheSamplerClassedEachObject) {
  const Observation sampled = build_observation(info(), ticks_with(std::nullopt));
  ASSERT_EQ(sampled.threads.size(), 1u);
  EXPECT_EQ(sampled.threads[0].split[Resource::kLock], 900 * kMs);
  EXPECT_EQ(find_source(sampled, "time split"), nullptr);  // no word without the exact mode

  // The kernel saw 600 ms in read(5) and 300 ms on the mutex.
  const Observation obs = build_observation(
      info(), ticks_with(exact({sum(ExactKind::kInterruptible, SYS_read, kSocketFd, 600),
                                sum(ExactKind::kInterruptible, SYS_futex, kMutex, 300),
                                sum(ExactKind::kRunQueueWakeup, SYS_futex, kMutex, 40)},
                               2000)));
  ASSERT_EQ(obs.threads.size(), 1u);
  const ThreadAccount& t = obs.threads[0];
  EXPECT_EQ(t.split[Resource::kNetwork], 600 * kMs);
  EXPECT_EQ(t.split[Resource::kLock], 300 * kMs);
  EXPECT_EQ(t.split[Resource::kOnCpu], 100 * kMs);  // schedstat's, untouched
  EXPECT_EQ(t.split.total_ns(), 1000 * kMs);
  // The evidence follows the new time: the network's detail is the sampler's name for the socket,
  // and the mutex's detail holds the lock's time.
  std::int64_t net_details = 0;
  for (const auto& [text, ns] : t.details[static_cast<std::size_t>(Resource::kNetwork)]) {
    EXPECT_NE(text.find("10.0.0.2:5432"), std::string::npos) << text;
    net_details += ns;
  }
  EXPECT_EQ(net_details, 600 * kMs);
  std::int64_t lock_details = 0;
  for (const auto& [text, ns] : t.details[static_cast<std::size_t>(Resource::kLock)]) {
    lock_details += ns;
  }
  EXPECT_LE(lock_details, 300 * kMs);
  EXPECT_GE(lock_details, 300 * kMs - 10);
  const Source* s = find_source(obs, "time split");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->available);
  EXPECT_NE(s->detail.find("exact (--mode exact)"), std::string::npos) << s->detail;
  EXPECT_NE(s->detail.find("2000 switches/s"), std::string::npos) << s->detail;
  EXPECT_NE(s->detail.find("1 of 1 threads"), std::string::npos) << s->detail;
}

// The sources line says how the blocks were thinned: by length (thin_below_ns_max, the threshold
// named), or, in a recording made before, 1 in up to `every` (thin_every_max); and that every one
// was accounted when none was thinned out.
TEST(ExactSplit, TheSourcesLineSaysHowTheBlocksWereThinned) {
  const auto source_with = [](std::uint64_t thinned, std::uint64_t below_ns, std::uint32_t every) {
    std::optional<ExactSample> end =
        exact({sum(ExactKind::kInterruptible, SYS_futex, kMutex, 900)}, 10'000);
    end->state.budget_per_cpu_s = 5'000;
    end->state.thinned_out = thinned;
    end->state.thin_below_ns_max = below_ns;
    end->state.thin_every_max = every;
    const Observation obs = build_observation(info(), ticks_with(std::move(end)));
    const Source* s = find_source(obs, "time split");
    return s == nullptr ? std::string() : s->detail;
  };
  const std::string by_length = source_with(7'500, 6'600'000, 1);
  EXPECT_NE(by_length.find("above 5000 blocks per CPU per second thinned by length"),
            std::string::npos)
      << by_length;
  EXPECT_NE(by_length.find("at most 6.6 ms"), std::string::npos) << by_length;
  EXPECT_NE(by_length.find("75.0% of the switches not accounted"), std::string::npos) << by_length;
  EXPECT_NE(source_with(2'000, 250'000, 1).find("at most 250 µs"), std::string::npos);
  const std::string old = source_with(2'500, 0, 4);
  EXPECT_NE(old.find("1 in up to 4 accounted and weighed by it (25.0% not accounted)"),
            std::string::npos)
      << old;
  EXPECT_NE(source_with(0, 0, 1).find("every one accounted"), std::string::npos);
}

// An event loop in epoll_wait(4): its first read judged its upstreams at tcp_info's jiffy
// resolution (the socket-order tracer starts at that read) and saw no request out: idle; the three
// later reads saw one out: network. The first read closes no interval in the sampled split, and
// here it only decides a wait no later read saw: the kernel's 2,700 ms in epoll_wait are the
// network's. (Regression: weighed as one read of four, a quarter went to idle, the lab proxy's
// 0.045 from the bpftrace reference in about half the runs.)
TEST(ExactSplit, AThreadsFirstReadDecidesOnlyAWaitNoLaterReadSaw) {
  constexpr std::uint64_t kEpollFd = 4;
  const auto epoll_wait = [](bool upstream_out) {
    WaitObservation w;
    w.state = 'S';
    w.where = SyscallWhere::kInSyscall;
    w.syscall_nr = SYS_epoll_wait;
    w.args = {kEpollFd, 0, 0, 0, 0, 0};
    w.process_waits_on_network = upstream_out;
    w.fd_detail = upstream_out ? "upstream 10.0.0.2:80" : "";
    return w;
  };
  std::vector<Tick> ticks(4);
  for (std::size_t i = 0; i < ticks.size(); ++i) {
    const std::int64_t at = static_cast<std::int64_t>(i) * 1000 * kMs;
    ticks[i].at_ns = at;
    ticks[i].threads.push_back(sample(at, i == 0, i * 100 * kMs, epoll_wait(i != 0)));
    ticks[i].exact =
        exact(i == 0 ? std::vector<ExactWait>{}
                     : std::vector<ExactWait>{sum(ExactKind::kInterruptible, SYS_epoll_wait,
                                                  kEpollFd, static_cast<std::int64_t>(i) * 900)});
  }
  const Observation obs = build_observation(info(), ticks);
  ASSERT_EQ(obs.threads.size(), 1u);
  const ThreadAccount& t = obs.threads[0];
  EXPECT_GT(t.split[Resource::kNetwork], 2690 * kMs);
  EXPECT_LT(t.split[Resource::kIdle], 10 * kMs);
  EXPECT_EQ(t.split.total_ns(), 3000 * kMs);
}

// Regression: thread id 1 handed out again to a new thread (start 9) while the old one (start 7)
// is watched; the kernel keys sums by start time too, and the new thread's do not add to the old.
TEST(ExactSplit, AThreadIdReusedByANewThreadDoesNotMergeItsSums) {
  ExactWait other = sum(ExactKind::kInterruptible, SYS_futex, kMutex, 5000);
  other.start_time_ticks = 9;
  ExactWait other_read = sum(ExactKind::kInterruptible, SYS_read, kSocketFd, 4000);
  other_read.start_time_ticks = 9;
  const Observation obs = build_observation(
      info(),
      ticks_with(exact({sum(ExactKind::kInterruptible, SYS_read, kSocketFd, 600),
                        sum(ExactKind::kInterruptible, SYS_futex, kMutex, 300), other, other_read},
                       2000)));
  ASSERT_EQ(obs.threads.size(), 1u);
  EXPECT_EQ(obs.threads[0].split[Resource::kNetwork], 600 * kMs);
  EXPECT_EQ(obs.threads[0].split[Resource::kLock], 300 * kMs);
}

TEST(ExactSplit, AnObjectTheSamplerNeverSawTakesItsSystemCallsClass) {
  const Observation obs = build_observation(
      info(), ticks_with(exact({sum(ExactKind::kInterruptible, SYS_nanosleep, 0, 450),
                                sum(ExactKind::kInterruptible, SYS_futex, kMutex, 450)})));
  ASSERT_EQ(obs.threads.size(), 1u);
  EXPECT_EQ(obs.threads[0].split[Resource::kSleep], 450 * kMs);
  EXPECT_EQ(obs.threads[0].split[Resource::kLock], 450 * kMs);
}

// How the kernel read a futex wait (stateacct.h's STATEACCT_FUTEX_*): recorded, op, value 2,
// private.
FutexOp futex_op(std::uint64_t word, int op, bool val2) {
  const unsigned how = 0x80u | static_cast<unsigned>(op & FUTEX_CMD_MASK) | (val2 ? 0x10u : 0u) |
                       ((op & FUTEX_PRIVATE_FLAG) != 0 ? 0x20u : 0u);
  return {100, word, static_cast<std::uint8_t>(how)};
}

// Regression (a short contended mutex wait read idle where the reference says lock): words the
// sampler never caught a thread on are classed by the op and value the kernel read at the
// switch-out, as the sampler would have classed them.
TEST(ExactSplit, AFutexWordTheSamplerNeverSawIsClassedByTheOpTheKernelRead) {
  constexpr std::uint64_t kCondvar = 0x2000, kPi = 0x3000, kOld = 0x4000;
  std::vector<Tick> ticks(2);
  ticks[0].at_ns = 0;
  ticks[0].threads.push_back(sample(0, true, 0, upstream_read()));
  ticks[0].exact = exact({});
  ticks[0].exact->futex_ops = {futex_op(kMutex, FUTEX_WAIT_PRIVATE, true)};
  ticks[1].at_ns = 1000 * kMs;
  ticks[1].threads.push_back(sample(1000 * kMs, false, 100 * kMs, upstream_read()));
  ticks[1].exact = exact({sum(ExactKind::kInterruptible, SYS_futex, kMutex, 300),
                          sum(ExactKind::kInterruptible, SYS_futex, kCondvar, 200),
                          sum(ExactKind::kInterruptible, SYS_futex, kPi, 100),
                          // No op kept (a recording from before): the call alone, a wait on a
                          // value (idle).
                          sum(ExactKind::kInterruptible, SYS_futex, kOld, 100),
                          sum(ExactKind::kInterruptible, SYS_read, kSocketFd, 200)});
  ticks[1].exact->futex_ops = {futex_op(kCondvar, FUTEX_WAIT_BITSET_PRIVATE, false),
                               futex_op(kPi, FUTEX_LOCK_PI_PRIVATE, false)};
  const Observation obs = build_observation(info(), ticks);
  ASSERT_EQ(obs.threads.size(), 1u);
  const ThreadAccount& t = obs.threads[0];
  EXPECT_EQ(t.split[Resource::kLock], 400 * kMs);
  EXPECT_EQ(t.split[Resource::kIdle], 300 * kMs);
  EXPECT_EQ(t.split[Resource::kNetwork], 200 * kMs);
  const auto& lock = t.details[static_cast<std::size_t>(Resource::kLock)];
  EXPECT_EQ(lock.count("mutex 0x1000"), 1u);
  EXPECT_EQ(lock.count("pi-mutex 0x3000"), 1u);
}

// A word the sampler did see keeps the sampler's class: the op only stands in for it.
TEST(ExactSplit, AFutexWordTheSamplerSawKeepsItsClassWhateverTheOp) {
  auto ticks = ticks_with(exact({sum(ExactKind::kInterruptible, SYS_futex, kMutex, 900)}));
  ticks[1].exact->futex_ops = {futex_op(kMutex, FUTEX_WAIT_BITSET_PRIVATE, false)};
  const Observation obs = build_observation(info(), ticks);
  ASSERT_EQ(obs.threads.size(), 1u);
  EXPECT_EQ(obs.threads[0].split[Resource::kLock], 900 * kMs);
}

// Regression (a column of the report's heat map named "fdatasync" without its file, and an
// upstream read no read of the sampler caught counted as idle): the fds the sampler never caught a
// thread on are classed and named by what the collector resolved when the sums first named them
// (FdName). One it could not resolve (closed by then) keeps the call's own class.
TEST(ExactSplit, AnFdTheSamplerNeverSawIsClassedAndNamedByWhatTheCollectorResolved) {
  constexpr std::uint64_t kWal = 7, kCache = 8, kClosed = 9;
  auto build = [&](bool named) {
    std::vector<Tick> ticks(2);
    ticks[0].at_ns = 0;
    ticks[0].threads.push_back(sample(0, true, 0, mutex_wait()));
    ticks[0].exact = exact({});
    ticks[1].at_ns = 1000 * kMs;
    ticks[1].threads.push_back(sample(1000 * kMs, false, 100 * kMs, mutex_wait()));
    ticks[1].exact = exact({sum(ExactKind::kUninterruptible, SYS_fdatasync, kWal, 300),
                            sum(ExactKind::kInterruptible, SYS_read, kCache, 200),
                            sum(ExactKind::kInterruptible, SYS_read, kClosed, 100),
                            sum(ExactKind::kInterruptible, SYS_futex, kMutex, 300)});
    if (named) {
      ticks[1].exact->fd_names = {{100, kWal, FdRole::kRegularFile, "/data/wal"},
                                  {100, kCache, FdRole::kSocketClient, "upstream 10.0.0.3:6379"}};
    }
    const Observation obs = build_observation(info(), ticks);
    EXPECT_EQ(obs.threads.size(), 1u);
    return obs.threads.empty() ? ThreadAccount{} : obs.threads[0];
  };
  const ThreadAccount unnamed = build(false);
  EXPECT_EQ(unnamed.split[Resource::kDisk], 300 * kMs);
  EXPECT_EQ(unnamed.split[Resource::kIdle], 300 * kMs);  // a read of an fd of no known kind
  EXPECT_EQ(unnamed.details[static_cast<std::size_t>(Resource::kDisk)].count("fdatasync"), 1u);

  const ThreadAccount t = build(true);
  EXPECT_EQ(t.split[Resource::kDisk], 300 * kMs);
  EXPECT_EQ(t.split[Resource::kNetwork], 200 * kMs);
  EXPECT_EQ(t.split[Resource::kIdle], 100 * kMs);
  EXPECT_EQ(t.split[Resource::kLock], 300 * kMs);
  const auto& disk = t.details[static_cast<std::size_t>(Resource::kDisk)];
  EXPECT_EQ(disk.count("fdatasync /data/wal"), 1u) << disk.begin()->first;
  const auto& net = t.details[static_cast<std::size_t>(Resource::kNetwork)];
  EXPECT_EQ(net.count("read upstream 10.0.0.3:6379"), 1u) << net.begin()->first;
}

// An fd number is reused: the latest name of the fd stands (the collector names a (call, fd)
// again long after; a connection it opened, closed, and the number given to a client's).
TEST(ExactSplit, TheLatestNameOfAnFdStands) {
  constexpr std::uint64_t kFd = 8;
  std::vector<Tick> ticks(3);
  ticks[0].at_ns = 0;
  ticks[0].threads.push_back(sample(0, true, 0, mutex_wait()));
  ticks[0].exact = exact({});
  ticks[0].exact->fd_names = {{100, kFd, FdRole::kSocketClient, "upstream 10.0.0.3:6379"}};
  ticks[1].at_ns = 500 * kMs;
  ticks[1].exact = exact({});
  ticks[1].exact->fd_names = {{100, kFd, FdRole::kSocketServer, "client 10.0.0.9"}};
  ticks[2].at_ns = 1000 * kMs;
  ticks[2].threads.push_back(sample(1000 * kMs, false, 100 * kMs, mutex_wait()));
  ticks[2].exact = exact({sum(ExactKind::kInterruptible, SYS_read, kFd, 600),
                          sum(ExactKind::kInterruptible, SYS_futex, kMutex, 300)});
  const Observation obs = build_observation(info(), ticks);
  ASSERT_EQ(obs.threads.size(), 1u);
  const ThreadAccount& t = obs.threads[0];
  EXPECT_EQ(t.split[Resource::kIdle], 600 * kMs);  // waiting for its client's next request
  EXPECT_EQ(t.split[Resource::kNetwork], 0);
  EXPECT_EQ(t.details[static_cast<std::size_t>(Resource::kIdle)].count("read client 10.0.0.9"), 1u);
}

TEST(ExactSplit, TimeTheKernelDidNotSeeKeepsTheSampledDivision) {
  // Only 300 ms of the 900 were seen (the thread was blocked when the accounting started): the
  // other 600 ms stay as sampled (lock).
  const Observation obs = build_observation(
      info(), ticks_with(exact({sum(ExactKind::kInterruptible, SYS_read, kSocketFd, 300)})));
  ASSERT_EQ(obs.threads.size(), 1u);
  EXPECT_EQ(obs.threads[0].split[Resource::kNetwork], 300 * kMs);
  EXPECT_EQ(obs.threads[0].split[Resource::kLock], 600 * kMs);
}

TEST(ExactSplit, SumsAboveTheWallTimeAreScaledToIt) {
  const Observation obs = build_observation(
      info(), ticks_with(exact({sum(ExactKind::kInterruptible, SYS_read, kSocketFd, 1200),
                                sum(ExactKind::kInterruptible, SYS_futex, kMutex, 600)})));
  ASSERT_EQ(obs.threads.size(), 1u);
  EXPECT_EQ(obs.threads[0].split[Resource::kNetwork], 600 * kMs);
  EXPECT_EQ(obs.threads[0].split[Resource::kLock], 300 * kMs);
  EXPECT_EQ(obs.threads[0].split.total_ns(), 1000 * kMs);
}

// Thread 1 on the mutex at every read (0, 200 and 1000 ms), 100 ms on the CPU and 200 ms in
// the run queue in the second interval.
std::vector<Tick> mutex_ticks(std::vector<ExactWait> sums) {
  std::vector<Tick> ticks(3);
  ticks[0].at_ns = 0;
  ticks[0].threads.push_back(sample(0, true, 0, mutex_wait()));
  ticks[0].exact = exact({});
  ticks[1].at_ns = 200 * kMs;
  ticks[1].threads.push_back(sample(200 * kMs, false, 0, mutex_wait()));
  ticks[1].exact = exact({});
  ticks[2].at_ns = 1000 * kMs;
  ThreadSample s = sample(1000 * kMs, false, 100 * kMs, mutex_wait());
  s.run_delay_ns = 200 * kMs;
  ticks[2].threads.push_back(s);
  ticks[2].exact = exact(std::move(sums));
  return ticks;
}

TEST(ExactSplit, OnlyTheRunQueueTimeAfterALockWakeupTheKernelMeasuredIsLock) {
  // Sampled: on the mutex at both ends, so all 200 ms of run-queue time are the lock's.
  const Observation sampled = build_observation(info(), mutex_ticks({}));
  ASSERT_EQ(sampled.threads.size(), 1u);
  EXPECT_EQ(sampled.threads[0].split[Resource::kLock], 900 * kMs);
  EXPECT_EQ(sampled.threads[0].split[Resource::kCpuWait], 0);
  // The kernel: 700 ms blocked on the mutex, 50 ms in the run queue after its wakeups; the other
  // 150 ms of run-queue time followed preemptions or other waits: cpu_wait.
  const Observation obs = build_observation(
      info(), mutex_ticks({sum(ExactKind::kInterruptible, SYS_futex, kMutex, 700),
                           sum(ExactKind::kRunQueueWakeup, SYS_futex, kMutex, 50)}));
  ASSERT_EQ(obs.threads.size(), 1u);
  const ThreadAccount& t = obs.threads[0];
  EXPECT_EQ(t.split[Resource::kLock], 750 * kMs);
  EXPECT_EQ(t.split[Resource::kCpuWait], 150 * kMs);
  EXPECT_EQ(t.split[Resource::kOnCpu], 100 * kMs);
  EXPECT_EQ(t.split.total_ns(), 1000 * kMs);
  // A semaphore's waiter (a reply hand-off) waited for its poster's work: its core wait after
  // the wakeup stays cpu_wait, though the semaphore wait is lock.
  WaitObservation sem = mutex_wait();
  sem.args = {kMutex, FUTEX_WAIT_BITSET_PRIVATE, 0, 0, 0, 0};
  sem.futex_caller = "sem_wait";
  auto sem_ticks = mutex_ticks({sum(ExactKind::kInterruptible, SYS_futex, kMutex, 700),
                                sum(ExactKind::kRunQueueWakeup, SYS_futex, kMutex, 50)});
  for (auto& tick : sem_ticks) tick.threads[0].wait = sem;
  const Observation semaphore = build_observation(info(), sem_ticks);
  ASSERT_EQ(semaphore.threads.size(), 1u);
  EXPECT_EQ(semaphore.threads[0].split[Resource::kCpuWait], 200 * kMs);
  EXPECT_EQ(semaphore.threads[0].split[Resource::kLock], 700 * kMs);
  // Run-queue time after a wakeup from a wait that is not a lock stays cpu_wait.
  const Observation read = build_observation(
      info(), ticks_with(exact({sum(ExactKind::kInterruptible, SYS_read, kSocketFd, 900),
                                sum(ExactKind::kRunQueueWakeup, SYS_read, kSocketFd, 30)})));
  ASSERT_EQ(read.threads.size(), 1u);
  EXPECT_EQ(read.threads[0].split[Resource::kLock], 0);
}

TEST(ExactSplit, OnCpuTimeInFileSystemCallsIsDisk) {
  // 60 of the 100 ms on the CPU were inside file system calls (fd 9, a regular file).
  const Observation obs = build_observation(
      info(), ticks_with(exact({sum(ExactKind::kInterruptible, SYS_futex, kMutex, 900),
                                sum(ExactKind::kOnCpuFile, -1, 9, 60)})));
  ASSERT_EQ(obs.threads.size(), 1u);
  const ThreadAccount& t = obs.threads[0];
  EXPECT_EQ(t.split[Resource::kOnCpu], 40 * kMs);
  EXPECT_EQ(t.split[Resource::kDisk], 60 * kMs);
  EXPECT_EQ(t.split[Resource::kLock], 900 * kMs);
  EXPECT_EQ(t.kernel_work_ns, 60 * kMs);  // the cpu rule still counts it as a core used
  EXPECT_EQ(
      t.details[static_cast<std::size_t>(Resource::kDisk)].count("file system calls on the CPU"),
      1u);
  // Never more than the thread's on-CPU time.
  const Observation over =
      build_observation(info(), ticks_with(exact({sum(ExactKind::kOnCpuFile, -1, 9, 500)})));
  ASSERT_EQ(over.threads.size(), 1u);
  EXPECT_EQ(over.threads[0].split[Resource::kOnCpu], 0);
  EXPECT_EQ(over.threads[0].split[Resource::kDisk], 100 * kMs);
  EXPECT_EQ(over.threads[0].split.total_ns(), 1000 * kMs);
}

TEST(ExactSplit, AWindowCutAtATickStartsFromTheSumsAtTheCut) {
  // Window 1 [0, 1000]: 900 ms in read(5). Window 2 [1000, 2000]: 950 ms more on the mutex.
  std::vector<Tick> ticks =
      ticks_with(exact({sum(ExactKind::kInterruptible, SYS_read, kSocketFd, 900)}));
  ticks[1].closing = true;
  Tick third;
  third.at_ns = 2000 * kMs;
  third.threads.push_back(sample(2000 * kMs, false, 150 * kMs, mutex_wait()));
  third.exact = exact({sum(ExactKind::kInterruptible, SYS_futex, kMutex, 950)});
  ObservationBuilder b(info());
  b.add(ticks[0]);
  b.add(ticks[1]);
  const Observation first = b.cut_after(ticks[1]);
  b.add(third);
  const Observation second = b.finish();
  ASSERT_EQ(first.threads.size(), 1u);
  ASSERT_EQ(second.threads.size(), 1u);
  EXPECT_EQ(first.threads[0].split[Resource::kNetwork], 900 * kMs);
  EXPECT_EQ(second.threads[0].split[Resource::kNetwork], 0);
  EXPECT_EQ(second.threads[0].split[Resource::kLock], 950 * kMs);
  // The same as a builder of the second window alone, fed every tick from the start.
  std::vector<Tick> all = ticks;
  all.push_back(third);
  const Observation alone = build_observation(info(), all, {1000 * kMs, 2000 * kMs});
  ASSERT_EQ(alone.threads.size(), 1u);
  EXPECT_EQ(alone.threads[0].split.ns, second.threads[0].split.ns);
}

TEST(ExactSplit, WhenTheModeIsOffTheSourcesSayWhyAndTheSplitIsSampled) {
  ExactSample off;
  off.state.mode = "auto";
  off.state.problem = "state accounting: needs root";
  off.state.hint = "run as root";
  std::vector<Tick> ticks = ticks_with(off);
  ticks[0].exact = off;
  const Observation obs = build_observation(info(), ticks);
  ASSERT_EQ(obs.threads.size(), 1u);
  EXPECT_EQ(obs.threads[0].split[Resource::kLock], 900 * kMs);
  const Source* s = find_source(obs, "time split");
  ASSERT_NE(s, nullptr);
  EXPECT_FALSE(s->available);
  EXPECT_EQ(s->hint, "sampled (--mode auto): state accounting: needs root; hint: run as root");
}

}  // namespace
}  // namespace chokepoint::model
