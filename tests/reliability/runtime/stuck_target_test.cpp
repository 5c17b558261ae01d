// Regression (issue 18 item 4): targets that cannot run read as what holds them, not as a
// resource bottleneck. A vfork parent read "disk (io) 97%" with "syscall_58"; a v1-frozen busy
// loop "memory (paging) 100%"; a SIGSTOPped process "none" with no word. Real processes, real
// signals and real freezers.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/background.h"
#include "support/cli.h"
#include "support/files.h"
#include "support/offcpu_support.h"

namespace chokepoint::reliability_test {
namespace {

using test_support::Background;
using test_support::run_chokepoint;

nlohmann::json diagnose_json(pid_t pid, const std::string& duration = "1s") {
  auto r = run_chokepoint(
      {"diagnose", "--pid", std::to_string(pid), "--duration", duration, "--no-stacks", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.stdout_text;
  return j;
}

// The "held" finding of this state, or null.
nlohmann::json held_finding(const nlohmann::json& j, const std::string& state) {
  for (const auto& f : j["findings"]) {
    if (f["resource"] == "held" && f["message"].get<std::string>().rfind(state + ":", 0) == 0)
      return f;
  }
  return nullptr;
}

std::string dump(const nlohmann::json& j) {
  return j.dump(2).substr(0, 4000);
}

TEST(StuckTarget, StoppedProcessIsNamedStopped) {
  auto sleeper = Background::start("sleep", {"60"});
  ASSERT_TRUE(sleeper) << sleeper.error().message;
  ASSERT_EQ(kill(sleeper->pid(), SIGSTOP), 0);
  auto j = diagnose_json(sleeper->pid());
  kill(sleeper->pid(), SIGCONT);
  EXPECT_EQ(j["verdict"], "none") << dump(j);
  auto f = held_finding(j, "stopped");
  ASSERT_FALSE(f.is_null()) << dump(j);
  EXPECT_NE(f["hint"].get<std::string>().find("kill -CONT " + std::to_string(sleeper->pid())),
            std::string::npos)
      << dump(f);
}

// A busy loop frozen by a freezer: state D outside a syscall (v1) or S in get_signal (v2).
void expect_frozen_is_named(const std::string& cgroup_dir, const std::string& freeze_file,
                            const std::string& freeze, const std::string& thaw) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create a cgroup";
  if (!std::filesystem::exists(std::filesystem::path(cgroup_dir).parent_path() / "cgroup.procs"))
    GTEST_SKIP() << "no cgroup hierarchy at " << cgroup_dir;
  std::filesystem::remove(cgroup_dir);
  ASSERT_EQ(mkdir(cgroup_dir.c_str(), 0755), 0) << cgroup_dir;
  auto busy = Background::start("sh", {"-c", "while :; do :; done"});
  ASSERT_TRUE(busy) << busy.error().message;
  std::ofstream(cgroup_dir + "/cgroup.procs") << busy->pid() << "\n";
  std::ofstream(cgroup_dir + "/" + freeze_file) << freeze << "\n";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto j = diagnose_json(busy->pid());
  std::ofstream(cgroup_dir + "/" + freeze_file) << thaw << "\n";
  kill(busy->pid(), SIGKILL);
  (void)busy->wait(5000);
  std::filesystem::remove(cgroup_dir);
  EXPECT_EQ(j["verdict"], "none") << dump(j);
  EXPECT_FALSE(held_finding(j, "frozen").is_null()) << dump(j);
}

TEST(StuckTarget, FrozenByV1FreezerIsNamedFrozen) {
  expect_frozen_is_named("/sys/fs/cgroup/freezer/chokepoint-reliability-test", "freezer.state",
                         "FROZEN", "THAWED");
}

TEST(StuckTarget, FrozenByV2FreezerIsNamedFrozen) {
  std::string base = std::filesystem::exists("/sys/fs/cgroup/unified/cgroup.procs")
                         ? "/sys/fs/cgroup/unified"
                         : "/sys/fs/cgroup";
  if (!std::filesystem::exists(base + "/cgroup.freeze") &&
      !std::filesystem::exists(base + "/cgroup.subtree_control"))
    GTEST_SKIP() << "no cgroup v2 hierarchy";
  expect_frozen_is_named(base + "/chokepoint-reliability-test", "cgroup.freeze", "1", "0");
}

// top's frames come from one sampler that keeps each process's cgroup between looks (read again
// every 10 s): a freeze of that cgroup during the session must still show within a frame or two,
// as the held (idle) share of the busy loop.
TEST(StuckTarget, FrozenDuringATopSessionIsSeen) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create a cgroup";
  const std::string base = "/sys/fs/cgroup/unified";
  if (!std::filesystem::exists(base + "/cgroup.subtree_control"))
    GTEST_SKIP() << "no cgroup v2 hierarchy at " << base;
  const std::string dir = base + "/chokepoint-reliability-top-test";
  std::filesystem::remove(dir);
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << dir;
  auto busy = Background::start("sh", {"-c", "while :; do :; done"});
  ASSERT_TRUE(busy) << busy.error().message;
  std::ofstream(dir + "/cgroup.procs") << busy->pid() << "\n";
  std::thread freezer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    std::ofstream(dir + "/cgroup.freeze") << "1\n";
  });
  auto r = run_chokepoint({"top", "--json", "--pid", std::to_string(busy->pid()), "--interval",
                           "1s", "--iterations", "4"});
  freezer.join();
  std::ofstream(dir + "/cgroup.freeze") << "0\n";
  kill(busy->pid(), SIGKILL);
  (void)busy->wait(5000);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::filesystem::remove(dir);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  std::vector<nlohmann::json> frames;
  std::istringstream lines(r.stdout_text);
  for (std::string line; std::getline(lines, line);) frames.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(frames.size(), 4u) << r.stdout_text;
  const auto busy_share = [](const nlohmann::json& f) {
    return f["time_split"]["on_cpu"].get<double>() + f["time_split"]["cpu_wait"].get<double>();
  };
  EXPECT_GT(busy_share(frames[0]), 0.9) << frames[0].dump();
  EXPECT_GT(frames[3]["time_split"]["idle"].get<double>(), 0.9) << frames[3].dump();
}

