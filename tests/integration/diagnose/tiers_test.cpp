// Multi-tier targets on the real lab: a front chokepoint-lab (--scenario upstream) calling a back
// chokepoint-lab that is itself slow, serial on one CPU thread or disk-bound on O_DSYNC writes,
// under wrk on the front. `diagnose --pid FRONT --pid BACK` gives each tier its verdict, links the
// front to the back by the front's upstream connections, and names the back's resource as the
// limit of the whole. About 5 s per case.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/background.h"
#include "support/cli.h"
#include "support/lab_process.h"

namespace chokepoint {
namespace {

using test_support::Background;
using test_support::LabProcess;
using test_support::run_chokepoint;

struct TierCase {
  std::vector<std::string> back_args;
  std::string verdict;
  // The back tier's kinds that are right: on a loaded host the one busy thread of the serial
  // scenario also waits for a core that other processes take, which reads cpu (contended).
  std::vector<std::string> kinds;
};

void expect_back_tier_limits(const TierCase& c) {
  auto back = LabProcess::start(c.back_args);
  ASSERT_TRUE(back) << back.error().message;
  auto front = LabProcess::start({"--scenario", "upstream", "--port", "0", "--upstream-calls", "1",
                                  "--upstream", "127.0.0.1:" + std::to_string(back->port())});
  ASSERT_TRUE(front) << front.error().message;
  const std::string url = "http://127.0.0.1:" + std::to_string(front->port()) + "/";
  auto load = Background::start("wrk", {"-t1", "-c16", "-d10s", "--timeout", "5s", url});
  ASSERT_TRUE(load) << load.error().message;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const std::string front_pid = std::to_string(front->pid());
  const std::string back_pid = std::to_string(back->pid());
  auto r = run_chokepoint(
      {"diagnose", "--pid", front_pid, "--pid", back_pid, "-d", "3s", "--no-probes", "--json"}, 60);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  const auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.stdout_text;
  ASSERT_EQ(j["tiers"].size(), 2u) << j.dump(1);
  const auto& t1 = j["tiers"][0];
  const auto& t2 = j["tiers"][1];
  EXPECT_EQ(t1["root_pid"], front->pid());
  EXPECT_EQ(t2["root_pid"], back->pid());
  // Each tier is its own process: the back's threads are not in the front's split.
  EXPECT_EQ(t1["pids"], nlohmann::json::array({front->pid()}));
  EXPECT_EQ(t2["pids"], nlohmann::json::array({back->pid()}));
  EXPECT_EQ(t1["verdict"], "network") << t1["diagnosis"]["time_split"].dump();
  EXPECT_EQ(t2["verdict"], c.verdict) << t2["diagnosis"]["time_split"].dump();
  ASSERT_FALSE(t2["diagnosis"]["bottlenecks"].empty()) << t2.dump(1);
  const std::string kind = t2["diagnosis"]["bottlenecks"][0]["kind"];
  EXPECT_NE(std::find(c.kinds.begin(), c.kinds.end(), kind), c.kinds.end()) << kind;
  ASSERT_EQ(t1["calls"].size(), 1u) << t1.dump(1);
  EXPECT_EQ(t1["calls"][0]["tier"], 2);
  EXPECT_EQ(t1["calls"][0]["address"], "127.0.0.1:" + std::to_string(back->port()));
  EXPECT_TRUE(t2["calls"].empty());
  EXPECT_EQ(j["limiting_tier"]["tier"], 2) << j["limiting_tier"].dump(1);
  EXPECT_EQ(j["limiting_tier"]["path"], nlohmann::json::array({1, 2}));
  EXPECT_EQ(j["verdict"], c.verdict);
  const std::string reason = j["limiting_tier"]["reason"];
  EXPECT_NE(reason.find("which is limited by " + c.verdict + " (" + kind + ")"), std::string::npos)
      << reason;
}

TEST(Tiers, AFrontWaitingOnASerialBackIsLimitedByTheBacksCpu) {
  expect_back_tier_limits(
      {{"--scenario", "serial", "--port", "0"}, "cpu", {"serial", "contended"}});
}

TEST(Tiers, AFrontWaitingOnADiskBoundBackIsLimitedByTheBacksDisk) {
  expect_back_tier_limits({{"--scenario", "fsync", "--port", "0"}, "disk", {"fsync"}});
}

TEST(Tiers, BadTierOptionsAreUsageErrors) {
  auto lab = LabProcess::start({"--scenario", "none", "--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  const std::string pid = std::to_string(lab->pid());
  auto twice = run_chokepoint({"diagnose", "--pid", pid, "--pid", pid, "-d", "200ms"});
  EXPECT_EQ(twice.exit_code, 2);
  EXPECT_NE(twice.stderr_text.find("error: --pid " + pid + " is given twice"), std::string::npos)
      << twice.stderr_text;
  EXPECT_NE(twice.stderr_text.find("hint:"), std::string::npos);
  auto record = run_chokepoint(
      {"diagnose", "--pid", pid, "--pid", "1", "--record", "/tmp/x.chokepoint", "-d", "200ms"});
  EXPECT_EQ(record.exit_code, 2);
  EXPECT_NE(record.stderr_text.find("--record takes one target"), std::string::npos)
      << record.stderr_text;
  auto top = run_chokepoint({"top", "--pid", pid, "--pid", "1", "--batch", "--iterations", "1"});
  EXPECT_EQ(top.exit_code, 2);
  EXPECT_NE(top.stderr_text.find("--pid is given more than once"), std::string::npos)
      << top.stderr_text;
}

}  // namespace
}  // namespace chokepoint
