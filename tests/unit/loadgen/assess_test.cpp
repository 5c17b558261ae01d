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

}  // namespace
}  // namespace chokepoint::loadgen
