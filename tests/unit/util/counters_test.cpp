#include "util/counters.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace chokepoint::util {
namespace {

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

TEST(SaturatingDelta, CountsForward) {
  EXPECT_EQ(saturating_delta(10, 25), 15u);
  EXPECT_EQ(saturating_delta(7, 7), 0u);
  EXPECT_EQ(saturating_delta(0, kMax), kMax);
  EXPECT_EQ(saturating_delta(kMax - 1, kMax), 1u);
  EXPECT_FALSE(counter_reset(10, 25));
}

TEST(SaturatingDelta, AResetIsZeroNotNegative) {
  // A plain uint64 subtraction would give about 1.8e19 here, a rate no one could believe.
  EXPECT_EQ(saturating_delta(1000, 3), 0u);
  EXPECT_EQ(saturating_delta(kMax, 0), 0u);
  EXPECT_TRUE(counter_reset(1000, 3));
}

TEST(SaturatingDelta, IsUsableAtCompileTime) {
  static_assert(saturating_delta(5, 9) == 4);
  static_assert(saturating_delta(9, 5) == 0);
}

}  // namespace
}  // namespace chokepoint::util
