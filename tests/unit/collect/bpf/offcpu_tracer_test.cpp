// The off-CPU tracer on this test process itself: threads that block in known noinline functions
// must show up with those functions on their stacks, the time they blocked, and their wakers.
// Needs root and a kernel with BPF and BTF: skips with the reason when those are absent, and fails
// when they are present and the tracer does not load.

#include "collect/bpf/offcpu_tracer.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/offcpu_support.h"

namespace chokepoint::collect::bpf {
namespace {

using test_support::offcpu_unavailable;

// An address inside the function that calls this: where a stack walk must land.
__attribute__((noinline)) std::uintptr_t here() {
  return reinterpret_cast<std::uintptr_t>(__builtin_return_address(0));
}

// The code range of each blocking function: from its entry to a call site after the blocking call
// (a return address a stack walk reports lies inside it).
struct Range {
  std::atomic<std::uintptr_t> begin{0}, end{0};
};
Range g_sleep, g_pipe, g_wake, g_stale, g_lock;

__attribute__((noinline)) void offcpu_test_sleep(int times, int ms) {
  for (int i = 0; i < times; ++i) {
    timespec ts{0, ms * 1'000'000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
  }
  g_sleep.end = here();
}

__attribute__((noinline)) void offcpu_test_wait_on_pipe(int fd) {
  char c = 0;
  while (read(fd, &c, 1) < 0) {
  }
  g_pipe.end = here();
}

__attribute__((noinline)) void offcpu_test_wake_pipe(int fd) {
  char c = 'x';
  while (write(fd, &c, 1) < 0) {
  }
  g_wake.end = here();
}

// Fills the stack below its caller's frame with a return address into this function (after its
// call to here()): what dead frames of an earlier thread leave on a stack that glibc hands to the
// next thread (issue 16). `words` 8-byte words of it.
__attribute__((noinline)) void offcpu_test_leave_stale_return_addresses(int words) {
  g_stale.end = here();
  volatile std::uintptr_t fill[1024];
  for (int i = 0; i < words && i < 1024; ++i) fill[i] = g_stale.end;
  asm volatile("" : : "r"(fill) : "memory");
}

__attribute__((noinline)) void offcpu_test_lock(pthread_mutex_t* mutex) {
  pthread_mutex_lock(mutex);
  pthread_mutex_unlock(mutex);
  g_lock.end = here();
}

void init_ranges() {
  g_sleep.begin = reinterpret_cast<std::uintptr_t>(&offcpu_test_sleep);
  g_pipe.begin = reinterpret_cast<std::uintptr_t>(&offcpu_test_wait_on_pipe);
  g_wake.begin = reinterpret_cast<std::uintptr_t>(&offcpu_test_wake_pipe);
  g_stale.begin = reinterpret_cast<std::uintptr_t>(&offcpu_test_leave_stale_return_addresses);
  g_lock.begin = reinterpret_cast<std::uintptr_t>(&offcpu_test_lock);
}

int gettid_int() {
  return static_cast<int>(syscall(SYS_gettid));
}

std::string comm_of(int tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/comm");
  std::string line;
  std::getline(in, line);
  return line;
}

// True when one of `addresses` lies in the function `r` describes. REQUIRES: r.end was set (the
// function ran to its end).
bool has_frame_in(const std::vector<std::uint64_t>& addresses, const Range& r) {
  for (std::uint64_t a : addresses) {
    if (a > r.begin && a <= r.end) return true;
  }
  return false;
}

// Skips the test when off-CPU tracing is unavailable here; otherwise creates `var` from
// `options` and fails the test (ASSERT) when that does not work.
#define TRACER_OR_SKIP(var, options)                                                     \
  init_ranges();                                                                         \
  if (std::string why = offcpu_unavailable(); !why.empty()) GTEST_SKIP() << why;         \
  auto var##_created = OffCpuTracer::create(options);                                    \
  ASSERT_TRUE(var##_created) << "BPF is supported here, yet the tracer failed to load: " \
                             << var##_created.error().message << " ("                    \
                             << var##_created.error().hint << ")";                       \
  std::unique_ptr<OffCpuTracer> var = std::move(*var##_created)

TEST(OffCpuTracer, SleepInKnownFunctionShowsWithItsBlockedTime) {
  OffCpuOptions o;
  o.tgids = {getpid()};
  TRACER_OR_SKIP(tracer, o);
  ASSERT_TRUE(tracer->start());
  std::atomic<int> tid{0};
  std::thread t([&] {
    tid = gettid_int();
    offcpu_test_sleep(10, 20);  // 10 blocks of 20 ms
  });
  t.join();
  auto result = tracer->stop();
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(result->attach_kind, "tp_btf") << (result->notes.empty() ? "" : result->notes[0]);

  std::uint64_t in_function_ns = 0, in_function_count = 0;
  std::string seen;  // every record of the thread, for the failure message
  for (const auto& r : result->records) {
    if (r.tid != tid) continue;
    seen += "\n  count " + std::to_string(r.count) + " ns " + std::to_string(r.total_ns) +
            " user frames " + std::to_string(r.user_addresses.size()) + " leaf caller " +
            std::to_string(r.leaf_caller_added) + " in function " +
            std::to_string(has_frame_in(r.user_addresses, g_sleep));
    EXPECT_EQ(r.tgid, getpid());
    if (has_frame_in(r.user_addresses, g_sleep)) {
      in_function_ns += r.total_ns;
      in_function_count += r.count;
      EXPECT_FALSE(r.kernel_addresses.empty());
      // A sleep ends by a timer interrupt, not by a task.
      EXPECT_TRUE(r.woken);
      EXPECT_TRUE(r.waker_in_interrupt);
      EXPECT_EQ(r.waker_tid, 0);
      EXPECT_TRUE(r.waker_user_addresses.empty());
    }
  }
  // 200 ms asleep; timer slack and scheduling add a little, never remove. When blocks were counted
  // at the switch-in, about 1 run in 30 lost one of the ten (cause never found; since they are
  // counted at the wakeup, 80 of 80 strict runs kept all ten, see docs/offcpu.md), so one missing
  // block is still tolerated, never more.
  const auto& d = result->drops;
  EXPECT_GE(in_function_count, 9u)
      << seen << "\ndrops: " << d.stack_collisions << " " << d.stack_failures << " "
      << d.counts_full << " " << d.start_full << " cache " << d.cache_hits << "/" << d.cache_misses
      << " irq " << d.interrupt_wakeups;
  EXPECT_LE(in_function_count, 10u) << seen;
  EXPECT_GE(in_function_ns, in_function_count * 19'500'000u);
  EXPECT_LE(in_function_ns, 260'000'000u);
}

// drain() (chokepoint record's slices): each drain returns the blocks since the last one and
// removes them from the kernel's map while the programs stay attached, so two slices of sleeps add
// up to all of them, none counted twice.
TEST(OffCpuTracer, DrainReturnsEachSlicesBlocksOnce) {
  OffCpuOptions o;
  o.tgids = {getpid()};
  TRACER_OR_SKIP(tracer, o);
  ASSERT_TRUE(tracer->start());
  std::atomic<int> tid{0};
  auto sleeps = [&](int times) {
    std::thread t([&] {
      tid = gettid_int();
      offcpu_test_sleep(times, 20);
    });
    t.join();
  };
  auto blocks_in_function = [&](const OffCpuResult& r) {
    std::uint64_t n = 0;
    for (const auto& rec : r.records) {
      if (rec.tid == tid && has_frame_in(rec.user_addresses, g_sleep)) n += rec.count;
    }
    return n;
  };
  sleeps(4);
  auto first = tracer->drain();
  ASSERT_TRUE(first) << first.error().message;
  const std::uint64_t first_blocks = blocks_in_function(*first);
  sleeps(6);
  auto second = tracer->drain();
  ASSERT_TRUE(second) << second.error().message;
  const std::uint64_t second_blocks = blocks_in_function(*second);
  // One block of each slice may be lost, as in the test above; none is counted twice.
  EXPECT_GE(first_blocks, 3u);
  EXPECT_LE(first_blocks, 4u);
  EXPECT_GE(second_blocks, 5u);
  EXPECT_LE(second_blocks, 6u);
  EXPECT_GT(second->duration_s, 0.1);
  // Nothing new since: the map is empty of these blocks.
  auto third = tracer->drain();
  ASSERT_TRUE(third);
  EXPECT_EQ(blocks_in_function(*third), 0u);
  ASSERT_TRUE(tracer->stop());
}

// Traces one block of a new thread (its tid into `reader_tid`) in offcpu_test_wait_on_pipe, woken
// 100 ms later by this thread's offcpu_test_wake_pipe. `stale_first`: the thread leaves stale
// return addresses on its stack (offcpu_test_leave_stale_return_addresses) before it reads.
util::Result<OffCpuResult> trace_pipe_reader(OffCpuTracer& tracer, int& reader_tid,
                                             bool stale_first = false) {
  int fds[2];
  if (pipe(fds) != 0) return util::errno_error("pipe");
  if (auto ok = tracer.start(); !ok) return ok.error();
  std::atomic<int> tid{0};
  std::thread reader([&] {
    tid = gettid_int();
    if (stale_first) offcpu_test_leave_stale_return_addresses(1024);
    offcpu_test_wait_on_pipe(fds[0]);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  offcpu_test_wake_pipe(fds[1]);
  reader.join();
  reader_tid = tid;
  auto result = tracer.stop();
  close(fds[0]);
  close(fds[1]);
  return result;
}

TEST(OffCpuTracer, PipeReaderShowsTheWriterAsItsWaker) {
  OffCpuOptions o;
  o.tgids = {getpid()};
  TRACER_OR_SKIP(tracer, o);
  const int writer_tid = gettid_int();
  int reader_tid = 0;
  auto result = trace_pipe_reader(*tracer, reader_tid);
  ASSERT_TRUE(result) << result.error().message;

  bool found = false;
  for (const auto& r : result->records) {
    if (r.tid != reader_tid || !has_frame_in(r.user_addresses, g_pipe)) continue;
    found = true;
    EXPECT_EQ(r.count, 1u);
    EXPECT_GE(r.total_ns, 90'000'000u);
    EXPECT_LE(r.total_ns, 400'000'000u);
    ASSERT_TRUE(r.woken);
    EXPECT_FALSE(r.waker_in_interrupt);
    EXPECT_EQ(r.waker_tid, 0);  // summed per process
    EXPECT_EQ(r.waker_comm.substr(0, 6), comm_of(writer_tid).substr(0, 6));
    EXPECT_EQ(r.waker_tgid, getpid());
    EXPECT_TRUE(has_frame_in(r.waker_user_addresses, g_wake));
    EXPECT_FALSE(r.waker_kernel_addresses.empty());
  }
  EXPECT_TRUE(found) << "no record for the reader thread blocked in offcpu_test_wait_on_pipe";
}

// Thread `tid`'s records: none names the planted stale caller (in
// offcpu_test_leave_stale_return_addresses), and one has the leaf's caller added in `caller`.
void expect_proven_caller(const OffCpuResult& result, int tid, const Range& caller,
                          const char* caller_name) {
  bool found = false;
  std::string seen;
  for (const auto& r : result.records) {
    if (r.tid != tid) continue;
    seen += "\n  leaf caller added " + std::to_string(r.leaf_caller_added) + ", frames:";
    for (std::uint64_t a : r.user_addresses) seen += " " + std::to_string(a);
    EXPECT_FALSE(has_frame_in(r.user_addresses, g_stale))
        << "the stale return address was taken for the leaf's caller" << seen;
    found = found || (has_frame_in(r.user_addresses, caller) && r.leaf_caller_added);
  }
#if defined(__SANITIZE_ADDRESS__)
  // Under ASan the test's read and pthread_mutex_lock are the sanitizer's interceptors, which
  // call libc's through a pointer: no call provably leads to the leaf, so its caller is left out
  // (call_site.h: never guessed). What this build checks is that no stale caller is taken.
  return;
#endif
  EXPECT_TRUE(found) << "no record of thread " << tid << " with its caller " << caller_name
                     << " added (stale range " << g_stale.begin << ".." << g_stale.end << ")"
                     << seen;
}

// Issue 16: glibc gives a new thread the stack of a joined one, and read() reserves slots of its
// frame it never writes (sub $0x28,%rsp; stores at 8..0x18; 0 and 0x20 are left as they were),
// nearer the stack pointer than its return address. The slots then hold whatever dead frames left
// there: in the whole test binary, a return address of the previous test's thread. Here the
// reader's own dead frames plant return addresses into offcpu_test_leave_stale_return_addresses
// (after a call) before it reads: a joined thread's stack planted the same way reached read()'s
// slots only when another reader had used the stack before (1 of 2 orders; alone 0 of 6 runs
// with the old code), this is deterministic. The reader's caller must still be
// offcpu_test_wait_on_pipe, never the stale one.
TEST(OffCpuTracer, ReaderOnAReusedStackIsNotGivenAStaleCaller) {
  OffCpuOptions o;
  o.tgids = {getpid()};
  TRACER_OR_SKIP(tracer, o);
  int reader_tid = 0;
  auto result = trace_pipe_reader(*tracer, reader_tid, /*stale_first=*/true);
  ASSERT_TRUE(result) << result.error().message;

  expect_proven_caller(*result, reader_tid, g_pipe, "offcpu_test_wait_on_pipe");
}

// A contended mutex: the waiter sleeps in __lll_lock_wait, which glibc's pthread_mutex_lock calls
// and .dynsym does not name, under a pthread_mutex_lock frame with an unwritten slot of its own.
// The caller proven is the function that called pthread_mutex_lock, one call above the leaf.
TEST(OffCpuTracer, MutexWaiterShowsTheFunctionThatTakesTheLock) {
  OffCpuOptions o;
  o.tgids = {getpid()};
  TRACER_OR_SKIP(tracer, o);
  pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&mutex);
  ASSERT_TRUE(tracer->start());
  std::atomic<int> waiter_tid{0};
  std::thread waiter([&] {
    waiter_tid = gettid_int();
    offcpu_test_leave_stale_return_addresses(1024);
    offcpu_test_lock(&mutex);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  pthread_mutex_unlock(&mutex);
  waiter.join();
  auto result = tracer->stop();
  ASSERT_TRUE(result) << result.error().message;
  expect_proven_caller(*result, waiter_tid, g_lock, "offcpu_test_lock");
}

TEST(OffCpuTracer, BlocksShorterThanTheMinimumAreNotCounted) {
  OffCpuOptions o;
  o.tgids = {getpid()};
  o.min_block_ns = 50'000'000;
  TRACER_OR_SKIP(tracer, o);
  ASSERT_TRUE(tracer->start());
  std::atomic<int> tid{0};
  std::thread t([&] {
    tid = gettid_int();
    offcpu_test_sleep(5, 5);
  });
  t.join();
  auto result = tracer->stop();
  ASSERT_TRUE(result);
  for (const auto& r : result->records) {
    EXPECT_FALSE(r.tid == tid && has_frame_in(r.user_addresses, g_sleep))
        << r.count << " blocks of " << r.total_ns << " ns counted under a 50 ms minimum";
  }
}

// Above the budget, blocks are sampled and weighed: the totals stay estimates of the real ones.
// Four threads sleep 1 ms at a time (about 3,500 blocks a second) under a budget of 100 blocks per
// CPU per second, so roughly one block in twenty is traced; the estimate must still land near the
// time the threads really slept (a sampling error of a few percent at ~100 traced blocks; the
// bounds are wide so that a loaded machine cannot fail it, and tight enough that unweighted
// sampling, 5% of the time, would).
TEST(OffCpuTracer, BlocksAboveTheBudgetAreSampledAndTheTotalsEstimated) {
  OffCpuOptions o;
  o.tgids = {getpid()};
  o.full_blocks_per_cpu_per_s = 100;
  TRACER_OR_SKIP(tracer, o);
  ASSERT_TRUE(tracer->start());
  constexpr int kThreads = 4;
  std::atomic<int> tids[kThreads];
  std::atomic<std::int64_t> slept_ns{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      tids[i] = gettid_int();
      const auto begin = std::chrono::steady_clock::now();
      offcpu_test_sleep(400, 1);
      slept_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now() - begin)
                      .count();
    });
  }
  for (auto& t : threads) t.join();
  auto result = tracer->stop();
  ASSERT_TRUE(result) << result.error().message;

  std::uint64_t count = 0, measured = 0, total_ns = 0;
  for (const auto& r : result->records) {
    bool ours = false;
    for (const auto& t : tids) ours = ours || r.tid == t.load();
    if (!ours || !has_frame_in(r.user_addresses, g_sleep)) continue;
    count += r.count;
    measured += r.measured;
    total_ns += r.total_ns;
  }
  EXPECT_GT(result->drops.blocks_sampled_out, 0u);
  EXPECT_GT(measured, 0u);
  EXPECT_LT(measured * 3, count) << "sampling should trace far fewer blocks than it estimates";
  // 1,600 blocks were slept; the estimate of their number and their time.
  EXPECT_GT(count, 1600u * 6 / 10);
  EXPECT_LT(count, 1600u * 15 / 10);
  const auto slept = static_cast<double>(slept_ns.load());
  EXPECT_GT(static_cast<double>(total_ns), 0.6 * slept) << total_ns << " ns of " << slept;
  EXPECT_LT(static_cast<double>(total_ns), 1.5 * slept) << total_ns << " ns of " << slept;
}

TEST(OffCpuTracer, OtherProcessesAreNotTraced) {
  OffCpuOptions o;
  o.tgids = {getpid()};
  TRACER_OR_SKIP(tracer, o);
  ASSERT_TRUE(tracer->start());
  // A child that sleeps: its blocks must not appear.
  pid_t child = fork();
  if (child == 0) {
    offcpu_test_sleep(3, 10);
    _exit(0);
  }
  offcpu_test_sleep(2, 10);
  int status = 0;
  waitpid(child, &status, 0);
  auto result = tracer->stop();
  ASSERT_TRUE(result);
  ASSERT_FALSE(result->records.empty());
  for (const auto& r : result->records) EXPECT_EQ(r.tgid, getpid());
}

TEST(OffCpuTracer, RejectsACgroupV1DirectoryWithAHint) {
  OffCpuOptions o;
  o.cgroup_path = "/proc";  // not a cgroup v2 directory on any machine
  if (std::string why = offcpu_unavailable(); !why.empty()) GTEST_SKIP() << why;
  auto t = OffCpuTracer::create(o);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("not a cgroup v2 directory"), std::string::npos);
  EXPECT_FALSE(t.error().hint.empty());
}

TEST(OffCpuTracer, RejectsPidsAndCgroupTogether) {
  OffCpuOptions o;
  o.tgids = {getpid()};
  o.cgroup_path = "/sys/fs/cgroup";
  auto t = OffCpuTracer::create(o);
  ASSERT_FALSE(t);
  EXPECT_FALSE(t.error().hint.empty());
}

}  // namespace
}  // namespace chokepoint::collect::bpf
