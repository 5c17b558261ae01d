#include "model/account.h"

#include <gtest/gtest.h>

namespace chokepoint::model {
namespace {

TEST(AddInterval, SplitSumsToWallTime) {
  ThreadAccount a;
  Interval iv;
  iv.wall_ns = 50'000'000;
  iv.on_cpu_ns = 10'000'000;
  iv.cpu_wait_ns = 5'000'000;
  iv.wait = {Resource::kDisk, "fdatasync /x"};
  add_interval(a, iv);
  EXPECT_EQ(a.split.total_ns(), 50'000'000);
  EXPECT_EQ(a.split[Resource::kOnCpu], 10'000'000);
  EXPECT_EQ(a.split[Resource::kCpuWait], 5'000'000);
  EXPECT_EQ(a.split[Resource::kDisk], 35'000'000);
  EXPECT_EQ(a.details[static_cast<std::size_t>(Resource::kDisk)].at("fdatasync /x"), 35'000'000);
}

// A held thread's off-CPU time is idle in the split and counted per hold state.
TEST(AddInterval, HeldTimeIsIdleAndCountedByState) {
  ThreadAccount a;
  Interval iv;
  iv.wall_ns = 100'000'000;
  iv.on_cpu_ns = 1'000'000;
  iv.wait = {Resource::kIdle, "stopped by a signal (SIGSTOP)", Hold::kStopped};
  add_interval(a, iv);
  iv.on_cpu_ns = 0;
  iv.wait = frozen_wait();
  add_interval(a, iv);
  EXPECT_EQ(a.split[Resource::kIdle], 199'000'000);
  EXPECT_EQ(a.held_ns[static_cast<std::size_t>(Hold::kStopped)], 99'000'000);
  EXPECT_EQ(a.held_ns[static_cast<std::size_t>(Hold::kFrozen)], 100'000'000);
  EXPECT_EQ(a.held_ns[static_cast<std::size_t>(Hold::kNone)], 0);
  EXPECT_EQ(held_total_ns(a), 199'000'000);
}

TEST(AddInterval, CountersAheadOfTheClockAreClamped) {
  // schedstat and the clock are read at slightly different instants: never more than wall time.
  ThreadAccount a;
  Interval iv;
  iv.wall_ns = 10;
  iv.on_cpu_ns = 12;
  iv.cpu_wait_ns = 5;
  add_interval(a, iv);
  EXPECT_EQ(a.split.total_ns(), 10);
  EXPECT_EQ(a.split[Resource::kOnCpu], 10);
  EXPECT_EQ(a.split[Resource::kCpuWait], 0);
}

// A thread that never blocks, read 5 and 10 ms late in turn: each late read's surplus is the next
// interval's, so its whole time is on-CPU and run queue, with no idle (clamping each interval
// alone gave 15 ms of idle and lost 15 ms of on-CPU time).
TEST(CarryOver, CountersReadLateGoToTheNextInterval) {
  const std::int64_t ms = 1'000'000;
  ThreadAccount a;
  Carry carry;
  const std::int64_t on_cpu_ms[] = {105, 95, 110, 90};
  for (std::int64_t on : on_cpu_ms) {
    Interval iv;
    iv.wall_ns = 100 * ms;
    iv.on_cpu_ns = on * ms;
    iv.wait = {Resource::kOnCpu, "running"};
    carry_over(iv, carry);
    EXPECT_LE(iv.on_cpu_ns + iv.cpu_wait_ns, iv.wall_ns);
    add_interval(a, iv);
  }
  EXPECT_EQ(a.split[Resource::kOnCpu], 400 * ms);
  EXPECT_EQ(a.split[Resource::kIdle], 0);
  EXPECT_EQ(carry.on_cpu_ns, 0);
}

// The run queue's surplus is carried beside on-CPU's; a real gap (the thread slept) stays off-CPU;
// a surplus beyond kMaxCarryNs is dropped.
TEST(CarryOver, RunQueueCarriedAndRealGapsKept) {
  const std::int64_t ms = 1'000'000;
  Carry carry;
  Interval a;
  a.wall_ns = 100 * ms;
  a.on_cpu_ns = 60 * ms;
  a.cpu_wait_ns = 50 * ms;
  carry_over(a, carry);
  EXPECT_EQ(a.on_cpu_ns, 60 * ms);
  EXPECT_EQ(a.cpu_wait_ns, 40 * ms);
  EXPECT_EQ(carry.cpu_wait_ns, 10 * ms);
  Interval b;
  b.wall_ns = 100 * ms;
  b.on_cpu_ns = 20 * ms;
  carry_over(b, carry);
  EXPECT_EQ(b.cpu_wait_ns, 10 * ms);
  EXPECT_EQ(off_cpu_ns(b), 70 * ms);  // slept: not filled
  EXPECT_EQ(carry.cpu_wait_ns, 0);
  Interval c;
  c.wall_ns = 100 * ms;
  c.on_cpu_ns = 5'000 * ms;  // counters far ahead of the clock
  carry_over(c, carry);
  EXPECT_EQ(c.on_cpu_ns, 100 * ms);
  EXPECT_EQ(carry.on_cpu_ns, kMaxCarryNs);
}

TEST(AddInterval, DiskCpuMovesToDisk) {
  ThreadAccount a;
  Interval iv;
  iv.wall_ns = 100;
  iv.on_cpu_ns = 60;
  iv.kernel_work_ns = 20;
  iv.wait = {Resource::kDisk, "fsync /db"};
  add_interval(a, iv);
  EXPECT_EQ(a.split[Resource::kOnCpu], 40);
  EXPECT_EQ(a.split[Resource::kDisk], 60);
  EXPECT_EQ(a.split.total_ns(), 100);
}

TEST(AddInterval, LockHandOffRunQueueTimeCountsAsLock) {
  ThreadAccount a;
  Interval iv;
  iv.wall_ns = 100;
  iv.on_cpu_ns = 10;
  iv.cpu_wait_ns = 30;
  iv.cpu_wait_resource = Resource::kLock;
  iv.wait = {Resource::kLock, "mutex 0x10"};
  add_interval(a, iv);
  EXPECT_EQ(a.split[Resource::kCpuWait], 0);
  EXPECT_EQ(a.split[Resource::kLock], 90);
  EXPECT_EQ(a.details[static_cast<std::size_t>(Resource::kLock)].at("mutex 0x10"), 90);
}

TEST(AddInterval, RunningWaitBecomesIdleNotInvented) {
  ThreadAccount a;
  Interval iv;
  iv.wall_ns = 100;
  iv.on_cpu_ns = 30;
  iv.wait = {Resource::kOnCpu, "running"};
  add_interval(a, iv);
  EXPECT_EQ(a.split[Resource::kIdle], 70);
}

TEST(DivideByReads, PooledTimeGoesToTheWaitsReadInProportion) {
  ThreadAccount a;
  WaitRatio ratio;
  Interval iv;
  iv.wall_ns = 100;
  iv.on_cpu_ns = 10;
  iv.wait = {Resource::kDisk, "fdatasync /x"};
  add_interval(a, iv);
  pool_off_cpu(ratio, iv);
  iv.wait = {Resource::kOnCpu, "running"};  // no wait seen: idle, "short waits between samples"
  add_interval(a, iv);
  pool_off_cpu(ratio, iv);
  iv.wait = {Resource::kIdle, "stopped by a signal (SIGSTOP)", Hold::kStopped};
  add_interval(a, iv);  // not pooled: stays where it is
  count_read(ratio, {Resource::kLock, "mutex 0x10"});
  count_read(ratio, {Resource::kLock, "mutex 0x10"});
  count_read(ratio, {Resource::kLock, "mutex 0x10"});
  count_read(ratio, {Resource::kIdle, "stopped by a signal (SIGSTOP)", Hold::kStopped});
  divide_by_reads(a, ratio);
  EXPECT_EQ(a.split.total_ns(), 300);
  EXPECT_EQ(a.split[Resource::kOnCpu], 30);
  EXPECT_EQ(a.split[Resource::kDisk], 0);
  EXPECT_EQ(a.split[Resource::kLock], 135);  // 180 * 3/4
  EXPECT_EQ(a.split[Resource::kIdle], 135);  // 90 held all along + 180 * 1/4
  EXPECT_EQ(a.held_ns[static_cast<std::size_t>(Hold::kStopped)], 135);
  EXPECT_TRUE(a.details[static_cast<std::size_t>(Resource::kDisk)].empty());
  EXPECT_EQ(a.details[static_cast<std::size_t>(Resource::kLock)].at("mutex 0x10"), 135);
  EXPECT_EQ(a.details[static_cast<std::size_t>(Resource::kIdle)].size(), 1u);
}

TEST(DivideByReads, WithoutAReadOffCpuThePooledTimeStays) {
  ThreadAccount a;
  WaitRatio ratio;
  Interval iv;
  iv.wall_ns = 100;
  iv.on_cpu_ns = 40;
  iv.wait = {Resource::kOnCpu, "running"};
  add_interval(a, iv);
  pool_off_cpu(ratio, iv);
  const ThreadAccount before = a;
  divide_by_reads(a, ratio);
  EXPECT_EQ(a.split.ns, before.split.ns);
  EXPECT_EQ(a.details, before.details);
}

TEST(DivideByReads, RoundingKeepsTheTotal) {
  ThreadAccount a;
  WaitRatio ratio;
  Interval iv;
  iv.wall_ns = 100;
  iv.wait = {Resource::kIdle, "epoll_wait"};
  add_interval(a, iv);
  pool_off_cpu(ratio, iv);
  count_read(ratio, {Resource::kLock, "mutex 0x10"});
  count_read(ratio, {Resource::kIdle, "epoll_wait"});
  count_read(ratio, {Resource::kDisk, "fdatasync /x"});
  divide_by_reads(a, ratio);
  EXPECT_EQ(a.split.total_ns(), 100);
  EXPECT_EQ(a.split[Resource::kLock] + a.split[Resource::kIdle] + a.split[Resource::kDisk], 100);
  EXPECT_GE(a.split[Resource::kDisk], 33);
  EXPECT_LE(a.split[Resource::kDisk], 34);
}

TEST(TimeSplit, SharesAndNames) {
  TimeSplit s;
  s[Resource::kLock] = 3;
  s[Resource::kIdle] = 1;
  EXPECT_DOUBLE_EQ(s.share(Resource::kLock), 0.75);
  EXPECT_EQ(s.busy_ns(), 3);
  EXPECT_EQ(resource_name(Resource::kCpuWait), "cpu_wait");
  EXPECT_EQ(resource_from_name("network"), Resource::kNetwork);
  EXPECT_FALSE(resource_from_name("bogus"));
}

TEST(TopDetails, SumsOverThreadsLargestFirst) {
  std::vector<ThreadAccount> ts(2);
  ts[0].details[static_cast<std::size_t>(Resource::kLock)]["mutex 0x1"] = 5;
  ts[1].details[static_cast<std::size_t>(Resource::kLock)]["mutex 0x1"] = 5;
  ts[1].details[static_cast<std::size_t>(Resource::kLock)]["mutex 0x2"] = 7;
  auto top = top_details(ts, Resource::kLock, 5);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].first, "mutex 0x1");
  EXPECT_EQ(top[0].second, 10);
}

}  // namespace
}  // namespace chokepoint::model
