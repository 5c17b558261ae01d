// The wait-for graph: contention (waiters wake each other on one object) against a hand-off (one
// waker serves the waiters), chains followed to the root thread and cut at the depth limit or a
// cycle, and the lock time of hand-offs by root.
#include "model/wait_graph.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>

namespace chokepoint::model {
namespace {

constexpr int kPid = 100;
constexpr std::uint64_t kMs = 1'000'000;

WakeEdge edge(int waker, int wakee, std::uint64_t object, std::uint64_t ns,
              WakerKind kind = WakerKind::kThread, int waker_pid = kPid) {
  WakeEdge e;
  e.waker_pid = waker_pid;
  e.waker_tid = waker;
  e.waker_kind = kind;
  e.wakee_pid = kPid;
  e.wakee_tid = wakee;
  e.syscall_nr = SYS_futex;
  e.object = object;
  e.ns = ns;
  e.count = 10;
  return e;
}

ThreadAccount thread(int tid, const char* comm, std::int64_t on_cpu_ms, std::int64_t lock_ms,
                     std::int64_t idle_ms = 0) {
  ThreadAccount t;
  t.key = {kPid, tid, 0};
  t.comm = comm;
  t.split[Resource::kOnCpu] = on_cpu_ms * static_cast<std::int64_t>(kMs);
  t.split[Resource::kLock] = lock_ms * static_cast<std::int64_t>(kMs);
  t.split[Resource::kIdle] = idle_ms * static_cast<std::int64_t>(kMs);
  return t;
}

TEST(WaitGraph, WaitersWakingEachOtherOnOneMutexAreContention) {
  // Three threads take turns holding 0x10: each unlock wakes the next waiter.
  WaitGraph g;
  g.edges = {edge(1, 2, 0x10, 300 * kMs), edge(2, 3, 0x10, 300 * kMs), edge(3, 1, 0x10, 300 * kMs)};
  const auto objects = wait_objects(g);
  ASSERT_EQ(objects.size(), 1u);
  EXPECT_EQ(objects[0].shape, WaitShape::kContention);
  EXPECT_EQ(objects[0].waiters, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(follow_chain(objects, {}, kPid, 1, SYS_futex, 0x10), std::nullopt);
}

TEST(WaitGraph, OneWakerServingItsWaitersIsAHandoffToItsOwnState) {
  // Requesters 2 and 3 wait on semaphores of their own, posted by worker 9 (on CPU 98%).
  WaitGraph g;
  g.edges = {edge(9, 2, 0x20, 900 * kMs), edge(9, 3, 0x30, 880 * kMs),
             edge(4, 3, 0x30, 20 * kMs)};  // a stray wakeup: 9 still ends 98% of it
  const auto objects = wait_objects(g);
  ASSERT_EQ(objects.size(), 2u);
  EXPECT_EQ(objects[0].shape, WaitShape::kHandoff);
  EXPECT_EQ(objects[1].shape, WaitShape::kHandoff);
  EXPECT_EQ(objects[1].waker_tid, 9);
  EXPECT_NEAR(objects[1].waker_share, 880.0 / 900.0, 1e-9);
  const std::vector<ThreadAccount> threads = {thread(2, "req", 20, 980), thread(3, "req", 20, 980),
                                              thread(9, "stage", 980, 0, 20)};
  auto chain = follow_chain(objects, threads, kPid, 2, SYS_futex, 0x20);
  ASSERT_TRUE(chain);
  ASSERT_EQ(chain->steps.size(), 1u);
  EXPECT_EQ(chain->steps[0].comm, "req");
  EXPECT_EQ(chain->root_tid, 9);
  EXPECT_EQ(chain->root_comm, "stage");
  EXPECT_EQ(chain->root_resource, Resource::kOnCpu);
  EXPECT_NEAR(chain->root_share, 0.98, 1e-9);
  EXPECT_FALSE(chain->depth_limited);
}

TEST(WaitGraph, AFewWorkersServingTheWaitersIsAHandoffToTheMainOne) {
  WaitGraph g;
  g.edges = {edge(7, 2, 0x40, 400 * kMs), edge(8, 2, 0x40, 600 * kMs)};
  const auto objects = wait_objects(g);
  ASSERT_EQ(objects.size(), 1u);
  EXPECT_EQ(objects[0].shape, WaitShape::kHandoff);
  EXPECT_EQ(objects[0].waker_tid, 8);
  EXPECT_NEAR(objects[0].waker_share, 0.6, 1e-9);
}

TEST(WaitGraph, WaitersWokenPartlyByEachOtherPartlyFromOutsideAreMixed) {
  WaitGraph g;
  g.edges = {edge(3, 2, 0x40, 200 * kMs), edge(2, 3, 0x40, 200 * kMs), edge(7, 2, 0x40, 600 * kMs)};
  const auto objects = wait_objects(g);
  ASSERT_EQ(objects.size(), 1u);
  EXPECT_EQ(objects[0].shape, WaitShape::kMixed);
  EXPECT_EQ(follow_chain(objects, {}, kPid, 2, SYS_futex, 0x40), std::nullopt);
}

TEST(WaitGraph, ChainsAreFollowedToTheRootAndCutAtTheDepthLimit) {
  // 1 waits for 2, 2 for 3, 3 for 4, 4 for 5, 5 for 6 (each mostly waiting): cut after 4 hops.
  WaitGraph g;
  std::vector<ThreadAccount> threads;
  for (int tid = 1; tid <= 5; ++tid) {
    g.edges.push_back(edge(tid + 1, tid, 0x100 + static_cast<std::uint64_t>(tid), 900 * kMs));
    threads.push_back(thread(tid, "hop", 10, 990));
  }
  threads.push_back(thread(6, "root", 990, 0, 10));
  const auto objects = wait_objects(g);
  auto chain = follow_chain(objects, threads, kPid, 1, SYS_futex, 0x101);
  ASSERT_TRUE(chain);
  EXPECT_EQ(static_cast<int>(chain->steps.size()), kChainDepthLimit);
  EXPECT_TRUE(chain->depth_limited);
  EXPECT_EQ(chain->root_tid, 5);
  // From 3, the chain reaches the root within the limit: 3 -> 4 -> 5 -> 6.
  chain = follow_chain(objects, threads, kPid, 3, SYS_futex, 0x103);
  ASSERT_TRUE(chain);
  EXPECT_EQ(chain->steps.size(), 3u);
  EXPECT_FALSE(chain->depth_limited);
  EXPECT_EQ(chain->root_comm, "root");
  EXPECT_EQ(chain->root_resource, Resource::kOnCpu);
}

TEST(WaitGraph, ACycleEndsTheChain) {
  // 1 and 2 hand off to each other (a ping-pong): the chain stops at the first repeat.
  WaitGraph g;
  g.edges = {edge(2, 1, 0x1, 900 * kMs), edge(1, 2, 0x2, 900 * kMs)};
  const std::vector<ThreadAccount> threads = {thread(1, "ping", 100, 900),
                                              thread(2, "pong", 100, 900)};
  auto chain = follow_chain(wait_objects(g), threads, kPid, 1, SYS_futex, 0x1);
  ASSERT_TRUE(chain);
  EXPECT_EQ(chain->steps.size(), 2u);
  EXPECT_EQ(chain->root_tid, 1);
}

TEST(WaitGraph, WakersOutsideTheTargetOrInTheKernelEndTheChain) {
  WaitGraph g;
  g.edges = {edge(0, 2, 0x20, 900 * kMs, WakerKind::kInterrupt, 0),
             edge(55, 3, 0x30, 900 * kMs, WakerKind::kThread, 999)};
  const std::vector<ThreadAccount> threads = {thread(2, "a", 10, 990), thread(3, "b", 10, 990)};
  const auto objects = wait_objects(g);
  auto chain = follow_chain(objects, threads, kPid, 2, SYS_futex, 0x20);
  ASSERT_TRUE(chain);
  EXPECT_EQ(chain->root_kind, WakerKind::kInterrupt);
  EXPECT_EQ(chain->root_resource, std::nullopt);
  chain = follow_chain(objects, threads, kPid, 3, SYS_futex, 0x30);
  ASSERT_TRUE(chain);
  EXPECT_EQ(chain->root_pid, 999);
  EXPECT_EQ(chain->root_resource, std::nullopt);
}

TEST(WaitGraph, AWakerInItsOwnDiskWaitIsTheRoot) {
  // 1 waits for the stage 2, which is in fdatasync 90% of the time and woken there by a kernel
  // thread completing its IO: the chain ends at the stage, in disk, not at the kernel thread.
  WaitGraph g;
  WakeEdge io = edge(24, 2, 0x0, 900 * kMs, WakerKind::kKernelThread, 24);
  io.syscall_nr = SYS_fdatasync;
  g.edges = {edge(2, 1, 0x10, 900 * kMs), io};
  ThreadAccount stage = thread(2, "stage", 100, 0);
  stage.split[Resource::kDisk] = 900 * static_cast<std::int64_t>(kMs);
  const std::vector<ThreadAccount> threads = {thread(1, "waiter", 10, 990), stage};
  auto chain = follow_chain(wait_objects(g), threads, kPid, 1, SYS_futex, 0x10);
  ASSERT_TRUE(chain);
  EXPECT_EQ(chain->steps.size(), 1u);
  EXPECT_EQ(chain->root_tid, 2);
  EXPECT_EQ(chain->root_kind, WakerKind::kThread);
  EXPECT_EQ(chain->root_resource, Resource::kDisk);
  EXPECT_DOUBLE_EQ(chain->root_share, 0.9);
}

TEST(WaitGraph, LockHandoffsSumTheWaitersLockTimeByRoot) {
  // Requesters 2 and 3: 2 spends all its lock time on its reply semaphore, 3 half of it (the
  // other half on a contended mutex 0x10 it shares with 4).
  WaitGraph g;
  g.edges = {edge(9, 2, 0x20, 900 * kMs), edge(9, 3, 0x30, 400 * kMs), edge(4, 3, 0x10, 400 * kMs),
             edge(3, 4, 0x10, 400 * kMs)};
  std::vector<ThreadAccount> threads = {thread(2, "req", 100, 900), thread(3, "req", 100, 800),
                                        thread(4, "other", 600, 400),
                                        thread(9, "stage", 950, 0, 50)};
  threads[0].lock_objects_ns = {{{SYS_futex, 0x20}, 900 * static_cast<std::int64_t>(kMs)}};
  threads[1].lock_objects_ns = {{{SYS_futex, 0x30}, 400 * static_cast<std::int64_t>(kMs)},
                                {{SYS_futex, 0x10}, 400 * static_cast<std::int64_t>(kMs)}};
  threads[2].lock_objects_ns = {{{SYS_futex, 0x10}, 400 * static_cast<std::int64_t>(kMs)}};
  const auto handoffs = lock_handoffs(g, threads);
  ASSERT_EQ(handoffs.size(), 1u);
  EXPECT_EQ(handoffs[0].waiters, 2);
  EXPECT_NEAR(handoffs[0].lock_ns, static_cast<double>(900 + 400) * kMs, 1e3);
  EXPECT_EQ(handoffs[0].chain.steps[0].tid, 2);  // the waiter with the most such wait
  EXPECT_EQ(handoffs[0].chain.root_comm, "stage");
  // Without the kernel's per-object lock time (the sampled split) nothing is a hand-off.
  for (auto& t : threads) t.lock_objects_ns.clear();
  EXPECT_TRUE(lock_handoffs(g, threads).empty());
}

TEST(AttributeHandoffs, AWaitersIdleOnItsOwnFutexTakesItsWakersSplit) {
  // Requester 2 waits 800 ms on its reply's futex 0x20, ended by stage 9 (on CPU 60%, queued 40%);
  // 100 ms of it ended by a timeout (an idle-CPU interrupt) stays idle.
  std::vector<ThreadAccount> threads = {thread(9, "lab-stage", 600, 0),
                                        thread(2, "lab-conn", 100, 0, 900)};
  threads[0].split[Resource::kCpuWait] = 400 * static_cast<std::int64_t>(kMs);
  threads[1].idle_objects_ns[{SYS_futex, 0x20}] = 900 * static_cast<std::int64_t>(kMs);
  threads[1].details[static_cast<std::size_t>(Resource::kIdle)]["futex 0x20"] =
      900 * static_cast<std::int64_t>(kMs);
  WaitGraph g;
  g.edges = {edge(9, 2, 0x20, 800 * kMs), edge(0, 2, 0x20, 100 * kMs, WakerKind::kInterrupt)};
  const std::int64_t moved = attribute_handoffs(g, threads);
  EXPECT_NEAR(static_cast<double>(moved), 800.0 * kMs, 1e3);
  const auto& r = threads[1];
  EXPECT_EQ(r.split.total_ns(), 1000 * static_cast<std::int64_t>(kMs));
  EXPECT_NEAR(static_cast<double>(r.split[Resource::kOnCpu]), (100 + 480) * 1e6, 1e3);
  EXPECT_NEAR(static_cast<double>(r.split[Resource::kCpuWait]), 320 * 1e6, 1e3);
  EXPECT_NEAR(static_cast<double>(r.split[Resource::kIdle]), 100 * 1e6, 1e3);
  EXPECT_NEAR(static_cast<double>(r.waited_for[Resource::kOnCpu]), 480 * 1e6, 1e3);
  EXPECT_NEAR(
      static_cast<double>(r.details[static_cast<std::size_t>(Resource::kIdle)].at("futex 0x20")),
      100 * 1e6, 1e3);
  // The stage's own split does not move.
  EXPECT_EQ(threads[0].split[Resource::kOnCpu], 600 * static_cast<std::int64_t>(kMs));
  EXPECT_EQ(threads[0].waited_for.total_ns(), 0);
}

// Workers 3 and 4 park on one condvar word 0x40 (a pool waiting for work): idle. Requester 2
// waits for worker 3 (0x20), which waits all its time for thread 5 (0x50), on a lock 70%.
struct PoolAndChain {
  std::vector<ThreadAccount> threads = {thread(2, "req", 0, 0, 1000), thread(3, "w", 0, 0, 1000),
                                        thread(4, "w", 0, 0, 1000), thread(5, "root", 300, 700)};
  WaitGraph g;
  PoolAndChain() {
    const auto ms = static_cast<std::int64_t>(kMs);
    threads[0].idle_objects_ns[{SYS_futex, 0x20}] = 1000 * ms;
    threads[1].idle_objects_ns[{SYS_futex, 0x50}] = 1000 * ms;
    threads[2].idle_objects_ns[{SYS_futex, 0x40}] = 1000 * ms;
    g.edges = {edge(3, 2, 0x20, 1000 * kMs), edge(5, 3, 0x50, 1000 * kMs),
               edge(2, 4, 0x40, 500 * kMs), edge(2, 3, 0x40, 500 * kMs)};
  }
};

TEST(AttributeHandoffs, AParkedPoolStaysIdleAndChainsResolve) {
  PoolAndChain p;
  auto& threads = p.threads;
  const auto& g = p.g;
  const auto ms = static_cast<std::int64_t>(kMs);
  attribute_handoffs(g, threads);
  EXPECT_NEAR(static_cast<double>(threads[0].split[Resource::kLock]), 700 * 1e6, 1e3);
  EXPECT_NEAR(static_cast<double>(threads[1].split[Resource::kLock]), 700 * 1e6, 1e3);
  EXPECT_EQ(threads[2].split[Resource::kIdle], 1000 * ms);
  EXPECT_EQ(threads[2].waited_for.total_ns(), 0);
}

TEST(IdleHandoffs, TheTimeGivenToAWakersStateIsGroupedByTheChainsRoot) {
  // Requester 2 and worker 3 both end at root 5; the parked worker 4 moved nothing.
  PoolAndChain p;
  auto& threads = p.threads;
  const auto& g = p.g;
  EXPECT_TRUE(idle_handoffs(g, threads).empty());  // nothing moved yet
  attribute_handoffs(g, threads);
  const auto h = idle_handoffs(g, threads);
  ASSERT_EQ(h.size(), 1U);
  EXPECT_EQ(h[0].chain.root_tid, 5);
  EXPECT_EQ(h[0].waiters, 2);
  EXPECT_NEAR(h[0].idle_ns, 2000 * 1e6, 1e3);
  EXPECT_EQ(h[0].lock_ns, 0);
  EXPECT_EQ(h[0].chain.steps.front().tid, 2);  // the waiter with the most such wait (first of two)
}

// Joiners 2 and 3 start a worker per job and join it: each waits on the thread-id word of the
// worker's cached stack, 0x60 (reused: both joiners wait on it), and the worker's exit wakes it.
// The workers (20..29) lived less than a poll: the sampler never read them.
struct Joins {
  std::vector<ThreadAccount> threads = {thread(2, "joiner", 0, 0, 1000),
                                        thread(3, "joiner", 0, 0, 1000)};
  WaitGraph g;
  Joins() {
    const auto ms = static_cast<std::int64_t>(kMs);
    threads[0].idle_objects_ns[{SYS_futex, 0x60}] = 1000 * ms;
    threads[1].idle_objects_ns[{SYS_futex, 0x60}] = 1000 * ms;
    for (int w = 20; w < 30; ++w) {
      WakeEdge e = edge(w, w < 25 ? 2 : 3, 0x60, 200 * kMs);
      e.count = 1;
      g.edges.push_back(e);
    }
    // Workers 25 and 26 meet on a mutex 0x70 before they exit, 50 ms each: contention.
    WakeEdge a = edge(26, 25, 0x70, 50 * kMs);
    WakeEdge b = edge(25, 26, 0x70, 50 * kMs);
    a.count = b.count = 1;
    g.edges.push_back(a);
    g.edges.push_back(b);
  }
};

TEST(ShortLivedThreads, WorkersThatEndedBetweenPollsAreInferredFromTheGraph) {
  Joins j;
  const auto s = short_lived_threads(j.g, j.threads);
  ASSERT_EQ(s.size(), 10u);
  EXPECT_EQ(s[0].tid, 20);
  // Worker 20: 200 ms of life, never blocked: on a CPU (or runnable).
  EXPECT_EQ(s[0].split[Resource::kOnCpu], 200 * static_cast<std::int64_t>(kMs));
  EXPECT_EQ(s[0].split.total_ns(), 200 * static_cast<std::int64_t>(kMs));
  // Worker 25: 50 ms of its 200 ms on the contended mutex.
  EXPECT_EQ(s[5].tid, 25);
  EXPECT_EQ(s[5].split[Resource::kLock], 50 * static_cast<std::int64_t>(kMs));
  EXPECT_EQ(s[5].split[Resource::kOnCpu], 150 * static_cast<std::int64_t>(kMs));
  // A thread the sampler measured is not one.
  Joins measured;
  measured.threads.push_back(thread(20, "w", 100, 0));
  EXPECT_EQ(short_lived_threads(measured.g, measured.threads).size(), 9u);
}

TEST(ShortLivedThreads, AJoinersWaitTakesTheWorkersInferredSplitAndItsChainNamesThemAll) {
  Joins j;
  const auto objects = wait_objects(j.g);
  const auto s = short_lived_threads(j.g, j.threads);
  auto chain = follow_chain(objects, j.threads, kPid, 2, SYS_futex, 0x60, s);
  ASSERT_TRUE(chain);
  EXPECT_EQ(chain->root_short_lived, 10);
  EXPECT_EQ(chain->root_resource, Resource::kOnCpu);
  EXPECT_NEAR(chain->root_share, 1900.0 / 2000.0, 1e-9);
  // Without them, the root is one worker with no time: nothing known.
  auto bare = follow_chain(objects, j.threads, kPid, 2, SYS_futex, 0x60);
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->root_short_lived, 0);
  // The join word has two waiters, but only short-lived threads woke it: not a parked pool.
  const std::int64_t moved = attribute_handoffs(j.g, j.threads);
  EXPECT_NEAR(static_cast<double>(moved), 2000.0 * 1e6, 1e3);
  EXPECT_NEAR(static_cast<double>(j.threads[0].split[Resource::kOnCpu]), 1000.0 * 1e6, 1e3);
  EXPECT_NEAR(static_cast<double>(j.threads[1].split[Resource::kOnCpu]), 900.0 * 1e6, 1e3);
  EXPECT_NEAR(static_cast<double>(j.threads[1].split[Resource::kLock]), 100.0 * 1e6, 1e3);
  // One hand-off for both joiners, rooted at the group.
  const auto h = idle_handoffs(j.g, j.threads);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].waiters, 2);
  EXPECT_EQ(h[0].chain.root_short_lived, 10);
  EXPECT_NEAR(h[0].idle_ns, 2000.0 * 1e6, 1e3);
}

