// The load generator's per-second percentiles on a real run: chokepoint-lab on loopback, stopped
// (SIGSTOP) for 600 ms in the middle of an open-loop run, so one second's latency rises and the
// seconds around it do not.
#include <signal.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "loadgen/load.h"
#include "support/lab_process.h"
#include "util/clock.h"

namespace chokepoint::loadgen {
namespace {

using test_support::LabProcess;

TEST(IntervalLab, TheSecondTheServerStalledHasTheHighPercentilesAndNoOtherDoes) {
  auto lab = LabProcess::start({"--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  auto url = parse_url("http://127.0.0.1:" + std::to_string(lab->port()) + "/");
  ASSERT_TRUE(url) << url.error().message;
  LoadOptions o;
  o.requests.push_back({*url, 1});
  o.threads = 2;
  o.connections = 16;
  o.rate_per_s = 200;
  o.duration_ns = 4 * util::kNsPerSec;
  // The stall: from 1.2 s to 1.8 s after the run began (second 1 of the timeline).
  std::int64_t resumed_unix_ns = 0;
  std::thread staller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    kill(lab->pid(), SIGSTOP);
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    kill(lab->pid(), SIGCONT);
    resumed_unix_ns = util::realtime_ns();
  });
  auto run = run_load(o);
  staller.join();
  ASSERT_TRUE(run) << run.error().message;
  const LoadResult& r = *run;
  ASSERT_GE(r.timeline.size(), 4u);
  ASSERT_GT(r.start_unix_ns, 0);

  // Every second's percentiles are over that second's responses, and together over the run's.
  std::uint64_t counted = 0;
  std::int64_t max_us = 0;
  for (std::size_t s = 0; s < r.timeline.size(); ++s) {
    SCOPED_TRACE(s);
    const TimelineBucket& b = r.timeline[s];
    const IntervalPercentiles& p = b.percentiles;
    EXPECT_EQ(p.count, b.latency_count);
    counted += p.count;
    if (p.count == 0) continue;
    EXPECT_LE(p.p50_us, p.p90_us);
    EXPECT_LE(p.p90_us, p.p99_us);
    EXPECT_LE(p.p99_us, p.p999_us);
    EXPECT_LE(p.p999_us, p.max_us);
    EXPECT_EQ(p.max_us, std::max<std::int64_t>(1, b.latency_max_us));
    // A request's service time is part of its latency, so no percentile of it is larger.
    EXPECT_LE(p.service_p50_us, p.p50_us);
    EXPECT_LE(p.service_p99_us, p.p99_us);
    max_us = std::max(max_us, p.max_us);
  }
  EXPECT_EQ(counted, r.latency.count());
  EXPECT_EQ(max_us, r.latency.max_us());

  // The requests the stall held were answered when the lab resumed: the highest p99 is that
  // second's (or the next, when a loaded machine answered them past its end), about the stall.
  const auto resumed =
      static_cast<std::size_t>((resumed_unix_ns - r.start_unix_ns) / util::kNsPerSec);
  std::size_t worst = 0;
  for (std::size_t s = 1; s < r.timeline.size(); ++s) {
    if (r.timeline[s].percentiles.p99_us > r.timeline[worst].percentiles.p99_us) worst = s;
  }
  EXPECT_TRUE(worst == resumed || worst == resumed + 1) << worst << " " << resumed;
  EXPECT_GE(r.timeline[worst].percentiles.p99_us, 400'000);
  // The first second, before the stall, is fast: the whole run's p99 would not tell it apart.
  EXPECT_LT(r.timeline[0].percentiles.p99_us, r.timeline[worst].percentiles.p99_us / 4);
  EXPECT_LT(r.timeline[0].percentiles.p50_us, 50'000);
  EXPECT_GE(r.latency.percentile_us(99), 300'000);
}

}  // namespace
}  // namespace chokepoint::loadgen
