// chokepoint diff's services: the same service on both sides (by kind and endpoint, or by kind
// when each side probed one), its counters' rates and moved gauges, and hostile names escaped.
#include "render/services_diff.h"

#include <gtest/gtest.h>

namespace chokepoint::render {
namespace {

model::ServiceObservation redis(const std::string& endpoint, double commands_per_s,
                                double evicted_per_s, double blocked) {
  model::ServiceObservation s;
  s.kind = model::ServiceKind::kRedis;
  s.endpoint = endpoint;
  s.samples_ok = 3;
  s.duration_ns = 2'000'000'000;
  s.counters_first = {{"total_commands_processed", 100}, {"evicted_keys", 0}, {"quiet", 5}};
  s.counters_last = {{"total_commands_processed", 100 + 2 * commands_per_s},
                     {"evicted_keys", 2 * evicted_per_s},
                     {"quiet", 5}};
  s.gauges["blocked_clients"] = {0, blocked, blocked, blocked};
  s.gauges["maxmemory"] = {8, 8, 8, 8};
  return s;
}

TEST(ServicesDiff, TheSameServiceSideBySideWithWhatMoved) {
  const std::vector<model::ServiceObservation> before = {redis("127.0.0.1:6379", 1000, 500, 4)};
  // Restarted on another port: still the one Redis of each side.
  const std::vector<model::ServiceObservation> after = {redis("127.0.0.1:6380", 2500, 0, 1)};
  const std::string text = services_diff_text(before, after);
  EXPECT_NE(text.find("redis 127.0.0.1:6379 -> 127.0.0.1:6380"), std::string::npos) << text;
  EXPECT_NE(
      text.find("total_commands_processed/s      1000                2500                x2.5"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("evicted_keys/s"), std::string::npos);
  EXPECT_EQ(text.find("quiet"), std::string::npos) << "a counter that moved on neither side";
  EXPECT_NE(text.find("blocked_clients"), std::string::npos);
  EXPECT_EQ(text.find("maxmemory"), std::string::npos) << "a gauge that did not move";
  const auto j = services_diff_json(before, after);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_DOUBLE_EQ(j[0]["counters"]["total_commands_processed"]["ratio"].get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(j[0]["counters"]["evicted_keys"]["after"].get<double>(), 0);
  EXPECT_DOUBLE_EQ(j[0]["gauges"]["blocked_clients"]["change"].get<double>(), -3);
}

TEST(ServicesDiff, NothingWhenNoServiceIsOnBothSidesAndHostileNamesEscaped) {
  auto a = redis("127.0.0.1:1", 10, 0, 0);
  auto b = a;
  b.kind = model::ServiceKind::kMemcached;
  EXPECT_EQ(services_diff_text({a}, {b}), "");
  EXPECT_TRUE(services_diff_json({a}, {b}).empty());
  // Two Redis on each side: only the one whose endpoint matches pairs.
  auto c = redis("127.0.0.1:2", 10, 0, 0);
  EXPECT_EQ(services_diff_json({a, c}, {redis("127.0.0.1:3", 1, 0, 0), c}).size(), 1u);
  // A side that never read its service has nothing to compare.
  auto failed = a;
  failed.samples_ok = 0;
  EXPECT_EQ(services_diff_text({failed}, {a}), "");
  auto hostile = a;
  hostile.endpoint = "x\x1b[2Jy";
  hostile.counters_first["cmd:\x1b[31m:calls"] = 0;
  hostile.counters_last["cmd:\x1b[31m:calls"] = 10;
  const std::string text = services_diff_text({hostile}, {hostile});
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
}

}  // namespace
}  // namespace chokepoint::render
