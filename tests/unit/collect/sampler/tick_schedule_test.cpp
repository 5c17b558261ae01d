#include "collect/sampler/tick_schedule.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>

namespace chokepoint::collect::sampler {
namespace {

constexpr std::int64_t kMs = 1'000'000;
constexpr std::int64_t kInterval = 100 * kMs;
constexpr std::int64_t kStart = 987'654'321'123;  // a session starts anywhere on the clock
constexpr std::int64_t kForever = INT64_MAX;

TEST(TickSchedule, EachTickReadsInsideItsOwnIntervalAndInOrder) {
  std::int64_t last = kStart;
  for (int k = 1; k <= 10'000; ++k) {
    const std::int64_t grid = kStart + k * kInterval;
    const std::int64_t t = tick_time_ns(grid, kInterval, kForever);
    ASSERT_GE(t, grid - kInterval / 2) << k;
    ASSERT_LT(t, grid + kInterval / 2) << k;
    ASSERT_GT(t, last) << k;
    last = t;
  }
}

TEST(TickSchedule, TheCloseIsOnItsGridPointAndNoTickIsAfterIt) {
  const std::int64_t deadline = kStart + 30 * kInterval;
  EXPECT_EQ(tick_time_ns(deadline, kInterval, deadline), deadline);
  EXPECT_EQ(tick_time_ns(deadline + kInterval, kInterval, deadline), deadline);
  for (int k = 1; k < 30; ++k) {
    EXPECT_LE(tick_time_ns(kStart + k * kInterval, kInterval, deadline), deadline) << k;
  }
  // A window of one interval: its only tick is the close.
  EXPECT_EQ(tick_time_ns(kStart + kInterval, kInterval, kStart + kInterval), kStart + kInterval);
}

// The reads' phases in a cycle that divides the interval (10 ms: a timer wheel) and in one as
// long as it (100 ms: Redis's serverCron at hz 10) spread over the whole cycle: 2,000 ticks in
// 10 bins, 200 expected in each. On the grid itself every phase would be the same bin.
TEST(TickSchedule, ReadsFallAtEveryPhaseOfACycleThatDividesTheInterval) {
  for (const std::int64_t cycle : {10 * kMs, 100 * kMs}) {
    std::array<int, 10> bins{};
    for (int k = 1; k <= 2'000; ++k) {
      const std::int64_t t = tick_time_ns(kStart + k * kInterval, kInterval, kForever);
      ++bins[static_cast<std::size_t>((t % cycle) * 10 / cycle)];
    }
    for (int n : bins) {
      EXPECT_GT(n, 140) << "cycle " << cycle / kMs << " ms";
      EXPECT_LT(n, 260) << "cycle " << cycle / kMs << " ms";
    }
  }
}

}  // namespace
}  // namespace chokepoint::collect::sampler
