#include "loadgen/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace chokepoint::loadgen {
namespace {

std::int64_t exact_percentile(std::vector<std::int64_t> sorted, double p) {
  const auto n = sorted.size();
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(n)));
  rank = std::clamp<std::size_t>(rank, 1, n);
  return sorted[rank - 1];
}

std::vector<std::int64_t> lognormal_us(std::size_t n, std::uint32_t seed) {
  std::mt19937_64 rng(seed);
  // Median ~ 400 us with a long tail reaching tens of seconds: spans many buckets.
  std::lognormal_distribution<double> dist(6.0, 2.0);
  std::vector<std::int64_t> v(n);
  for (auto& x : v) x = std::max<std::int64_t>(1, static_cast<std::int64_t>(dist(rng)));
  return v;
}

TEST(Histogram, PercentilesMatchExactWithinStatedPrecision) {
  auto values = lognormal_us(200'000, 42);
  Histogram h;
  for (auto v : values) h.record_us(v);
  std::sort(values.begin(), values.end());
  ASSERT_EQ(h.count(), values.size());
  EXPECT_EQ(h.min_us(), values.front());
  EXPECT_EQ(h.max_us(), values.back());
  for (double p : {1.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    const auto exact = exact_percentile(values, p);
    const auto got = h.percentile_us(p);
    // The histogram reports the top of the exact value's bucket: never below, at most one
    // bucket width above, which is under 1/1024 of the value (3 significant digits).
    EXPECT_GE(got, exact) << "p" << p;
    EXPECT_LT(got - exact, Histogram::bucket_width_us(exact)) << "p" << p;
    EXPECT_LE(static_cast<double>(got - exact), static_cast<double>(exact) / 1000.0 + 1)
        << "p" << p;
  }
}

TEST(Histogram, SmallValuesAreExact) {
  Histogram h;
  for (int v = 1; v <= 2000; ++v) h.record_us(v);
  EXPECT_EQ(h.percentile_us(50), 1000);
  EXPECT_EQ(h.percentile_us(99), 1980);
  EXPECT_EQ(h.percentile_us(100), 2000);
  EXPECT_DOUBLE_EQ(h.mean_us(), 1000.5);
}

TEST(Histogram, MergeEqualsRecordingEverythingInOne) {
  const auto a = lognormal_us(50'000, 1);
  const auto b = lognormal_us(70'000, 2);
  Histogram ha, hb, all;
  for (auto v : a) ha.record_us(v), all.record_us(v);
  for (auto v : b) hb.record_us(v), all.record_us(v);
  ha.merge(hb);
  EXPECT_EQ(ha.count(), all.count());
  EXPECT_EQ(ha.min_us(), all.min_us());
  EXPECT_EQ(ha.max_us(), all.max_us());
  EXPECT_NEAR(ha.mean_us(), all.mean_us(), 1e-6 * all.mean_us());
  for (double p : {50.0, 90.0, 99.0, 99.9, 99.99}) {
    EXPECT_EQ(ha.percentile_us(p), all.percentile_us(p)) << "p" << p;
  }
  Histogram empty;
  ha.merge(empty);
  EXPECT_EQ(ha.count(), all.count());
  empty.merge(hb);
  EXPECT_EQ(empty.percentile_us(99), hb.percentile_us(99));
}

TEST(Histogram, RangeIsClampedAndSaturationCounted) {
  Histogram h;
  h.record_us(0);
  h.record_us(-5);
  h.record_us(Histogram::kHighestUs * 2);
  EXPECT_EQ(h.count(), 3u);
  EXPECT_EQ(h.min_us(), 1);
  EXPECT_EQ(h.max_us(), Histogram::kHighestUs);
  EXPECT_EQ(h.saturated(), 1u);
  EXPECT_GE(h.percentile_us(100), Histogram::kHighestUs - Histogram::kHighestUs / 1000);
}

TEST(Histogram, MemoryIsConstant) {
  Histogram h;
  const auto before = h.memory_bytes();
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2'000'000; ++i)
    h.record_us(static_cast<std::int64_t>(rng() % 3'600'000'000ULL));
  EXPECT_EQ(h.memory_bytes(), before);
  EXPECT_LT(before, 256u * 1024u);
}

TEST(Histogram, EmptyReportsZero) {
  Histogram h;
  EXPECT_EQ(h.percentile_us(99), 0);
  EXPECT_EQ(h.max_us(), 0);
  EXPECT_EQ(h.count(), 0u);
}

}  // namespace
}  // namespace chokepoint::loadgen
