// A real Prometheus (Debian's, started here on loopback with a temp dir and a 1 s scrape
// interval) scrapes two agents, each watching a lab instance in its own cgroup: one disk-bound,
// one CPU-bound. PromQL must return the right verdict for each.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "integration/monitor/agent_harness.h"
#include "support/lab_process.h"

namespace chokepoint::monitor_test {
namespace {

using test_support::Background;
using test_support::LabProcess;

// The diagnose verdict test's rule for the disk scenario on a machine whose two cores saturate
// before its storage: the verdict may be cpu, with disk a significant runner-up.
constexpr double kRunnerUpShare = 0.25;

// The instant vector of `query`, as target -> the series' labels and value.
std::map<std::string, std::pair<nlohmann::json, double>> query(std::uint16_t port,
                                                               const std::string& promql) {
  std::string encoded;
  for (unsigned char c : promql) {
    if (std::isalnum(c) || c == '_' || c == '.') {
      encoded += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      encoded += buf;
    }
  }
  std::map<std::string, std::pair<nlohmann::json, double>> out;
  auto r = test_support::http_get(port, "/api/v1/query?query=" + encoded, std::chrono::seconds(3));
  if (!r || r->status != 200) return out;
  const auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded() || j.value("status", "") != "success") return out;
  for (const auto& s : j["data"]["result"]) {
    out[s["metric"].value("target", "")] = {s["metric"],
                                            std::stod(s["value"][1].get<std::string>())};
  }
  return out;
}

TEST(Prometheus, QueryNamesEachInstancesVerdict) {
  TestCgroup disk_cg("chokepoint-prom-disk");
  TestCgroup cpu_cg("chokepoint-prom-cpu");
  auto disk_lab = LabProcess::start({"--scenario", "disk", "--port", "0"});
  ASSERT_TRUE(disk_lab) << disk_lab.error().message;
  auto cpu_lab = LabProcess::start({"--scenario", "cpu", "--port", "0"});
  ASSERT_TRUE(cpu_lab) << cpu_lab.error().message;
  ASSERT_TRUE(disk_cg.add(disk_lab->pid()));
  ASSERT_TRUE(cpu_cg.add(cpu_lab->pid()));
  auto load = [](std::uint16_t port) {
    return Background::start("wrk", {"-t1", "-c8", "-d40s", "--timeout", "10s",
                                     "http://127.0.0.1:" + std::to_string(port) + "/"});
  };
  auto disk_load = load(disk_lab->port());
  auto cpu_load = load(cpu_lab->port());
  ASSERT_TRUE(disk_load && cpu_load);
  const std::string disk_target = "cgroup:" + disk_cg.path();
  const std::string cpu_target = "cgroup:" + cpu_cg.path();
  auto disk_agent = Agent::start({"--target", disk_target, "--window", "2s"});
  auto cpu_agent = Agent::start({"--target", cpu_target, "--window", "2s"});
  ASSERT_TRUE(disk_agent && cpu_agent);

  const std::string dir = ::testing::TempDir() + "/prometheus-" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
      << "scrape_configs:\n  - job_name: chokepoint\n    static_configs:\n"
      << "      - targets: ['127.0.0.1:" << disk_agent->port << "', '127.0.0.1:" << cpu_agent->port
      << "']\n";
  const std::uint16_t prom_port = free_port();
  auto prometheus = Background::start(
      "prometheus",
      {"--config.file=" + dir + "/prometheus.yml", "--storage.tsdb.path=" + dir + "/data",
       "--web.listen-address=127.0.0.1:" + std::to_string(prom_port), "--log.level=warn"});
  ASSERT_TRUE(prometheus) << prometheus.error().message;

  std::map<std::string, std::pair<nlohmann::json, double>> verdicts;
  const bool both = wait_until(
      [&] {
        verdicts = query(prom_port, "chokepoint_verdict");
        return verdicts.count(disk_target) && verdicts.count(cpu_target);
      },
      std::chrono::seconds(25));
  ASSERT_TRUE(both) << "Prometheus never had both verdicts";
  EXPECT_EQ(verdicts[cpu_target].first["resource"], "cpu") << verdicts[cpu_target].first.dump();
  // The disk-bound lab is judged over 6 s, its first three 2 s windows, not over one window: on
  // two cores shared with the CPU-bound lab one window's disk share went from 0.66 down to 0.18
  // (the windows' verdicts from disk to cpu), while the diagnose verdict test judges this
  // scenario over 3 s. avg_over_time weighs the windows alike (each is scraped about twice).
  const bool six_seconds = wait_until(
      [&] {
        auto samples = query(prom_port,
                             "max by (target) (count_over_time("
                             "chokepoint_bottleneck_share{resource=\"disk\"}[6s]))");
        return samples.count(disk_target) && samples[disk_target].second >= 5;
      },
      std::chrono::seconds(20));
  ASSERT_TRUE(six_seconds) << "Prometheus never had 6 s of the disk-bound lab's windows";
  auto disk_share = query(prom_port,
                          "max by (target) (avg_over_time("
                          "chokepoint_bottleneck_share{resource=\"disk\"}[6s]))");
  ASSERT_TRUE(disk_share.count(disk_target)) << "no disk share for the disk-bound lab";
  EXPECT_GE(disk_share[disk_target].second, kRunnerUpShare);
  verdicts = query(prom_port, "chokepoint_verdict");
  ASSERT_TRUE(verdicts.count(disk_target));
  const std::string disk_verdict = verdicts[disk_target].first["resource"];
  EXPECT_TRUE(disk_verdict == "disk" || disk_verdict == "cpu")
      << verdicts[disk_target].first.dump();
  // Both instances were scraped as up, and the time split is there as counters.
  auto up = query(prom_port, "count(up == 1)");
  ASSERT_TRUE(up.count(""));
  EXPECT_EQ(up[""].second, 2);
  // (a rate needs two scrapes of each series inside its range)
  EXPECT_TRUE(wait_until(
      [&] {
        auto split =
            query(prom_port, "sum by (target) (rate(chokepoint_thread_seconds_total[10s]))");
        return split.count(disk_target) && split.count(cpu_target) &&
               split[disk_target].second > 0 && split[cpu_target].second > 0;
      },
      std::chrono::seconds(10)));
  // chokepoint fleet against the same server names both, and says what bounds each.
  const std::string url = "http://127.0.0.1:" + std::to_string(prom_port);
  auto fleet = test_support::run_chokepoint({"fleet", "--prometheus", url});
  EXPECT_EQ(fleet.exit_code, 0) << fleet.stderr_text;
  EXPECT_NE(fleet.stdout_text.find("tier chokepoint: 2 instance(s), 2 target(s)"),
            std::string::npos)
      << fleet.stdout_text;
  // Each target's line names it and a verdict (a later window may differ from the query above:
  // the two labs share two cores, so the exact resource is asserted there, not here).
  for (const std::string& t : {disk_target, cpu_target}) {
    const auto at = fleet.stdout_text.find(t);
    ASSERT_NE(at, std::string::npos) << fleet.stdout_text;
    const std::string line = fleet.stdout_text.substr(at, fleet.stdout_text.find('\n', at) - at);
    EXPECT_TRUE(std::regex_search(line, std::regex(" (none|network|disk|memory|lock|cpu)( \\(|$)")))
        << line;
  }
  EXPECT_TRUE(std::regex_search(fleet.stdout_text,
                                std::regex("Fleet verdict: [0-2] of 2 target\\(s\\) bound")))
      << fleet.stdout_text;
  auto over = test_support::run_chokepoint({"fleet", "--prometheus", url, "--range", "1m"});
  EXPECT_EQ(over.exit_code, 0) << over.stderr_text;
  EXPECT_NE(over.stdout_text.find("most frequent verdict over the last 1m"), std::string::npos);
  // With one instance's USL sweep and the rate the tier must carry, fleet says how many instances
  // the tier needs. The rows follow lambda 1000, sigma 0.05, kappa 0.001 exactly: peak 9,038
  // req/s at N* 30.8; at 80% of it, 30,000 req/s needs ceil(30000 / 7230.4) = 5 instances.
  const std::string csv = dir + "/tier-usl.csv";
  std::ofstream(csv) << "concurrency,throughput\n1,1000\n2,1901.141\n4,3442.341\n8,5689.9\n"
                        "16,8040.201\n32,9034.444\n64,7822.048\n";
  auto plan =
      test_support::run_chokepoint({"fleet", "--prometheus", url, "--usl", "chokepoint=" + csv,
                                    "--target-rate", "chokepoint=30000"});
  EXPECT_EQ(plan.exit_code, 0) << plan.stderr_text;
  EXPECT_NE(plan.stdout_text.find("peak 9038 req/s at concurrency 30.8"), std::string::npos)
      << plan.stdout_text;
  EXPECT_NE(plan.stdout_text.find("30000 req/s needs 5 instance(s) at 6000 req/s each (at most "
                                  "80% of the peak); 2 reporting now: add 3"),
            std::string::npos)
      << plan.stdout_text;
  // A tier Prometheus does not know still gets its plan, marked as such.
  auto unknown = test_support::run_chokepoint(
      {"fleet", "--prometheus", url, "--usl", "api=" + csv, "--target-rate", "api=5000"});
  EXPECT_EQ(unknown.exit_code, 0) << unknown.stderr_text;
  EXPECT_NE(unknown.stdout_text.find("tier api (--usl): no instance reports to Prometheus"),
            std::string::npos)
      << unknown.stdout_text;
  EXPECT_NE(unknown.stdout_text.find("0 reporting now: add 1"), std::string::npos)
      << unknown.stdout_text;
  test_support::expect_cli_error(
      test_support::run_chokepoint({"fleet", "--prometheus", url, "--usl", "chokepoint=" + csv}), 2,
      "needs --target-rate chokepoint=RATE");
  test_support::expect_cli_error(test_support::run_chokepoint({"fleet", "--prometheus", url,
                                                               "--target-rate", "chokepoint=fast"}),
                                 2, "is not a rate above 0");
  test_support::expect_cli_error(
      test_support::run_chokepoint({"fleet", "--prometheus", url, "--usl", "=" + csv}), 2,
      "takes TIER=VALUE");
  test_support::expect_cli_error(
      test_support::run_chokepoint({"fleet", "--prometheus", url, "--usl",
                                    "chokepoint=" + dir + "/missing.csv", "--target-rate",
                                    "chokepoint=1000"}),
      1, "missing.csv");
  // Bad URLs: down, not Prometheus (an agent's endpoint), a bad range: error and hint.
  test_support::expect_cli_error(
      test_support::run_chokepoint(
          {"fleet", "--prometheus", "http://127.0.0.1:" + std::to_string(free_port())}),
      1, "cannot query Prometheus at");
  test_support::expect_cli_error(
      test_support::run_chokepoint(
          {"fleet", "--prometheus", "http://127.0.0.1:" + std::to_string(disk_agent->port)}),
      1, "cannot query Prometheus at");
  // 200 with text that is not the API's JSON: the agent's /metrics (its query string ignored).
  test_support::expect_cli_error(
      test_support::run_chokepoint(
          {"fleet", "--prometheus",
           "http://127.0.0.1:" + std::to_string(disk_agent->port) + "/metrics?ignored="}),
      1, "did not answer like Prometheus's HTTP API (not JSON)");
  test_support::expect_cli_error(
      test_support::run_chokepoint({"fleet", "--prometheus", url, "--range", "1m]) or vector(1"}),
      2, "not a PromQL duration");
  test_support::expect_cli_error(
      test_support::run_chokepoint({"fleet", "--prometheus", "127.0.0.1:9090"}), 2, "http://");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace chokepoint::monitor_test
