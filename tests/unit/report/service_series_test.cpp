#include "report/service_series.h"

#include <gtest/gtest.h>

#include <string>

namespace chokepoint::report {
namespace {

constexpr std::int64_t kS = 1'000'000'000;

model::ServicePoll poll(std::int64_t at_ns, std::map<std::string, double> counters,
                        std::map<std::string, double> gauges = {}) {
  model::ServicePoll p;
  p.at_ns = at_ns;
  p.ok = true;
  p.reading.counters = std::move(counters);
  p.reading.gauges = std::move(gauges);
  return p;
}

// n columns of `length` from `first`.
ColumnGrid uniform(std::int64_t first, std::int64_t length, std::size_t n) {
  ColumnGrid g;
  for (std::size_t i = 0; i < n; ++i)
    g.starts_ns.push_back(first + static_cast<std::int64_t>(i) * length);
  return g;
}

const nlohmann::json& chart(const nlohmann::json& service, const std::string& title) {
  for (const auto& c : service["charts"]) {
    if (c["title"] == title) return c;
  }
  ADD_FAILURE() << "no chart " << title << " in " << service.dump(1);
  static const nlohmann::json kNone;
  return kNone;
}

TEST(ServiceSeries, NoProbesNoServices) {
  EXPECT_TRUE(service_series_json({}, {}, uniform(0, kS, 4)).empty());
}

// The columns as the timeline cut them, not all of one length (a column ends at the first tick at
// or past its nominal end, and ticks fall anywhere in their interval): each poll goes to the
// column whose span holds it. Regression: polls were put on a uniform grid of the nominal column
// length, and a timeline with merged columns (4 s of 500 ms columns cut into 5) put every poll
// after 2.5 s in the last column, leaving the Redis page's commands/s with 2 columns of 5.
TEST(ServiceSeries, PollsGoToTheColumnsAsTheTimelineCutThem) {
  const std::vector<model::ServiceProbe> probes = {
      {model::ServiceKind::kRedis, "127.0.0.1:6379", "hiredis over TCP: INFO"}};
  std::vector<model::ServicePoll> polls;
  for (int i = 0; i <= 4; ++i) {
    polls.push_back(poll(i * kS + kS / 10, {{"total_commands_processed", 1000.0 * i}}));
  }
  ColumnGrid grid;
  for (std::int64_t start_ms : {0, 500, 1'600, 2'400, 3'300}) {
    grid.starts_ns.push_back(start_ms * 1'000'000);
  }
  const nlohmann::json j = service_series_json(probes, polls, grid);
  ASSERT_EQ(j.size(), 1U);
  const auto& ops = chart(j[0], "commands")["series"][0]["values"];
  ASSERT_EQ(ops.size(), 5U);
  EXPECT_TRUE(ops[0].is_null());                   // the first poll: where rates start from
  EXPECT_DOUBLE_EQ(ops[1].get<double>(), 1000.0);  // 1.1 s
  EXPECT_DOUBLE_EQ(ops[2].get<double>(), 1000.0);  // 2.1 s
  EXPECT_DOUBLE_EQ(ops[3].get<double>(), 1000.0);  // 3.1 s
  EXPECT_DOUBLE_EQ(ops[4].get<double>(), 1000.0);  // 4.1 s
}

// Rates between consecutive polls, summed per column; a counter that went down was reset and
// gives no rate across the reset; gauges are a column's mean; the hit ratio is of the growth.
TEST(ServiceSeries, RedisRatesRatiosAndGaugesPerColumn) {
  const std::vector<model::ServiceProbe> probes = {
      {model::ServiceKind::kRedis, "127.0.0.1:6379", "hiredis over TCP: INFO"}};
  const std::vector<model::ServicePoll> polls = {
      // Before the first tick: counts in the first column, and is where rates start from.
      poll(-kS / 2,
           {{"total_commands_processed", 100}, {"keyspace_hits", 0}, {"keyspace_misses", 0}},
           {{"connected_clients", 4}}),
      poll(kS / 2,
           {{"total_commands_processed", 1100}, {"keyspace_hits", 30}, {"keyspace_misses", 10}},
           {{"connected_clients", 6}}),
      poll(3 * kS / 2,
           {{"total_commands_processed", 3100}, {"keyspace_hits", 30}, {"keyspace_misses", 10}},
           {{"connected_clients", 8}}),
      // Column 2 has no poll. Column 3: a restart (the counter went down), then 500 in 1 s.
      poll(3 * kS + kS / 4, {{"total_commands_processed", 50}}),
      poll(3 * kS + 3 * kS / 4, {{"total_commands_processed", 550}}),
  };
  const nlohmann::json j = service_series_json(probes, polls, uniform(0, kS, 4));
  ASSERT_EQ(j.size(), 1U);
  const auto& s = j[0];
  EXPECT_EQ(s["kind"], "redis");
  EXPECT_EQ(s["endpoint"], "127.0.0.1:6379");
  EXPECT_EQ(s["polls"], 5);
  EXPECT_EQ(s["failed"], 0);
  const auto& ops = chart(s, "commands")["series"][0]["values"];
  ASSERT_EQ(ops.size(), 4U);
  EXPECT_DOUBLE_EQ(ops[0].get<double>(), 1000.0);  // 1000 commands in 1 s
  EXPECT_DOUBLE_EQ(ops[1].get<double>(), 2000.0);
  EXPECT_TRUE(ops[2].is_null());
  // 0 across the reset (1.75 s) plus 500 over 0.5 s, over the column's 2.25 s of polls.
  EXPECT_NEAR(ops[3].get<double>(), 500.0 / 2.25, 1e-9);
  const auto& hits = chart(s, "keyspace hit ratio")["series"][0]["values"];
  EXPECT_DOUBLE_EQ(hits[0].get<double>(), 75.0);
  EXPECT_TRUE(hits[1].is_null());  // no reads in that column
  const auto& clients = chart(s, "clients")["series"][0]["values"];
  EXPECT_DOUBLE_EQ(clients[0].get<double>(), 5.0);  // the mean of 4 and 6
  EXPECT_DOUBLE_EQ(clients[1].get<double>(), 8.0);
  EXPECT_TRUE(clients[3].is_null());
  // Error counters that never moved are not drawn.
  for (const auto& c : s["charts"]) EXPECT_NE(c["title"], "errors");
}

// Redis lists a command's counters once it ran: a counter new since the poll before was 0.
TEST(ServiceSeries, ANewCounterWasZeroWhenTheServiceSaysSo) {
  const std::vector<model::ServiceProbe> probes = {{model::ServiceKind::kRedis, "r", "INFO"}};
  auto first = poll(0, {{"cmd:get:calls", 10}, {"cmd:get:usec", 100}});
  auto second = poll(
      kS,
      {{"cmd:get:calls", 20}, {"cmd:get:usec", 200}, {"cmd:set:calls", 10}, {"cmd:set:usec", 300}});
  second.reading.new_counters_were_zero = true;
  const nlohmann::json j = service_series_json(probes, {first, second}, uniform(0, 2 * kS, 1));
  // (100 + 300) usec over (10 + 10) calls.
  EXPECT_DOUBLE_EQ(chart(j[0], "time per command")["series"][0]["values"][0].get<double>(), 20.0);
}

// PostgreSQL: commits less the probe's own transactions; backends by wait event, the mean count
// per poll, idle left out; a failed poll is counted and its error kept.
TEST(ServiceSeries, PostgresCommitsAndWaitEvents) {
  const std::vector<model::ServiceProbe> probes = {
      {model::ServiceKind::kPostgres, "/run/postgresql port 5432", "libpq"}};
  auto p0 = poll(0, {{"xact_commit", 1000}, {"probe_xacts", 5}});
  p0.reading.backend_states = {{1, "Lock:transactionid"}, {2, "active"}, {3, "idle"}};
  auto p1 = poll(kS / 2, {});
  p1.reading.backend_states = {{1, "Lock:transactionid"}, {2, "Lock:transactionid"}};
  auto p2 = poll(kS, {{"xact_commit", 1110}, {"probe_xacts", 15}});
  p2.reading.backend_states = {{1, "IO:WALSync"}};
  model::ServicePoll failed;
  failed.at_ns = kS + 1;
  failed.error = "cannot read postgres: <timeout>";
  failed.hint = "check --pg";
  const nlohmann::json j = service_series_json(probes, {p0, p1, p2, failed}, uniform(0, 2 * kS, 1));
  const auto& s = j[0];
  EXPECT_EQ(s["polls"], 3);
  EXPECT_EQ(s["failed"], 1);
  EXPECT_EQ(s["error"], "cannot read postgres: <timeout>");
  const auto& tx = chart(s, "transactions")["series"][0];
  EXPECT_EQ(tx["name"], "commits");
  EXPECT_DOUBLE_EQ(tx["values"][0].get<double>(), 100.0);  // 110 commits, 10 the probe's, in 1 s
  const auto& waits = chart(s, "backends by wait event")["series"];
  std::map<std::string, double> mean;
  for (const auto& w : waits) mean[w["name"]] = w["values"][0].get<double>();
  EXPECT_EQ(mean.size(), 3U);
  EXPECT_DOUBLE_EQ(mean["Lock:transactionid"], 1.0);  // 3 over 3 polls
  EXPECT_DOUBLE_EQ(mean["active"], 1.0 / 3);
  EXPECT_DOUBLE_EQ(mean["IO:WALSync"], 1.0 / 3);
}

// HAProxy: a series per backend, the most active first, at most kMaxServiceSeriesParts.
TEST(ServiceSeries, HaproxyBackendsMostActiveFirst) {
  const std::vector<model::ServiceProbe> probes = {
      {model::ServiceKind::kHaproxy, "sock", "show stat"}};
  std::map<std::string, double> c0, c1;
  for (int b = 0; b < 8; ++b) {
    const std::string k = "backend:b" + std::to_string(b) + ":stot";
    c0[k] = 0;
    c1[k] = b * 10;
  }
  const nlohmann::json j =
      service_series_json(probes, {poll(0, c0), poll(kS, c1)}, uniform(0, kS, 2));
  const auto& series = chart(j[0], "backend sessions")["series"];
  ASSERT_EQ(series.size(), kMaxServiceSeriesParts);
  EXPECT_EQ(series[0]["name"], "b7");
  EXPECT_DOUBLE_EQ(series[0]["values"][1].get<double>(), 70.0);
  EXPECT_EQ(series[5]["name"], "b2");
}

}  // namespace
}  // namespace chokepoint::report
