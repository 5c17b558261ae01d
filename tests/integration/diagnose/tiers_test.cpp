// Multi-tier targets on the real lab: a front chokepoint-lab (--scenario upstream) calling a back
// chokepoint-lab that is itself slow, serial on one CPU thread or disk-bound on O_DSYNC writes,
// under wrk on the front. `diagnose --pid FRONT --pid BACK` gives each tier its verdict, links the
// front to the back by the front's upstream connections, and names the back's resource as the
// limit of the whole. About 5 s per case.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>
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
  // Each tier's evidence carries its own stacks, taken from its own processes after the window:
  // on-CPU for the back's cpu verdict (its hottest code is the lab's), off-CPU for the front's
  // network wait.
  const auto& back_sources = t2["diagnosis"]["sources"];
  ASSERT_TRUE(back_sources.contains("on-CPU stacks (perf)")) << back_sources.dump(1);
  EXPECT_TRUE(back_sources["on-CPU stacks (perf)"]["available"].get<bool>())
      << back_sources["on-CPU stacks (perf)"].dump();
  const std::string back_evidence = t2["diagnosis"]["bottlenecks"][0]["evidence"].dump();
  EXPECT_NE(back_evidence.find("hottest code on CPU: chokepoint::lab::"), std::string::npos)
      << back_evidence;
  const auto& front_sources = t1["diagnosis"]["sources"];
  ASSERT_TRUE(front_sources.contains("off-CPU stacks (eBPF)")) << front_sources.dump(1);
  EXPECT_TRUE(front_sources["off-CPU stacks (eBPF)"]["available"].get<bool>())
      << front_sources["off-CPU stacks (eBPF)"].dump();
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
  // The recording keeps each tier's stacks: the replay gives each tier the live run's stack
  // sources and the back its hottest-code line, word for word.
  for (const auto& [i, source] :
       {std::pair{f, "off-CPU stacks (eBPF)"}, std::pair{b, "on-CPU stacks (perf)"}}) {
    const auto& replayed = rj["tiers"][i]["diagnosis"]["sources"];
    ASSERT_TRUE(replayed.contains(source)) << "tier " << i + 1 << ": " << replayed.dump(1);
    EXPECT_EQ(replayed[source], j["tiers"][i]["diagnosis"]["sources"][source]);
  }
  std::string hottest;
  for (const auto& e : t2["diagnosis"]["bottlenecks"][0]["evidence"]) {
    if (e.get<std::string>().find("hottest code on CPU") != std::string::npos)
      hottest = e.get<std::string>();
  }
  const std::string replayed_evidence =
      rj["tiers"][b]["diagnosis"]["bottlenecks"][0]["evidence"].dump();
  EXPECT_NE(replayed_evidence.find(nlohmann::json(hottest).dump()), std::string::npos)
      << hottest << " not in " << replayed_evidence;
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

