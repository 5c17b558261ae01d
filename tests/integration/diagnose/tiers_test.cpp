// Multi-tier targets on the real lab: a front chokepoint-lab (--scenario upstream) calling a back
// chokepoint-lab that is itself slow, serial on one CPU thread or disk-bound on O_DSYNC writes,
// under wrk on the front. `diagnose --pid FRONT --pid BACK` gives each tier its verdict, links the
// front to the back by the front's upstream connections, and names the back's resource as the
// limit of the whole. About 5 s per case.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "integration/monitor/agent_harness.h"
#include "support/background.h"
#include "support/cli.h"
#include "support/files.h"
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

// How diagnose is pointed at the two labs.
enum class Target {
  kPids,          // --pid FRONT --pid BACK
  kPidsRecorded,  // the same with --record, then replay --json of the recording
  kCgroup,        // --cgroup PATH --tiers, both labs in one test cgroup
};

// The JSON's tier (0-based) whose root is `pid`; fails the test when there is none.
std::size_t tier_of(const nlohmann::json& j, pid_t pid) {
  for (std::size_t i = 0; i < j["tiers"].size(); ++i) {
    if (j["tiers"][i]["root_pid"] == pid) return i;
  }
  ADD_FAILURE() << "no tier has root " << pid << ": " << j["tiers"].dump(1);
  return 0;
}

