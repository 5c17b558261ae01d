#include "loadgen/interval_histograms.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace chokepoint::loadgen {
namespace {

// Three writers record the same seconds with different values; each second's percentiles must be
// those of one histogram of all its values (the merge is exact), whatever order the writers move.
TEST(IntervalHistograms, EachSecondIsTheExactMergeOfEveryWritersValues) {
  constexpr int kWriters = 3;
  constexpr std::size_t kSeconds = 5;
  IntervalMerger merger(kWriters);
  std::vector<IntervalRecorder> recorders;
  for (int w = 0; w < kWriters; ++w) recorders.emplace_back(merger, w);
  std::vector<Histogram> whole(kSeconds), service(kSeconds);
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(7.0, 1.5);
  for (std::size_t s = 0; s < kSeconds; ++s) {
    for (int w = 0; w < kWriters; ++w) {
      recorders[static_cast<std::size_t>(w)].move_to(s);
      // Writer 1 records nothing in second 2: it still moves past it.
      if (w == 1 && s == 2) continue;
      for (int i = 0; i < 1000 * (w + 1); ++i) {
        const auto v = static_cast<std::int64_t>(dist(rng)) * static_cast<std::int64_t>(s + 1);
        recorders[static_cast<std::size_t>(w)].record_us(v, v / 3);
        whole[s].record_us(v);
        service[s].record_us(v / 3);
      }
    }
  }
  for (auto& r : recorders) r.finish();
  const auto got = merger.finish();
  ASSERT_EQ(got.size(), kSeconds);
  for (std::size_t s = 0; s < kSeconds; ++s) {
    SCOPED_TRACE(s);
    EXPECT_EQ(got[s].count, whole[s].count());
    EXPECT_EQ(got[s].p50_us, whole[s].percentile_us(50));
    EXPECT_EQ(got[s].p90_us, whole[s].percentile_us(90));
    EXPECT_EQ(got[s].p99_us, whole[s].percentile_us(99));
    EXPECT_EQ(got[s].p999_us, whole[s].percentile_us(99.9));
    EXPECT_EQ(got[s].max_us, whole[s].max_us());
    EXPECT_EQ(got[s].service_p50_us, service[s].percentile_us(50));
    EXPECT_EQ(got[s].service_p99_us, service[s].percentile_us(99));
  }
  // Later seconds hold larger values (each scaled by its second): the percentiles say so.
  EXPECT_GT(got[4].p50_us, 3 * got[0].p50_us);
}

TEST(IntervalHistograms, SecondsWithoutResponsesAreEmptyAndTimeNeverGoesBack) {
  IntervalMerger merger(2);
  IntervalRecorder a(merger, 0), b(merger, 1);
  a.move_to(0);
  a.record_us(100, 50);
  a.move_to(3);  // seconds 1 and 2 had nothing
  a.record_us(900, 10);
  a.move_to(1);  // earlier than the current second: ignored
  EXPECT_EQ(a.current(), 3u);
  a.record_us(900, 10);
  b.move_to(3);
  b.record_us(700, 20);
  a.finish();
  b.finish();
  const auto got = merger.finish();
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].count, 1u);
  EXPECT_EQ(got[0].p99_us, 100);
  EXPECT_EQ(got[1].count, 0u);
  EXPECT_EQ(got[1].p50_us, 0);
  EXPECT_EQ(got[2].count, 0u);
  EXPECT_EQ(got[3].count, 3u);
  EXPECT_EQ(got[3].p50_us, 900);
  EXPECT_EQ(got[3].max_us, 900);
  EXPECT_EQ(got[3].service_p50_us, 10);
}

}  // namespace
}  // namespace chokepoint::loadgen
