// The knee runner (loadgen/knee_runner.h) against a simulated service of known capacity: the step
// runner answers every offered rate up to the capacity fast and above it slow and short, and
// the closed-loop sweep follows a known USL curve.
#include "loadgen/knee_runner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>

namespace chokepoint::loadgen {
namespace {

constexpr double kCapacity = 1000;  // req/s the simulated service sustains within the SLO
constexpr double kStepS = 5;

// One step of the simulated service: requests at the rate it serves, latency 2 ms below its
// capacity and 200 ms above, over whole seconds.
StepRun simulate(const LoadOptions& o) {
  const bool closed = o.rate_per_s == 0;
  const UslModel usl{300, 0.05, 0.01};
  const double served =
      closed ? usl.predict(o.connections) : std::min(o.rate_per_s, kCapacity * 1.02);
  const std::int64_t latency_us = !closed && o.rate_per_s > kCapacity ? 200'000 : 2'000;
  StepRun r;
  r.load.requests = static_cast<std::uint64_t>(served * kStepS);
  r.load.outcomes[0] = r.load.requests;
  r.load.duration_s = kStepS;
  r.load.threads = 1;
  r.load.connections = o.connections;
  r.load.rate_per_s = o.rate_per_s;
  for (std::uint64_t i = 0; i < r.load.requests; ++i) {
    r.load.latency.record_us(latency_us);
    r.load.service.record_us(latency_us);
  }
  for (int s = 0; s <= static_cast<int>(kStepS); ++s) {
    TimelineBucket b;
    b.requests = static_cast<std::uint64_t>(served);
    b.latency_count = b.requests;
    b.latency_sum_us = static_cast<double>(latency_us) * static_cast<double>(b.requests);
    b.latency_max_us = latency_us;
    r.load.timeline.push_back(b);
  }
  return r;
}

KneeRunOptions options() {
  KneeRunOptions o;
  o.base.duration_ns = static_cast<std::int64_t>(kStepS * 1e9);
  o.base.threads = 2;
  o.slo = *parse_slo("p99<50ms");
  o.max_error_ratio = 0.001;
  o.search.start_rate_per_s = 100;
  o.search.tolerance = 0.02;
  o.min_connections = 4;
  o.max_connections = 64;
  return o;
}

TEST(KneeRunner, FindsTheCapacityAndReportsEachStep) {
  std::atomic<bool> stop{false};
  int seen = 0;
  KneeObserver observer;
  observer.search_step = [&](const KneeStep&) { ++seen; };
  const KneeRun run = run_knee(options(), simulate, stop, observer);
  ASSERT_TRUE(run.knee);
  EXPECT_EQ(run.knee->state(), KneeSearch::State::kConverged);
  ASSERT_TRUE(run.knee->knee());
  EXPECT_LE(*run.knee->knee(), kCapacity);
  EXPECT_GE(*run.knee->knee(), kCapacity * 0.98);
  EXPECT_EQ(seen, static_cast<int>(run.steps.size()));
  EXPECT_FALSE(run.interrupted);
  EXPECT_TRUE(run.any_response());
  // The curve is by rate; the knee's step passed and the one above it failed on latency.
  const auto curve = run.curve();
  for (std::size_t i = 1; i < curve.size(); ++i)
    EXPECT_LT(curve[i - 1]->offered_rate_per_s, curve[i]->offered_rate_per_s);
  ASSERT_NE(run.at_knee(), nullptr);
  EXPECT_TRUE(run.at_knee()->judgement.pass);
  ASSERT_NE(run.above_knee(), nullptr);
  EXPECT_FALSE(run.above_knee()->judgement.pass);
  EXPECT_NE(run.above_knee()->judgement.reason.find("p99"), std::string::npos);
  // Little's law: each step opens rate x 50 ms connections, within the bounds.
  for (const auto& s : run.steps) {
    EXPECT_GE(s.connections, 4);
    EXPECT_LE(s.connections, 64);
    EXPECT_EQ(s.connections,
              std::clamp(static_cast<int>(std::ceil(s.offered_rate_per_s * 0.05)), 4, 64));
  }
  EXPECT_TRUE(run.sweep.empty());
}

TEST(KneeRunner, SweepsConcurrencyFitsTheUslAndPlansInstances) {
  KneeRunOptions o = options();
  o.usl = true;
  o.max_concurrency = 32;
  o.target_rate_per_s = 10'000;
  o.max_utilization = 0.8;
  std::atomic<bool> stop{false};
  bool sweep_started = false;
  KneeObserver observer;
  observer.sweep_start = [&] { sweep_started = true; };
  const KneeRun run = run_knee(o, simulate, stop, observer);
  EXPECT_TRUE(sweep_started);
  ASSERT_EQ(run.sweep.size(), usl_concurrency_levels(32).size());
  ASSERT_TRUE(run.fit) << run.fit_error;
  EXPECT_NEAR(run.fit->model.lambda, 300, 3);
  EXPECT_NEAR(run.fit->model.sigma, 0.05, 0.005);
  EXPECT_NEAR(run.fit->model.kappa, 0.01, 0.001);
  ASSERT_TRUE(run.plan) << run.plan_error;
  EXPECT_GE(run.plan->instances, 1);
  ASSERT_TRUE(run.knee_instances);
  EXPECT_EQ(*run.knee_instances,
            static_cast<long>(std::ceil(o.target_rate_per_s / *run.knee->knee())));
}

TEST(KneeRunner, AStopKeepsTheFinishedStepsAndSaysSo) {
  std::atomic<bool> stop{false};
  int steps = 0;
  const StepRunner stop_after_three = [&](const LoadOptions& o) {
    if (++steps == 3) stop = true;  // Ctrl-C during the third step
    return simulate(o);
  };
  KneeRunOptions o = options();
  o.usl = true;
  const KneeRun run = run_knee(o, stop_after_three, stop, {});
  EXPECT_TRUE(run.interrupted);
  EXPECT_EQ(run.steps.size(), 2U);  // the interrupted step measured nothing usable
  EXPECT_TRUE(run.sweep.empty());
  EXPECT_FALSE(run.fit);
}

}  // namespace
}  // namespace chokepoint::loadgen
