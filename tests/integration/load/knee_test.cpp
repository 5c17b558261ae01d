// chokepoint knee against chokepoint-lab on loopback, where the capacity is known by construction:
// an upstream that answers after 10 ms, called once per request from a pool of 4 threads, carries
// at most 4 / 10 ms = 400 req/s (a little less with the lab's own overhead).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "harness.h"
#include "support/lab_process.h"

namespace chokepoint::loadtest {
namespace {

using namespace std::chrono_literals;
using test_support::LabProcess;

struct Knee {
  RunResult run;
  nlohmann::json j;
};

Knee knee(const std::vector<std::string>& args, std::chrono::seconds deadline = 120s) {
  std::vector<std::string> argv = {chokepoint_binary(), "knee"};
  argv.insert(argv.end(), args.begin(), args.end());
  Knee k;
  k.run = run(argv, deadline);
  k.j = nlohmann::json::parse(k.run.out, nullptr, false);
  return k;
}

// The pooled upstream service: the lab calls the upstream lab once per request from 4 threads.
struct PooledService {
  static std::optional<PooledService> start() {
    auto up = LabProcess::start({"--role", "upstream", "--delay-ms", "10", "--port", "0"});
    EXPECT_TRUE(up) << up.error().message;
    if (!up) return std::nullopt;
    auto lab = LabProcess::start({"--scenario", "upstream", "--upstream-calls", "1",
                                  "--blocking-workers", "4", "--upstream",
                                  "127.0.0.1:" + std::to_string(up->port()), "--port", "0"});
    EXPECT_TRUE(lab) << lab.error().message;
    if (!lab) return std::nullopt;
    return PooledService{std::move(*up), std::move(*lab)};
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(lab.port()) + "/"; }
  LabProcess upstream;
  LabProcess lab;
};

TEST(KneeLab, FindsThePoolCapacityAndWhatSaturatesAboveIt) {
  auto svc = PooledService::start();
  ASSERT_TRUE(svc);
  // p90, not p99: with 1 s steps a p99 is the second-worst of ~100-400 requests, and one
  // scheduling hiccup on a busy 2-core machine fails a step far below the knee. Past the knee the
  // queue grows for every request, which p90 sees as clearly.
  auto k = knee({svc->url(), "--slo", "p90<50ms", "--step", "1s", "--warmup", "300ms",
                 "--start-rate", "50", "--pid", std::to_string(svc->lab.pid()), "--json"});
  ASSERT_EQ(k.run.exit_code, 0) << k.run.err << k.run.out;
  ASSERT_FALSE(k.j.is_discarded()) << k.run.out;
  const auto& kn = k.j["knee"];
  EXPECT_EQ(kn["state"], "converged") << kn.dump();
  const double rate = kn["rate"];
  const double failing = kn["first_failing_rate"];
  EXPECT_GE(rate, 250) << kn.dump();
  EXPECT_LE(rate, 420) << kn.dump();
  EXPECT_GT(failing, rate);
  EXPECT_LE((failing - rate) / rate, 0.02 + 1e-9);
  // Above the knee every pool thread waits on the upstream: the diagnosis says so.
  EXPECT_EQ(kn["saturated"], "network") << kn["diagnosis_above_knee"].dump();
  EXPECT_EQ(kn["diagnosis_above_knee"]["bottlenecks"][0]["kind"], "upstream");
  // Every step has its load numbers and a diagnosis; the curve is the steps sorted by rate.
  const auto& steps = k.j["steps"];
  EXPECT_EQ(steps.size(), kn["steps"].get<std::size_t>());
  for (const auto& s : steps) {
    EXPECT_TRUE(s.contains("diagnosis")) << s.dump();
    EXPECT_GT(s["requests"].get<double>(), 0) << s.dump();
    EXPECT_FALSE(s["reason"].get<std::string>().empty());
  }
  const auto& curve = k.j["curve"];
  ASSERT_EQ(curve.size(), steps.size());
  for (std::size_t i = 1; i < curve.size(); ++i) {
    EXPECT_LE(curve[i - 1]["offered_rate"].get<double>(), curve[i]["offered_rate"].get<double>());
  }
}

TEST(KneeLab, UslSweepFitsAndPlansInstances) {
  auto svc = PooledService::start();
  ASSERT_TRUE(svc);
  const std::string csv = (std::filesystem::temp_directory_path() /
                           ("chokepoint-knee-" + std::to_string(getpid()) + ".csv"))
                              .string();
  auto k = knee({svc->url(), "--usl", "--max-concurrency", "8", "--target-rate", "2000", "--step",
                 "1s", "--warmup", "300ms", "--usl-csv", csv, "--json"});
  ASSERT_EQ(k.run.exit_code, 0) << k.run.err << k.run.out;
  ASSERT_FALSE(k.j.is_discarded()) << k.run.out;
  const auto& u = k.j["usl"];
  ASSERT_EQ(u["points"].size(), 4u) << u.dump();  // 1, 2, 4, 8
  // One connection: one upstream call at a time, about 1 / 10 ms.
  EXPECT_GT(u["points"][0]["throughput"].get<double>(), 60) << u.dump();
  EXPECT_LT(u["points"][0]["throughput"].get<double>(), 105) << u.dump();
  // The pool of 4 caps it near 400 req/s.
  const double x_max = u["x_max"];
  EXPECT_GT(x_max, 280) << u.dump();
  EXPECT_LT(x_max, 480) << u.dump();
  EXPECT_GT(u["r2"].get<double>(), 0.9) << u.dump();
  const long instances = u["instances"]["instances"];
  EXPECT_GE(instances, 5) << u.dump();  // 2000 / (0.8 * 480)
  EXPECT_LE(instances, 9) << u.dump();  // 2000 / (0.8 * 280)
  // The CSV round-trips through chokepoint usl.
  std::ifstream in(csv);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str().rfind("concurrency,throughput\n1,", 0), 0u) << text.str();
  auto fit = run({chokepoint_binary(), "usl", csv, "--json"}, 20s);
  std::remove(csv.c_str());
  ASSERT_EQ(fit.exit_code, 0) << fit.err;
  auto fj = nlohmann::json::parse(fit.out, nullptr, false);
  ASSERT_FALSE(fj.is_discarded()) << fit.out;
  EXPECT_NEAR(fj["x_max"].get<double>(), x_max, 0.02 * x_max);
}

// Regression: the URL positional took the command after -- as more URLs ("bad URL 'sleep'").
TEST(KneeLab, LaunchesACommandAfterTheDoubleDash) {
  const std::uint16_t port = free_port();
  const std::string lab = std::string(CHOKEPOINT_BIN_DIR) + "/chokepoint-lab";
  auto k = knee({"http://127.0.0.1:" + std::to_string(port) + "/", "--slo", "p90<50ms", "--step",
                 "500ms", "--warmup", "500ms", "--start-rate", "50", "--max-rate", "100", "--json",
                 "--", lab, "--scenario", "none", "--port", std::to_string(port)});
  ASSERT_EQ(k.run.exit_code, 0) << k.run.err << k.run.out;
  ASSERT_FALSE(k.j.is_discarded()) << k.run.out;
  EXPECT_EQ(k.j["target"].get<std::string>().rfind("command ", 0), 0u) << k.j["target"];
  EXPECT_EQ(k.j["knee"]["state"], "max_rate_passed") << k.j["knee"].dump();
  for (const auto& s : k.j["steps"]) EXPECT_TRUE(s.contains("diagnosis")) << s.dump();
}

TEST(KneeCli, UsageErrorsAreCaughtBeforeAnyLoad) {
  auto expect_usage = [](const std::vector<std::string>& args, const std::string& fragment) {
    auto k = knee(args, 10s);
    EXPECT_EQ(k.run.exit_code, 2) << k.run.err;
    EXPECT_NE(k.run.err.find("error: "), std::string::npos) << k.run.err;
    EXPECT_NE(k.run.err.find(fragment), std::string::npos) << k.run.err;
  };
  const std::string url = "http://127.0.0.1:1/";
  expect_usage({url}, "give --slo");
  expect_usage({url, "--slo", "p99>50ms"}, "is not of the form");
  expect_usage({url, "--slo", "p99<50"}, "needs a unit");
  expect_usage({url, "--slo", "p99<50ms", "--max-errors", "200%"}, "above 100%");
  expect_usage({url, "--slo", "p99<50ms", "--tolerance", "0"}, "--tolerance");
  expect_usage({url, "--slo", "p99<50ms", "--start-rate", "0"}, "--start-rate");
  expect_usage({url, "--slo", "p99<50ms", "--step", "10ms"}, "--step");
  expect_usage({"ftp://x/", "--slo", "p99<50ms"}, "");
  expect_usage({url, "--slo", "p99<50ms", "--pid", "1", "--name", "x"}, "one target");
}

TEST(KneeCli, AnUnwritablePageFailsBeforeAnyLoad) {
  auto k =
      knee({"http://127.0.0.1:1/", "--slo", "p99<50ms", "-o", "/nonexistent-dir/knee.html"}, 10s);
  EXPECT_EQ(k.run.exit_code, 1) << k.run.err;
  EXPECT_NE(k.run.err.find("error: "), std::string::npos) << k.run.err;
  EXPECT_NE(k.run.err.find("hint: "), std::string::npos) << k.run.err;
  EXPECT_EQ(k.run.out, "");  // no step ran
}

TEST(KneeCli, NothingListeningEndsWithAClearError) {
  auto k = knee({"http://127.0.0.1:1/", "--slo", "p99<50ms", "--start-rate", "8", "--step", "200ms",
                 "--warmup", "0s"},
                30s);
  EXPECT_EQ(k.run.exit_code, 1) << k.run.err;
  EXPECT_NE(k.run.err.find("no request got a response"), std::string::npos) << k.run.err;
  EXPECT_NE(k.run.out.find("KNEE: none"), std::string::npos) << k.run.out;
}

}  // namespace
}  // namespace chokepoint::loadtest
