// The accumulator that turns a probe's readings into a window's observation.
#include <gtest/gtest.h>

#include "collect/probes/probe.h"

namespace chokepoint::collect::probes {
namespace {

TEST(ReadingAccumulator, RatesFromFirstAndLastGaugesOverAllAndFailuresKept) {
  ReadingAccumulator acc(model::ServiceKind::kRedis, "127.0.0.1:6379", "test");
  Reading a;
  a.counters["hits"] = 100;
  a.gauges["clients"] = 4;
  a.slow = {"b", "a"};  // newest first
  acc.add(a, 1'000'000'000);
  acc.add_failure(util::Error{"timed out", "check it"});
  Reading b;
  b.counters["hits"] = 300;
  b.gauges["clients"] = 8;
  b.slow = {"c", "b"};
  acc.add(b, 3'000'000'000);
  const auto o = acc.finish();
  EXPECT_EQ(o.samples_ok, 2);
  EXPECT_EQ(o.samples_failed, 1);
  EXPECT_EQ(o.error, "timed out");
  EXPECT_EQ(o.duration_ns, 2'000'000'000);
  EXPECT_DOUBLE_EQ(o.delta("hits"), 200);
  EXPECT_DOUBLE_EQ(o.rate_per_s("hits"), 100);
  EXPECT_DOUBLE_EQ(o.gauges.at("clients").min, 4);
  EXPECT_DOUBLE_EQ(o.gauges.at("clients").max, 8);
  EXPECT_DOUBLE_EQ(o.gauges.at("clients").mean, 6);
  EXPECT_DOUBLE_EQ(o.gauges.at("clients").last, 8);
  EXPECT_EQ(o.slow, (std::vector<std::string>{"c", "b", "a"}));
}

TEST(ReadingAccumulator, ACounterThatWentDownWasResetAndHasNoRate) {
  ReadingAccumulator acc(model::ServiceKind::kMemcached, "x", "test");
  Reading a, b;
  a.counters["n"] = 500;
  b.counters["n"] = 10;  // the server restarted
  acc.add(a, 0);
  acc.add(b, 1'000'000'000);
  EXPECT_EQ(acc.finish().delta("n"), 0);
}

TEST(ReadingAccumulator, LateCountersStartFromZeroOnlyWhenTheProbeSaysSo) {
  for (bool zero : {true, false}) {
    ReadingAccumulator acc(model::ServiceKind::kRedis, "x", "test");
    Reading a, b;
    a.new_counters_were_zero = b.new_counters_were_zero = zero;
    b.counters["cmd:set:calls"] = 40;
    acc.add(a, 0);
    acc.add(b, 1'000'000'000);
    EXPECT_EQ(acc.finish().delta("cmd:set:calls"), zero ? 40 : 0);
  }
}

TEST(ReadingAccumulator, BackendStatesAreCountedPerSample) {
  ReadingAccumulator acc(model::ServiceKind::kPostgres, "x", "test");
  for (int i = 0; i < 3; ++i) {
    Reading r;
    r.backend_states[42] = i < 2 ? "Lock:transactionid" : "active";
    acc.add(r, i);
  }
  const auto o = acc.finish();
  EXPECT_EQ(o.activity_samples, 3);
  EXPECT_EQ(o.backend_waits.at(42).at("Lock:transactionid"), 2);
  EXPECT_EQ(o.backend_waits.at(42).at("active"), 1);
}

}  // namespace
}  // namespace chokepoint::collect::probes
