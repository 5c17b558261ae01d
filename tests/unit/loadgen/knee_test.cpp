#include "loadgen/knee.h"

#include <gtest/gtest.h>

#include <cmath>

namespace chokepoint::loadgen {
namespace {

TEST(ParseSlo, OneTerm) {
  auto slo = parse_slo("p99<50ms");
  ASSERT_TRUE(slo) << slo.error().message;
  ASSERT_EQ(slo->terms.size(), 1u);
  EXPECT_DOUBLE_EQ(slo->terms[0].percentile, 99);
  EXPECT_EQ(slo->terms[0].limit_us, 50'000);
  EXPECT_FALSE(slo->terms[0].inclusive);
}

TEST(ParseSlo, SeveralTermsUnitsAndSpaces) {
  auto slo = parse_slo("p50 < 500us, p99.9<=1.5s,P90<2ms");
  ASSERT_TRUE(slo) << slo.error().message;
  ASSERT_EQ(slo->terms.size(), 3u);
  EXPECT_EQ(slo->terms[0].limit_us, 500);
  EXPECT_DOUBLE_EQ(slo->terms[1].percentile, 99.9);
  EXPECT_TRUE(slo->terms[1].inclusive);
  EXPECT_EQ(slo->terms[1].limit_us, 1'500'000);
  EXPECT_EQ(slo->terms[2].limit_us, 2'000);
}

TEST(ParseSlo, RejectsMalformedTermsWithAHint) {
  for (const char* bad :
       {"", "99<50ms", "p99", "p99<", "p99<50", "p99>50ms", "p100<5ms", "p0<5ms", "p99<50ms,",
        "p99<0.5us", "p99<2h", "p-1<5ms", "pinf<5ms", "p99<nanms", "p99<50msx", "p99<<50ms"}) {
    auto slo = parse_slo(bad);
    EXPECT_FALSE(slo) << bad;
    if (!slo) {
      EXPECT_FALSE(slo.error().hint.empty()) << bad;
    }
  }
}

TEST(ParseRatio, PercentAndFraction) {
  EXPECT_DOUBLE_EQ(*parse_ratio("0.1%"), 0.001);
  EXPECT_DOUBLE_EQ(*parse_ratio("0.001"), 0.001);
  EXPECT_DOUBLE_EQ(*parse_ratio("0"), 0);
  EXPECT_DOUBLE_EQ(*parse_ratio("100%"), 1);
  EXPECT_FALSE(parse_ratio("101%"));
  EXPECT_FALSE(parse_ratio("-1%"));
  EXPECT_FALSE(parse_ratio("1.5"));
  EXPECT_FALSE(parse_ratio("abc"));
  EXPECT_FALSE(parse_ratio("1%%"));
}

StepMeasurement step(double offered, double achieved, std::int64_t p99_us, double errors) {
  StepMeasurement m;
  m.offered_rate_per_s = offered;
  m.achieved_rate_per_s = achieved;
  m.percentile_us = {p99_us};
  m.error_ratio = errors;
  m.requests = static_cast<std::uint64_t>(achieved * 5);
  return m;
}

TEST(JudgeStep, PassesOnlyWhenEverythingHolds) {
  const Slo slo = *parse_slo("p99<50ms");
  EXPECT_TRUE(judge_step(slo, 0.001, step(1000, 999, 49'999, 0)).pass);
  auto slow = judge_step(slo, 0.001, step(1000, 999, 50'000, 0));
  EXPECT_FALSE(slow.pass);
  EXPECT_NE(slow.reason.find("p99 50 ms > 50 ms"), std::string::npos) << slow.reason;
  auto errors = judge_step(slo, 0.001, step(1000, 999, 1'000, 0.002));
  EXPECT_FALSE(errors.pass);
  EXPECT_NE(errors.reason.find("errors"), std::string::npos);
  auto behind = judge_step(slo, 0.001, step(1000, 900, 1'000, 0));
  EXPECT_FALSE(behind.pass);
  EXPECT_NE(behind.reason.find("served 900 of 1000"), std::string::npos) << behind.reason;
  StepMeasurement none = step(1000, 0, 0, 0);
  none.requests = 0;
  EXPECT_FALSE(judge_step(slo, 1, none).pass);
  const Slo inclusive = *parse_slo("p99<=50ms");
  EXPECT_TRUE(judge_step(inclusive, 0, step(1000, 1000, 50'000, 0)).pass);
}

TEST(JudgeStep, ClimbingLatencyIsNotASteadyState) {
  const Slo slo = *parse_slo("p99<50ms");
  auto m = step(1000, 999, 30'000, 0);
  // A queue that grows through the step: 4, 8, 12, 16, 20, 24 ms per second.
  m.second_mean_us = {4'000, 8'000, 12'000, 16'000, 20'000, 24'000};
  auto climbing = judge_step(slo, 0.001, m);
  EXPECT_FALSE(climbing.pass);
  EXPECT_NE(climbing.reason.find("latency still climbing"), std::string::npos) << climbing.reason;
  // Steady, if noisy, latency passes.
  m.second_mean_us = {5'000, 6'000, 5'500, 5'200, 6'100, 5'800};
  EXPECT_TRUE(judge_step(slo, 0.001, m).pass);
  // A climb that stays far below the SLO is not material: 1 -> 3 ms against 50 ms.
  m.second_mean_us = {1'000, 2'000, 3'000};
  EXPECT_TRUE(judge_step(slo, 0.001, m).pass);
  // One late spike is not a climb: the middle third does not rise.
  m.second_mean_us = {5'000, 5'000, 5'000, 5'000, 30'000, 30'000};
  EXPECT_TRUE(judge_step(slo, 0.001, m).pass);
  // Too few seconds to tell.
  m.second_mean_us = {4'000, 40'000};
  EXPECT_TRUE(judge_step(slo, 0.001, m).pass);
}

// Runs the search against a service that passes exactly up to `capacity`.
KneeSearch run_against(double capacity, KneeOptions options = {}) {
  KneeSearch s(options);
  while (auto rate = s.next_rate()) s.record(*rate, *rate <= capacity);
  return s;
}

TEST(KneeSearch, DoublesThenBisectsToWithinTwoPercent) {
  for (double capacity : {150.0, 1234.0, 5'870.0, 47'000.0, 99'999.0}) {
    auto s = run_against(capacity);
    EXPECT_EQ(s.state(), KneeSearch::State::kConverged) << capacity;
    ASSERT_TRUE(s.knee() && s.first_failing()) << capacity;
    EXPECT_LE(*s.knee(), capacity);
    EXPECT_GT(*s.first_failing(), capacity);
    EXPECT_LE((*s.first_failing() - *s.knee()) / *s.knee(), 0.02) << capacity;
    EXPECT_GE(*s.knee(), capacity * 0.98) << capacity;
    // log2(capacity/100) doublings, then about log2(50) bisections.
    EXPECT_LE(s.steps(), 20) << capacity;
  }
}

TEST(KneeSearch, FailingStartHalvesDownwards) {
  KneeOptions o;
  o.start_rate_per_s = 1000;
  auto s = run_against(130, o);
  EXPECT_EQ(s.state(), KneeSearch::State::kConverged);
  EXPECT_LE(*s.knee(), 130);
  EXPECT_GE(*s.knee(), 130 * 0.98);
}

TEST(KneeSearch, NothingPasses) {
  KneeOptions o;
  o.start_rate_per_s = 16;
  o.min_rate_per_s = 1;
  auto s = run_against(0.5, o);
  EXPECT_EQ(s.state(), KneeSearch::State::kNothingPassed);
  EXPECT_FALSE(s.knee());
  EXPECT_EQ(s.steps(), 5);  // 16, 8, 4, 2, 1
}

TEST(KneeSearch, StopsAtTheMaxRate) {
  KneeOptions o;
  o.max_rate_per_s = 1000;
  auto s = run_against(1e9, o);
  EXPECT_EQ(s.state(), KneeSearch::State::kMaxRate);
  EXPECT_DOUBLE_EQ(*s.knee(), 1000);
}

TEST(KneeSearch, StopsAtMaxSteps) {
  KneeOptions o;
  o.max_steps = 3;
  auto s = run_against(5'000, o);
  EXPECT_EQ(s.state(), KneeSearch::State::kMaxSteps);
  EXPECT_EQ(s.steps(), 3);
  EXPECT_DOUBLE_EQ(*s.knee(), 400);
}

TEST(KneeSearch, AFailureBelowAPassRestartsTheBoundsFromIt) {
  // Noise: 800 passes, then 400 fails. The search trusts the newer failure and goes below it.
  KneeSearch s(KneeOptions{});
  s.record(100, true);
  s.record(200, true);
  s.record(400, true);
  s.record(800, false);
  ASSERT_TRUE(s.next_rate());
  EXPECT_DOUBLE_EQ(*s.next_rate(), 600);
  s.record(600, true);
  s.record(700, false);
  s.record(300, false);
  EXPECT_FALSE(s.knee());
  EXPECT_DOUBLE_EQ(*s.next_rate(), 150);
}

TEST(KneeSearch, TightToleranceNeverRepeatsARate) {
  KneeOptions o;
  o.tolerance = 0.001;
  auto s = run_against(1000.4, o);
  EXPECT_EQ(s.state(), KneeSearch::State::kConverged);
  EXPECT_LE(s.steps(), 25);
}

TEST(UslLevels, PowersOfTwoAndTheMax) {
  EXPECT_EQ(usl_concurrency_levels(1), (std::vector<int>{1}));
  EXPECT_EQ(usl_concurrency_levels(8), (std::vector<int>{1, 2, 4, 8}));
  EXPECT_EQ(usl_concurrency_levels(48), (std::vector<int>{1, 2, 4, 8, 16, 32, 48}));
}

}  // namespace
}  // namespace chokepoint::loadgen