// diff of two tier recordings: a front on a serial back, then the same with the back's fix
// (--serial-workers 4): each tier before and after, and the limiting tier before and after.
TEST(Tiers, DiffOfTwoTierRecordingsComparesEachTierAndTheLimitingTier) {
  const test_support::TempDir dir("chokepoint-tiers-diff");
  auto record = [&](const std::string& workers, const std::string& path) {
    auto back =
        LabProcess::start({"--scenario", "serial", "--port", "0", "--serial-workers", workers});
    ASSERT_TRUE(back) << back.error().message;
    auto front =
        LabProcess::start({"--scenario", "upstream", "--port", "0", "--upstream-calls", "1",
                           "--upstream", "127.0.0.1:" + std::to_string(back->port())});
    ASSERT_TRUE(front) << front.error().message;
    const std::string url = "http://127.0.0.1:" + std::to_string(front->port()) + "/";
    auto load = Background::start("wrk", {"-t1", "-c16", "-d8s", "--timeout", "5s", url});
    ASSERT_TRUE(load) << load.error().message;
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    auto r = run_chokepoint(
        {"diagnose", "--pid", std::to_string(front->pid()), "--pid", std::to_string(back->pid()),
         "-d", "2s", "--no-probes", "--no-stacks", "--json", "--record", path},
        60);
    ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  };
  const std::string before = dir.path + "/before.chokepoint";
  const std::string after = dir.path + "/after.chokepoint";
  ASSERT_NO_FATAL_FAILURE(record("1", before));
  ASSERT_NO_FATAL_FAILURE(record("4", after));
  auto r = run_chokepoint({"diff", before, after, "--json"}, 60);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  const auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.stdout_text;
  ASSERT_EQ(j["tiers"].size(), 2u) << j.dump(1);
  EXPECT_EQ(j["tiers"][0]["before"]["verdict"], "network") << j["tiers"][0].dump(1);
  EXPECT_EQ(j["tiers"][1]["before"]["verdict"], "cpu") << j["tiers"][1].dump(1);
  // Paired by place: the restarted back is tier 2 on both sides, with its new pid.
  EXPECT_NE(j["tiers"][1]["before"]["root_pid"], j["tiers"][1]["after"]["root_pid"]);
  EXPECT_TRUE(j["tiers"][1]["diff"].contains("time_split")) << j["tiers"][1]["diff"].dump(1);
  EXPECT_EQ(j["limiting_tier"]["before"]["tier"], 2) << j["limiting_tier"].dump(1);
  EXPECT_EQ(j["limiting_tier"]["before"]["verdict"], "cpu");
  EXPECT_TRUE(j["limiting_tier"]["after"].contains("tier"));
  // The text: the limiting tier before -> after, then each tier's own diff.
  auto text = run_chokepoint({"diff", before, after}, 60);
  ASSERT_EQ(text.exit_code, 0) << text.stderr_text;
  EXPECT_NE(text.stdout_text.find("LIMITING TIER: tier 2 (pid "), std::string::npos)
      << text.stdout_text;
  EXPECT_NE(text.stdout_text.find("=== tier 2 ==="), std::string::npos) << text.stdout_text;
  // A tier recording against one of a single target compares nothing: a usage error.
  auto lab = LabProcess::start({"--scenario", "none", "--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  const std::string single = dir.path + "/single.chokepoint";
  auto one = run_chokepoint({"diagnose", "--pid", std::to_string(lab->pid()), "-d", "300ms",
                             "--no-probes", "--no-stacks", "--json", "--record", single},
                            30);
  ASSERT_EQ(one.exit_code, 0) << one.stderr_text;
  auto mixed = run_chokepoint({"diff", before, single}, 30);
  test_support::expect_cli_error(mixed, 2, "holds tiers and " + single + " does not");
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

// A cgroup with no process is not a target that exited: the error says the cgroup holds none, and
// the hint says what to do (wait for the service, or name its own cgroup: the one below that
// holds it, when there is one), with and without --tiers, before any window is watched.
TEST(Tiers, ACgroupWithNoProcessSaysSoAndNamesTheCgroupBelowThatHoldsOne) {
  monitor_test::TestCgroup cgroup("chokepoint-empty-test");
  ASSERT_TRUE(std::filesystem::exists(cgroup.path())) << "cannot create " << cgroup.path();
  for (bool tiers : {false, true}) {
    std::vector<std::string> args = {"diagnose", "--cgroup", cgroup.path(), "-d", "5s"};
    if (tiers) args.emplace_back("--tiers");
    const auto start = std::chrono::steady_clock::now();
    auto r = run_chokepoint(args, 30);
    test_support::expect_cli_error(r, 1, "error: cgroup " + cgroup.path() + " holds no process");
    EXPECT_NE(r.stderr_text.find("hint: wait until the service runs in it"), std::string::npos)
        << r.stderr_text;
    EXPECT_EQ(r.stderr_text.find("exited before it could be observed"), std::string::npos);
    // Said at once, not after the 5 s window.
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  }
  // The service runs in a cgroup below the one given (a v2 slice holds none of its own).
  const std::string child = cgroup.path() + "/service";
  ASSERT_EQ(::mkdir(child.c_str(), 0755), 0) << child;
  {
    auto sleeper = Background::start("sleep", {"30"});
    ASSERT_TRUE(sleeper) << sleeper.error().message;
    ASSERT_TRUE(static_cast<bool>(std::ofstream(child + "/cgroup.procs") << sleeper->pid()));
    auto r = run_chokepoint({"diagnose", "--cgroup", cgroup.path(), "--tiers", "-d", "5s"}, 30);
    test_support::expect_cli_error(r, 1, "holds no process");
    EXPECT_NE(r.stderr_text.find("hint: its processes are in the cgroups below it: pass --cgroup "
                                 "with one of " +
                                 child),
              std::string::npos)
        << r.stderr_text;
  }
  // The sleeper is gone: the child can be removed, then the test cgroup.
  for (int i = 0; i < 50 && ::rmdir(child.c_str()) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(std::filesystem::exists(child));
}

}  // namespace
}  // namespace chokepoint