// stress-ng's pthread stressor: the main thread 2 starts workers that wait on its condvar 0x90
// (its broadcast, or their 10 ms timeouts, which the timer interrupt ends), then joins each on
// the worker's own thread-id word (0x100 + w). The waits for the broadcast ended while the main
// thread ran, before it began to join: they are not part of the lives its join waits saw.
TEST(ShortLivedThreads, BlocksOnWhatTheJoinerWokeThemFromCameBeforeTheJoin) {
  const auto ms = static_cast<std::int64_t>(kMs);
  std::vector<ThreadAccount> threads = {thread(2, "main", 0, 0, 400)};
  WaitGraph g;
  for (int w = 20; w < 24; ++w) {
    threads[0].idle_objects_ns[{SYS_futex, static_cast<std::uint64_t>(0x100 + w)}] = 100 * ms;
    WakeEdge join = edge(w, 2, 0x100 + w, 100 * kMs);
    join.count = 1;
    WakeEdge broadcast = edge(2, w, 0x90, 300 * kMs);  // before the join
    broadcast.count = 1;
    WakeEdge timeout = edge(0, w, 0x90, 200 * kMs, WakerKind::kInterrupt, 0);
    timeout.count = 20;
    WakeEdge mutex = edge(w == 20 ? 23 : w - 1, w, 0x70, 30 * kMs);  // after the broadcast
    mutex.count = 1;
    g.edges.insert(g.edges.end(), {join, broadcast, timeout, mutex});
  }
  const auto s = short_lived_threads(g, threads);
  ASSERT_EQ(s.size(), 4u);
  // Each: 100 ms seen by the join, 30 of them on the contended mutex, the rest not blocked.
  EXPECT_EQ(s[0].split.total_ns(), 100 * ms);
  EXPECT_EQ(s[0].split[Resource::kLock], 30 * ms);
  EXPECT_EQ(s[0].split[Resource::kOnCpu], 70 * ms);
  EXPECT_EQ(s[0].split[Resource::kIdle], 0);
  // One join word per worker: the hand-off's root is the four of them together, their summed
  // split.
  attribute_handoffs(g, threads);
  const auto h = idle_handoffs(g, threads);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].chain.root_short_lived, 4);
  EXPECT_EQ(h[0].chain.root_resource, Resource::kOnCpu);
  EXPECT_NEAR(h[0].chain.root_share, 0.7, 1e-9);
  EXPECT_EQ(h[0].chain.root_split[Resource::kLock], 120 * ms);
}

}  // namespace
}  // namespace chokepoint::model