void expect_back_tier_limits(const TierCase& c, Target target = Target::kPids) {
  // Declared before the labs, so that it is removed after they are gone.
  std::optional<monitor_test::TestCgroup> cgroup;
  if (target == Target::kCgroup) {
    cgroup.emplace("chokepoint-tiers-test");
    ASSERT_TRUE(std::filesystem::exists(cgroup->path())) << "cannot create " << cgroup->path();
  }
  auto back = LabProcess::start(c.back_args);
  ASSERT_TRUE(back) << back.error().message;
  auto front = LabProcess::start({"--scenario", "upstream", "--port", "0", "--upstream-calls", "1",
                                  "--upstream", "127.0.0.1:" + std::to_string(back->port())});
  ASSERT_TRUE(front) << front.error().message;
  if (cgroup) {
    ASSERT_TRUE(cgroup->add(back->pid()));
    ASSERT_TRUE(cgroup->add(front->pid()));
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(front->port()) + "/";
  auto load = Background::start("wrk", {"-t1", "-c16", "-d10s", "--timeout", "5s", url});
  ASSERT_TRUE(load) << load.error().message;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const std::string front_pid = std::to_string(front->pid());
  const std::string back_pid = std::to_string(back->pid());
  std::vector<std::string> args = {"diagnose", "--pid", front_pid, "--pid", back_pid};
  if (cgroup) args = {"diagnose", "--cgroup", cgroup->path(), "--tiers"};
  args.insert(args.end(), {"-d", "3s", "--no-probes", "--json"});
  const test_support::TempDir dir("chokepoint-tiers");
  const std::string recording = dir.path + "/tiers.chokepoint";
  if (target == Target::kPidsRecorded) args.insert(args.end(), {"--record", recording});
  auto r = run_chokepoint(args, 60);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  const auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.stdout_text;
  ASSERT_EQ(j["tiers"].size(), 2u) << j.dump(1);
  // The pids given keep their order; a cgroup's services come by pid.
  const std::size_t f = tier_of(j, front->pid());
  const std::size_t b = tier_of(j, back->pid());
  if (target != Target::kCgroup) {
    EXPECT_EQ(f, 0u);
  }
  ASSERT_NE(f, b);
  const auto& t1 = j["tiers"][f];
  const auto& t2 = j["tiers"][b];
  // Each tier is its own process: the back's threads are not in the front's split.
  EXPECT_EQ(t1["pids"], nlohmann::json::array({front->pid()}));
  EXPECT_EQ(t2["pids"], nlohmann::json::array({back->pid()}));
  EXPECT_EQ(t1["verdict"], "network") << t1["diagnosis"]["time_split"].dump();
  EXPECT_EQ(t2["verdict"], c.verdict) << t2["diagnosis"]["time_split"].dump();
  ASSERT_FALSE(t2["diagnosis"]["bottlenecks"].empty()) << t2.dump(1);
  const std::string kind = t2["diagnosis"]["bottlenecks"][0]["kind"];
  EXPECT_NE(std::find(c.kinds.begin(), c.kinds.end(), kind), c.kinds.end()) << kind;
  ASSERT_EQ(t1["calls"].size(), 1u) << t1.dump(1);
  EXPECT_EQ(t1["calls"][0]["tier"], b + 1);
  EXPECT_EQ(t1["calls"][0]["address"], "127.0.0.1:" + std::to_string(back->port()));
  EXPECT_TRUE(t2["calls"].empty());
  EXPECT_EQ(j["limiting_tier"]["tier"], b + 1) << j["limiting_tier"].dump(1);
  EXPECT_EQ(j["limiting_tier"]["path"], nlohmann::json::array({f + 1, b + 1}));
  EXPECT_EQ(j["verdict"], c.verdict);
  const std::string reason = j["limiting_tier"]["reason"];
  EXPECT_NE(reason.find("which is limited by " + c.verdict + " (" + kind + ")"), std::string::npos)
      << reason;
  if (target != Target::kPidsRecorded) return;
  // The recording holds the tiers: its replay gives the same tiers, verdicts and limiting tier.
  auto replay = run_chokepoint({"replay", recording, "--json"}, 60);
  ASSERT_EQ(replay.exit_code, 0) << replay.stderr_text;
  const auto rj = nlohmann::json::parse(replay.stdout_text, nullptr, false);
  ASSERT_FALSE(rj.is_discarded()) << replay.stdout_text;
  ASSERT_EQ(rj["tiers"].size(), 2u) << rj.dump(1);
  for (std::size_t i = 0; i < 2; ++i) {
    for (const char* key : {"root_pid", "pids", "calls", "verdict"}) {
      EXPECT_EQ(rj["tiers"][i][key], j["tiers"][i][key]) << "tier " << i + 1 << " " << key;
    }
    EXPECT_EQ(rj["tiers"][i]["diagnosis"]["bottlenecks"][0]["kind"],
              j["tiers"][i]["diagnosis"]["bottlenecks"][0]["kind"]);
  }
  EXPECT_EQ(rj["limiting_tier"], j["limiting_tier"]);
  EXPECT_EQ(rj["verdict"], j["verdict"]);
}

TEST(Tiers, AFrontWaitingOnASerialBackIsLimitedByTheBacksCpuAndItsRecordingReplaysSo) {
  expect_back_tier_limits({{"--scenario", "serial", "--port", "0"}, "cpu", {"serial", "contended"}},
                          Target::kPidsRecorded);
}

TEST(Tiers, AFrontWaitingOnADiskBoundBackIsLimitedByTheBacksDisk) {
  expect_back_tier_limits({{"--scenario", "fsync", "--port", "0"}, "disk", {"fsync"}});
}

// Two services in one cgroup (a container, a systemd slice): each process that no other process
// of the cgroup started is a tier.
TEST(Tiers, TwoServicesInOneCgroupAreTwoTiers) {
  expect_back_tier_limits({{"--scenario", "serial", "--port", "0"}, "cpu", {"serial", "contended"}},
                          Target::kCgroup);
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
  auto tiers = run_chokepoint({"diagnose", "--pid", pid, "--tiers", "-d", "200ms"});
  EXPECT_EQ(tiers.exit_code, 2);
  EXPECT_NE(tiers.stderr_text.find("error: --tiers goes with --cgroup PATH"), std::string::npos)
      << tiers.stderr_text;
  EXPECT_NE(tiers.stderr_text.find("hint:"), std::string::npos);
  auto top = run_chokepoint({"top", "--pid", pid, "--pid", "1", "--batch", "--iterations", "1"});
  EXPECT_EQ(top.exit_code, 2);
  EXPECT_NE(top.stderr_text.find("--pid is given more than once"), std::string::npos)
      << top.stderr_text;
}

}  // namespace
}  // namespace chokepoint