TEST(StuckTarget, VforkParentIsNamedAndItsSyscallToo) {
  auto parent = Background::start(RELIABILITY_TARGET, {"vfork", "30"});
  ASSERT_TRUE(parent) << parent.error().message;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto j = diagnose_json(parent->pid());
  EXPECT_EQ(j["verdict"], "none") << dump(j);
  auto f = held_finding(j, "vfork");
  ASSERT_FALSE(f.is_null()) << dump(j);
  // The parent's wait names its syscall, never a number.
  const std::string text = j.dump();
  EXPECT_EQ(text.find("syscall_"), std::string::npos) << dump(j);
  EXPECT_NE(text.find("in vfork"), std::string::npos) << dump(j);
}

// Regression (issue 18 item 4): profile --off-cpu showed nothing for a thread blocked for the
// whole window (the tracer counts a block at its wakeup, and this one never came).
TEST(StuckTarget, OffCpuProfileShowsAThreadBlockedForTheWholeWindow) {
  if (std::string why = test_support::offcpu_unavailable(); !why.empty()) GTEST_SKIP() << why;
  auto sleeper = Background::start("sleep", {"60"});
  ASSERT_TRUE(sleeper) << sleeper.error().message;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  test_support::TempDir dir("chokepoint-offcpu-whole-window");
  const std::string out = dir.path + "/offcpu.folded";
  auto r = run_chokepoint({"profile", "--off-cpu", "--pid", std::to_string(sleeper->pid()),
                           "--duration", "1s", "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  const std::string folded = test_support::read_file(out);
  const std::string stack =
      "sleep (" + std::to_string(sleeper->pid()) + ");[in clock_nanosleep for the whole window]";
  const auto at = folded.find(stack);
  ASSERT_NE(at, std::string::npos) << folded << r.stderr_text;
  // Weighed by the whole window (about 1 s, in ns).
  const std::string line = folded.substr(at, folded.find('\n', at) - at);
  const double ns = std::stod(line.substr(line.rfind(' ') + 1));
  EXPECT_GE(ns, 0.8e9) << line;
  EXPECT_NE(r.stderr_text.find("blocked for the whole window"), std::string::npos) << r.stderr_text;
}

}  // namespace
}  // namespace chokepoint::reliability_test
