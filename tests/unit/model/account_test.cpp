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
