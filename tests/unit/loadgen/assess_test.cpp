// The judgement of a finished load run: one hint per failure class, and no pool-size advice when
// nothing answered (issue 18 item 7).
#include "loadgen/assess.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace chokepoint::loadgen {
namespace {

LoadOptions options() {
  LoadOptions o;
  auto url = parse_url("http://127.0.0.1:8080/");
  EXPECT_TRUE(url);
  o.requests.push_back({*url, 1});
  o.timeout_ns = 500'000'000;
  return o;
}

LoadResult failing(Outcome o, std::uint64_t n) {
  LoadResult r;
  r.outcomes[static_cast<int>(o)] = n;
  r.requests = n;
  r.connections = 4;
  r.duration_s = 1;
  return r;
}

TEST(FailureHint, EachClassPointsSomewhereElse) {
  const LoadOptions o = options();
  std::set<std::string> hints;
  for (Outcome c :
       {Outcome::kConnect, Outcome::kWrite, Outcome::kRead, Outcome::kTimeout, Outcome::kParse}) {
    const std::string h = failure_hint(failing(c, 10), o);
    EXPECT_NE(h.find("127.0.0.1:8080"), std::string::npos) << h;
    hints.insert(h);
  }
  EXPECT_EQ(hints.size(), 5u);
  EXPECT_NE(failure_hint(failing(Outcome::kTimeout, 3), o).find("--timeout 0.5 s"),
            std::string::npos);
  EXPECT_EQ(failure_hint(failing(Outcome::kOk, 3), o), "");
  // The class that failed most decides.
  LoadResult mixed = failing(Outcome::kParse, 9);
  mixed.outcomes[static_cast<int>(Outcome::kConnect)] = 1;
  EXPECT_EQ(failure_hint(mixed, o), failure_hint(failing(Outcome::kParse, 1), o));
}

TEST(Assess, SilentServerAtAFixedRateGetsNoConnectionAdvice) {
  LoadOptions o = options();
  o.rate_per_s = 100;
  LoadResult r = failing(Outcome::kTimeout, 40);
  r.dropped_sends = 160;
  const LoadAssessment a = assess(r, o);
  EXPECT_TRUE(a.fell_behind);
  EXPECT_FALSE(a.too_few_connections);
  for (const auto& w : a.warnings) EXPECT_EQ(w.find("--connections"), std::string::npos) << w;
}

// An open-loop run at 500 req/s on 8 connections, answered in about 0.1 ms, 552 of its 2500
// sends late, with its longest spell without a response `gap_ms` long, `own_ms` of it the
// generator thread's own (as chokepoint load measured one with the lab stopped for 1 s).
LoadResult late_run(std::int64_t gap_ms, std::int64_t own_ms) {
  LoadResult r;
  r.outcomes[static_cast<int>(Outcome::kOk)] = 2500;
  r.requests = 2500;
  r.connections = 8;
  r.duration_s = 5;
  r.late_sends = 552;
  for (int i = 0; i < 2490; ++i) r.service.record_us(100);
  for (int i = 0; i < 10; ++i) r.service.record_us(gap_ms * 1000);
  r.longest_response_gap = {2'000'000'000, gap_ms * 1'000'000, 8, own_ms * 1'000'000};
  return r;
}

TEST(Assess, AStalledServerIsNamedNotTheGenerator) {
  LoadOptions o = options();
  o.rate_per_s = 500;
  const LoadAssessment a = assess(late_run(1000, 3), o);
  EXPECT_TRUE(a.fell_behind);
  EXPECT_TRUE(a.server_stalled);
  EXPECT_FALSE(a.too_few_connections);
  ASSERT_FALSE(a.warnings.empty());
  EXPECT_EQ(a.warnings[0].rfind("the server stalled: no response for 1000 ms from 2.0 s into the "
                                "run while 8 requests were outstanding; ",
                                0),
            0u)
      << a.warnings[0];
  for (const auto& w : a.warnings) EXPECT_EQ(w.find("could not keep up"), std::string::npos) << w;
}

TEST(Assess, TheGeneratorsOwnStallOrAShortSpellIsNoServerStall) {
  LoadOptions o = options();
  o.rate_per_s = 500;
  // The thread itself did not run for most of the spell: the generator's stall.
  const LoadAssessment own = assess(late_run(1000, 900), o);
  EXPECT_FALSE(own.server_stalled);
  EXPECT_NE(own.warnings[0].find("the generator fell behind"), std::string::npos);
  // Under 100 ms, or under 10 median service times: a server's ordinary pace.
  EXPECT_FALSE(assess(late_run(90, 0), o).server_stalled);
  LoadResult slow = late_run(150, 0);
  slow.service = Histogram();
  for (int i = 0; i < 100; ++i) slow.service.record_us(50'000);
  EXPECT_FALSE(assess(slow, o).server_stalled);
  // A closed loop has no schedule to fall behind, but a stall is still named.
  const LoadAssessment closed = assess(late_run(1000, 0), options());
  EXPECT_TRUE(closed.server_stalled);
  ASSERT_EQ(closed.warnings.size(), 1u);
  EXPECT_EQ(closed.warnings[0].rfind("the server stalled: ", 0), 0u);
}

}  // namespace
}  // namespace chokepoint::loadgen
