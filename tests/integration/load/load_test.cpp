// chokepoint load against real servers on loopback: nginx for the normal paths, a hostile
// server thread for every way a response can go wrong.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "harness.h"

namespace chokepoint::loadtest {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kErrorClasses[] = {"connect", "read", "write", "timeout",
                                         "4xx",     "5xx",  "parse"};

json parse_json(const RunResult& r) {
  try {
    return json::parse(r.out);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not JSON (" << e.what() << "): " << r.out << "\nstderr: " << r.err;
    return json::object();
  }
}

// Every request has exactly one outcome: ok + every error class = requests.
void expect_reconciles(const json& j) {
  std::uint64_t sum = j.value("ok", 0ULL);
  for (const char* k : kErrorClasses) sum += j["errors"].value(k, 0ULL);
  EXPECT_EQ(sum, j.value("requests", 0ULL)) << j.dump();
  std::uint64_t timeline = 0;
  for (const auto& b : j["timeline"]) timeline += b.value("requests", 0ULL);
  EXPECT_EQ(timeline, j.value("requests", 0ULL));
}

RunResult load(const std::vector<std::string>& args, std::chrono::milliseconds deadline = 20s) {
  std::vector<std::string> argv = {chokepoint_binary(), "load"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, deadline);
}

class LoadNginx : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!nginx_.start(&why)) GTEST_SKIP() << why;
  }
  NginxServer nginx_;
};

