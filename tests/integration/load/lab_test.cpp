// chokepoint load against chokepoint-lab (our test service), started by the test on loopback.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "harness.h"
#include "support/lab_process.h"

namespace chokepoint::loadtest {
namespace {

using namespace std::chrono_literals;
using test_support::LabProcess;

nlohmann::json run_json(const std::vector<std::string>& args, int* exit_code) {
  std::vector<std::string> argv = {chokepoint_binary(), "load"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run(argv, 20s);
  *exit_code = r.exit_code;
  try {
    return nlohmann::json::parse(r.out);
  } catch (const std::exception& e) {
    ADD_FAILURE() << e.what() << ": " << r.out << r.err;
    return nlohmann::json::object();
  }
}

TEST(LoadLab, ClosedLoopAgainstTheLab) {
  auto lab = LabProcess::start({"--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  int code = -1;
  const auto j = run_json(
      {"http://127.0.0.1:" + std::to_string(lab->port()) + "/", "-c", "4", "-n", "2000", "--json"},
      &code);
  ASSERT_EQ(code, 0) << j.dump();
  EXPECT_EQ(j["requests"], 2000);
  EXPECT_EQ(j["ok"], 2000);
  EXPECT_EQ(j["latency_ms"]["count"], 2000);
}

TEST(LoadLab, StalledUpstreamShowsCorrectedLatencyAndTooFewConnections) {
  // The lab's upstream role answers after 50 ms: 2 connections carry at most 40 req/s, and the
  // schedule asks for 200 req/s.
  auto up = LabProcess::start({"--role", "upstream", "--delay-ms", "50", "--port", "0"});
  ASSERT_TRUE(up) << up.error().message;
  int code = -1;
  const auto j = run_json({"http://127.0.0.1:" + std::to_string(up->port()) + "/", "-c", "2",
                           "--rate", "200", "-d", "2s", "--json"},
                          &code);
  ASSERT_EQ(code, 0) << j.dump();
  const double corrected = j["latency_ms"]["p99"];
  const double service = j["service_time_ms"]["p99"];
  EXPECT_GE(service, 45.0);
  EXPECT_GT(corrected, 10 * service) << j.dump();
  EXPECT_TRUE(j["too_few_connections"].get<bool>()) << j["warnings"].dump();
}

}  // namespace
}  // namespace chokepoint::loadtest