TEST_F(LoadNginx, ClosedLoopCountsAddUpWithTheServersLog) {
  auto r = load({nginx_.url("/"), "-c", "8", "-n", "5000", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = parse_json(r);
  EXPECT_EQ(j["mode"], "closed");
  EXPECT_EQ(j["requests"], 5000);
  EXPECT_EQ(j["ok"], 5000);
  EXPECT_EQ(j["status"]["2xx"], 5000);
  expect_reconciles(j);
  EXPECT_EQ(j["latency_ms"]["count"], 5000);
  // nginx saw exactly the requests we counted.
  EXPECT_EQ(nginx_.access_log().size(), 5000u);
  // In a closed loop intended == sent, so corrected and service time agree.
  EXPECT_DOUBLE_EQ(j["latency_ms"]["p99"].get<double>(), j["service_time_ms"]["p99"].get<double>());
  EXPECT_GT(j["rps"].get<double>(), 500.0);
}

TEST_F(LoadNginx, OpenLoopAchievesTheRate) {
  auto r = load({nginx_.url("/"), "-c", "20", "--rate", "2000", "-d", "2s", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = parse_json(r);
  EXPECT_EQ(j["mode"], "open");
  const double rps = j["rps"];
  EXPECT_NEAR(rps, 2000.0, 2000.0 * 0.03) << j.dump();
  EXPECT_NEAR(j["requests"].get<double>(), 4000.0, 4000.0 * 0.03);
  EXPECT_EQ(j["ok"], j["requests"]);
  EXPECT_EQ(j["dropped_sends"], 0);
  EXPECT_FALSE(j["too_few_connections"].get<bool>());
  expect_reconciles(j);
  // Corrected latency is never below the service time at the same percentile.
  EXPECT_GE(j["latency_ms"]["p50"].get<double>(), j["service_time_ms"]["p50"].get<double>());
  EXPECT_GE(j["timeline"].size(), 2u);
}

TEST_F(LoadNginx, TraceIdsOfTheSlowestRequestsReachedTheServer) {
  auto r = load({nginx_.url("/"), "-c", "4", "-n", "2000", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = parse_json(r);
  ASSERT_EQ(j["slowest"].size(), 10u);
  std::set<std::string> logged;
  const std::regex tp("^/ 200 00-([0-9a-f]{32})-([0-9a-f]{16})-01 HTTP/1.1$");
  for (const auto& line : nginx_.access_log()) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, tp)) << line;
    logged.insert(m[1]);
  }
  EXPECT_EQ(logged.size(), 2000u) << "trace ids must be unique per request";
  double prev = 1e18;
  for (const auto& s : j["slowest"]) {
    EXPECT_TRUE(logged.count(s["trace_id"].get<std::string>())) << s.dump();
    EXPECT_LE(s["latency_ms"].get<double>(), prev);  // slowest first
    prev = s["latency_ms"];
  }
}

TEST_F(LoadNginx, WeightsMethodsHeadersAndStatusClasses) {
  auto r = load({nginx_.url("/a"), nginx_.url("/b"), nginx_.url("/missing"), nginx_.url("/error"),
                 "--weights", "6,2,1,1", "-c", "4", "-n", "4000", "-H", "X-Test: 1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = parse_json(r);
  expect_reconciles(j);
  const auto per_url = j["requests_per_url"];
  EXPECT_NEAR(per_url[0].get<double>(), 2400, 200);
  EXPECT_NEAR(per_url[1].get<double>(), 800, 120);
  EXPECT_EQ(j["errors"]["4xx"], per_url[2]);
  EXPECT_EQ(j["errors"]["5xx"], per_url[3]);
  EXPECT_EQ(j["ok"].get<std::uint64_t>(),
            per_url[0].get<std::uint64_t>() + per_url[1].get<std::uint64_t>());

  auto head = load({nginx_.url("/"), "-m", "HEAD", "-n", "100", "--json"});
  ASSERT_EQ(head.exit_code, 0) << head.err;
  EXPECT_EQ(parse_json(head)["ok"], 100);
  auto post = load({nginx_.url("/"), "-m", "POST", "--body", "x=1", "-n", "100", "--json"});
  ASSERT_EQ(post.exit_code, 0) << post.err;
  // nginx answers a POST to a 'return 200' location with 200 (it discards the body).
  EXPECT_EQ(parse_json(post)["requests"], 100);
}

TEST_F(LoadNginx, WarmupIsSentButNotCounted) {
  auto r = load(
      {nginx_.url("/"), "-c", "4", "--rate", "500", "--warmup", "500ms", "-d", "1s", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = parse_json(r);
  const auto warm = j["warmup_requests"].get<std::uint64_t>();
  const auto measured = j["requests"].get<std::uint64_t>();
  EXPECT_NEAR(static_cast<double>(warm), 250, 15);
  EXPECT_NEAR(static_cast<double>(measured), 500, 15);
  EXPECT_EQ(nginx_.access_log().size(), warm + measured);
}

TEST_F(LoadNginx, TextReportHasPercentilesAndTimeline) {
  auto r = load({nginx_.url("/"), "-c", "2", "-d", "1s", "--rate", "200", "--timeline"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"p50", "p90", "p99", "p99.9", "p99.99", "max", "timeline", "slowest",
                        "service", "Little's law"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s << " missing in:\n" << r.out;
  }
}

TEST_F(LoadNginx, SeveralThreadsSplitConnectionsRateAndRequests) {
  auto closed = load({nginx_.url("/"), "-t", "2", "-c", "8", "-n", "4001", "--json"});
  ASSERT_EQ(closed.exit_code, 0) << closed.err;
  const json c = parse_json(closed);
  EXPECT_EQ(c["threads"], 2);
  EXPECT_EQ(c["requests"], 4001);
  EXPECT_EQ(c["ok"], 4001);
  EXPECT_EQ(c["connects"], 8);
  EXPECT_EQ(nginx_.access_log().size(), 4001u);

  auto open = load({nginx_.url("/"), "-t", "2", "-c", "8", "--rate", "1000", "-d", "2s", "--json"});
  ASSERT_EQ(open.exit_code, 0) << open.err;
  const json o = parse_json(open);
  EXPECT_NEAR(o["rps"].get<double>(), 1000.0, 30.0) << o.dump();
  expect_reconciles(o);
}

// `kill -SIG` after 1 s of a 30 s run: the run stops, drains, and still prints the report, for
// Ctrl-C (SIGINT) as for a service manager's or a script's SIGTERM.
void expect_signal_ends_the_run_with_a_report(const NginxServer& nginx, const std::string& sig) {
  auto r = run({chokepoint_binary(), "load", nginx.url("/"), "-c", "2", "--rate", "100", "-d",
                "30s", "--json"},
               10s, "(sleep 1; kill -" + sig + " $$) & :");
  ASSERT_FALSE(r.timed_out) << sig;
  EXPECT_EQ(r.exit_code, 0) << sig << ": " << r.err;
  EXPECT_LT(r.wall_s, 5.0) << "a 30 s run must stop soon after SIG" << sig;
  const json j = parse_json(r);
  // About 1 s at 100 req/s; wide bounds because sanitizer builds start slowly.
  EXPECT_GE(j["requests"].get<int>(), 20);
  EXPECT_LE(j["requests"].get<int>(), 300);
  EXPECT_EQ(j["dropped_sends"], 0) << "an interrupt is not a drop";
  expect_reconciles(j);
}

TEST_F(LoadNginx, InterruptEndsTheRunWithAReport) {
  expect_signal_ends_the_run_with_a_report(nginx_, "INT");
}

TEST_F(LoadNginx, TerminateEndsTheRunWithAReport) {
  expect_signal_ends_the_run_with_a_report(nginx_, "TERM");
}

TEST(LoadNginxClose, ServerClosingKeepAliveConnectionsIsNoError) {
  // nginx answers every 10th request on a connection with "Connection: close".
  NginxServer nginx;
  std::string why;
  if (!nginx.start(&why, 10)) GTEST_SKIP() << why;
  auto r = load({nginx.url("/"), "-c", "4", "-n", "2000", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = parse_json(r);
  EXPECT_EQ(j["ok"], 2000) << j.dump();
  expect_reconciles(j);
  EXPECT_GE(j["connects"].get<int>(), 200);
  EXPECT_LE(j["connects"].get<int>(), 204);
}

TEST(LoadH2, ClosedAndOpenLoopOverH2c) {
  // nginx closes an HTTP/2 connection with GOAWAY after 100 streams: reconnects are no errors.
  NginxServer nginx;
  std::string why;
  if (!nginx.start(&why, 100, /*h2=*/true)) GTEST_SKIP() << why;
  auto r = load({nginx.url("/"), "--h2", "-c", "4", "-n", "3000", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = parse_json(r);
  EXPECT_EQ(j["protocol"], "h2c");
  EXPECT_EQ(j["ok"], 3000) << j.dump();
  expect_reconciles(j);
  EXPECT_GE(j["connects"].get<int>(), 30);
  const auto log = nginx.access_log();
  ASSERT_EQ(log.size(), 3000u);
  const std::regex line("^/ 200 00-[0-9a-f]{32}-[0-9a-f]{16}-01 HTTP/2.0$");
  for (const auto& l : log) ASSERT_TRUE(std::regex_match(l, line)) << l;

  auto open = load({nginx.url("/missing"), "--h2", "-c", "4", "--rate", "500", "-d", "1s", "-m",
                    "POST", "--body", "x=1", "--json"});
  ASSERT_EQ(open.exit_code, 0) << open.err;
  const json o = parse_json(open);
  EXPECT_NEAR(o["requests"].get<double>(), 500, 15);
  EXPECT_EQ(o["errors"]["4xx"], o["requests"]);
}

TEST(LoadH2, SilentServerTimesOut) {
  HostileServer server(HostileServer::Mode::kSilent);
  ASSERT_TRUE(server.ok());
  auto r = load({server.url(), "--h2", "-c", "2", "-d", "1s", "--timeout", "300ms", "--json"}, 10s);
  ASSERT_FALSE(r.timed_out);
  EXPECT_LT(r.wall_s, 2.8);
  const json j = parse_json(r);
  expect_reconciles(j);
  EXPECT_GT(j["requests"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(j["errors"]["timeout"], j["requests"]);
}

TEST(LoadStall, TooFewConnectionsShowCorrectedLatencyAndWarning) {
  // Each request takes 50 ms; 2 connections carry at most 40 req/s, the schedule asks for 200.
  HostileServer server(HostileServer::Mode::kDelay, 50);
  ASSERT_TRUE(server.ok());
  auto r = load({server.url(), "-c", "2", "--rate", "200", "-d", "2s", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = parse_json(r);
  expect_reconciles(j);
  const double corrected = j["latency_ms"]["p99"];
  const double service = j["service_time_ms"]["p99"];
  EXPECT_GT(service, 45.0);
  EXPECT_LT(service, 200.0);
  EXPECT_GT(corrected, 10 * service) << j.dump();
  EXPECT_TRUE(j["fell_behind"].get<bool>());
  EXPECT_TRUE(j["too_few_connections"].get<bool>());
  EXPECT_GT(j["dropped_sends"].get<std::uint64_t>() + j["late_sends"].get<std::uint64_t>(), 100u);
  EXPECT_GT(j["connections_needed"].get<double>(), 8.0);  // 200/s x 50 ms = 10
  bool warned = false;
  for (const auto& w : j["warnings"]) {
    if (w.get<std::string>().find("too few connections") != std::string::npos) warned = true;
  }
  EXPECT_TRUE(warned) << j["warnings"].dump();
}

struct HostileCase {
  HostileServer::Mode mode;
  const char* name;
  const char* expected_class;
};

void PrintTo(const HostileCase& c, std::ostream* os) {
  *os << c.name;
}

class LoadHostile : public ::testing::TestWithParam<HostileCase> {};

TEST_P(LoadHostile, EveryRequestEndsInOneCountedOutcomeWithinTheDeadline) {
  const HostileCase c = GetParam();
  HostileServer server(c.mode);
  ASSERT_TRUE(server.ok());
  // 1 s of load, 300 ms per-request timeout: the run must end by 1 s + grace, with bounded RSS.
  auto r = load({server.url(), "-c", "2", "-d", "1s", "--timeout", "300ms", "--json"}, 10s);
  ASSERT_FALSE(r.timed_out) << "chokepoint load did not end";
  // The wall-clock bound only catches hangs (start-up under sanitizers on a busy machine is slow);
  // the run's own measured window shows that it ends at duration + grace (300 ms).
  EXPECT_LT(r.wall_s, 1.0 + 0.3 + 4.5) << "run must end at duration + grace (+ start-up slack)";
  EXPECT_EQ(r.exit_code, 1) << "no request got a response, so the run failed: " << r.err;
  EXPECT_NE(r.err.find("no request got a response"), std::string::npos) << r.err;
  // Memory stays capped: within 32 MiB of what the binary needs to print its help (a baseline
  // that also holds under sanitizers, which add their own overhead).
  const auto baseline = run({chokepoint_binary(), "load", "--help"}, 10s);
  EXPECT_LT(r.max_rss_kb, baseline.max_rss_kb + 32 * 1024) << "memory must stay capped";
  const json j = parse_json(r);
  expect_reconciles(j);
  EXPECT_LT(j["duration_s"].get<double>(), 1.0 + 0.3 + 0.15) << j.dump();
  const auto n = j["requests"].get<std::uint64_t>();
  EXPECT_GT(n, 0u);
  // Every request fails the expected way, except that the (at most 2) still in flight when the
  // grace period ends are timeouts.
  const auto expected = j["errors"][c.expected_class].get<std::uint64_t>();
  const auto timeouts = j["errors"]["timeout"].get<std::uint64_t>();
  if (std::string(c.expected_class) == "timeout") {
    EXPECT_EQ(expected, n) << j.dump();
  } else {
    EXPECT_EQ(expected + timeouts, n) << j.dump();
    EXPECT_LE(timeouts, 2u) << j.dump();
  }
  EXPECT_EQ(j["latency_ms"]["count"], 0);
}

INSTANTIATE_TEST_SUITE_P(
    Modes, LoadHostile,
    ::testing::Values(HostileCase{HostileServer::Mode::kResetMidBody, "ResetMidBody", "read"},
                      HostileCase{HostileServer::Mode::kGarbageStatus, "GarbageStatus", "parse"},
                      HostileCase{HostileServer::Mode::kEndlessHeaders, "EndlessHeaders", "parse"},
                      HostileCase{HostileServer::Mode::kBadChunked, "BadChunked", "parse"},
                      HostileCase{HostileServer::Mode::kInfiniteBody, "InfiniteBody", "timeout"},
                      HostileCase{HostileServer::Mode::kSlowLoris, "SlowLoris", "timeout"},
                      HostileCase{HostileServer::Mode::kSilent, "Silent", "timeout"}),
    [](const ::testing::TestParamInfo<HostileCase>& info) { return std::string(info.param.name); });

TEST(LoadFailures, RefusedPortCountsConnectErrorsWithoutBusyLooping) {
  const auto port = free_port();  // nothing listens here
  auto r = load({"http://127.0.0.1:" + std::to_string(port) + "/", "-c", "4", "-d", "1s", "--json"},
                10s);
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 1);
  const json j = parse_json(r);
  expect_reconciles(j);
  EXPECT_GT(j["errors"]["connect"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(j["errors"]["connect"], j["requests"]);
  // Back-off between attempts: far less than a core's worth of CPU over the second.
  EXPECT_LT(r.cpu_s, 0.5 * r.wall_s) << "cpu " << r.cpu_s << " s over " << r.wall_s << " s";
  EXPECT_LT(j["requests"].get<std::uint64_t>(), 2000u);
}

TEST(LoadFailures, TooManyConnectionsForRlimitIsAPreflightError) {
  auto r = run({chokepoint_binary(), "load", "http://127.0.0.1:9/", "-c", "500", "-d", "5s"}, 10s,
               "ulimit -n 100");
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("RLIMIT_NOFILE"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("hint:"), std::string::npos) << r.err;
  EXPECT_LT(r.wall_s, 2.0) << "must fail before any load";
}

TEST(LoadCli, HelpAndUsageErrors) {
  auto help = load({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* s : {"--rate", "--connections", "--threads", "--duration", "--requests",
                        "--warmup", "--timeout", "--json", "--header", "--body"}) {
    EXPECT_NE(help.out.find(s), std::string::npos) << s;
  }
  EXPECT_NE(help.out.find("--h2"), std::string::npos);

  for (const std::vector<std::string>& bad :
       std::vector<std::vector<std::string>>{{"http://127.0.0.1:9/", "--bogus"},
                                             {"http://127.0.0.1:9/", "--rate", "fast"},
                                             {"http://127.0.0.1:9/", "-c", "0"},
                                             {"http://127.0.0.1:9/", "-d", "ten"},
                                             {"http://127.0.0.1:9/", "http://127.0.0.2:9/"},
                                             {"http://127.0.0.1:9/", "--weights", "1,2"},
                                             {"http://127.0.0.1:9/", "-H", "NoColon"},
                                             {"http://127.0.0.1:9/", "-H", "Host: evil"},
                                             {}}) {
    auto r = load(bad, 10s);
    EXPECT_EQ(r.exit_code, 2) << testing::PrintToString(bad) << "\n" << r.err;
    EXPECT_NE(r.err.find("error:"), std::string::npos) << r.err;
  }
  for (const char* url : {"ftp://127.0.0.1/", "http://127.0.0.1:99999/", "not-a-url",
                          "https://127.0.0.1/", "http://[::1/", "http://127.0.0.1/a b"}) {
    auto r = load({url, "-d", "1s"}, 10s);
    EXPECT_EQ(r.exit_code, 2) << url << "\n" << r.err;
    EXPECT_NE(r.err.find("error:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("hint:"), std::string::npos) << url << ": " << r.err;
  }
}

}  // namespace
}  // namespace chokepoint::loadtest
