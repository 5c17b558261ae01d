// chokepoint profile's targets and its handling of bad input: every error ends with "error:" and
// "hint:", the right exit code (2 for usage mistakes, 1 for a target that is not there), and
// within its deadline; outputs are complete files or absent.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "support/background.h"
#include "support/cli.h"
#include "support/files.h"
#include "support/lab_process.h"
#include "support/offcpu_support.h"

namespace chokepoint::profile_test {
namespace {

using test_support::chokepoint_bin;
using test_support::expect_cli_error;
using test_support::read_file;
using test_support::run_chokepoint;
using test_support::TempDir;

using test_support::Background;
using test_support::run_to_exit;

TEST(ProfileCli, BadPidIsAnError) {
  expect_cli_error(run_chokepoint({"profile", "--pid", "abc"}), 2, "");
  expect_cli_error(run_chokepoint({"profile", "--pid", "-3"}), 2, "is not a process id");
  // A well-formed pid that does not exist is a runtime error, as in diagnose.
  expect_cli_error(run_chokepoint({"profile", "--pid", "999999999"}), 1, "no process with pid");
}

TEST(ProfileCli, BadFrequencyIsAUsageError) {
  const std::string self = std::to_string(getpid());
  expect_cli_error(run_chokepoint({"profile", "--pid", self, "--frequency", "0"}), 2,
                   "out of range");
  expect_cli_error(run_chokepoint({"profile", "--pid", self, "--frequency", "10000000"}), 2,
                   "perf_event_max_sample_rate");
  expect_cli_error(run_chokepoint({"profile", "--pid", self, "--frequency", "fast"}), 2, "");
}

TEST(ProfileCli, UnknownOutputExtensionIsAUsageError) {
  TempDir d{"chokepoint-profile-cli"};
  auto r = run_chokepoint({"profile", "--pid", std::to_string(getpid()), "-o", d.path + "/x.png"});
  expect_cli_error(r, 2, "unknown output format");
  EXPECT_NE(r.stderr_text.find(".folded"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(d.path + "/x.png"));
}

TEST(ProfileCli, OutputInAMissingDirectoryFailsBeforeSampling) {
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_chokepoint({"profile", "--pid", std::to_string(getpid()), "--duration", "20s", "-o",
                           "/nonexistent-dir/x.svg"});
  expect_cli_error(r, 1, "does not exist");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST(ProfileCli, OtherUsageErrors) {
  expect_cli_error(run_chokepoint({"profile", "--pid", "1", "--name", "x"}), 2, "one target");
  expect_cli_error(run_chokepoint({"profile", "--children"}), 2, "--children needs --pid");
  expect_cli_error(run_chokepoint({"profile", "--pid", "1", "--duration", "0"}), 2, "--duration");
  expect_cli_error(run_chokepoint({"profile", "--pid", "1", "--top", "0"}), 2, "--top");
  expect_cli_error(run_chokepoint({"profile", "--name", "no-such-process-name-here"}), 1,
                   "no running process is named");
  expect_cli_error(run_chokepoint({"profile", "--", "/nonexistent/program"}), 1, "cannot start");
}

// A command target: profiled from its start, ended at the end of the window, and its busy loop
// is in the table.
TEST(ProfileCli, CommandTarget) {
  TempDir d{"chokepoint-profile-cli"};
  const std::string folded = d.path + "/sh.folded";
  auto r = run_chokepoint({"profile", "--duration", "1500ms", "-o", folded, "--top", "3", "--",
                           "sh", "-c", "while :; do :; done"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_NE(r.stdout_text.find("Hottest functions by self"), std::string::npos) << r.stdout_text;
  std::string text = read_file(folded);
  EXPECT_NE(text.find("sh ("), std::string::npos) << text.substr(0, 500);
  // No temporary file is left next to the output.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(d.path)) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);
}

// A target that exits mid-run: what was collected is written, and the exit code says so.
TEST(ProfileCli, TargetExitsMidRun) {
  TempDir d{"chokepoint-profile-cli"};
  // 3 s: still there when a slow start (the ASan build: 0.7-2 s before main()) opens it.
  auto busy = Background::start("timeout", {"3", "sh", "-c", "while :; do :; done"});
  ASSERT_TRUE(busy) << busy.error().message;
  // timeout forks sh; profile the busy child with --children.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const std::string folded = d.path + "/gone.folded";
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_chokepoint({"profile", "--pid", std::to_string(busy->pid()), "--children",
                           "--duration", "20s", "-o", folded});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(9));
  expect_cli_error(r, 1, "the target exited");
  EXPECT_NE(r.stderr_text.find("note: the target exited after"), std::string::npos)
      << r.stderr_text;
  EXPECT_FALSE(read_file(folded).empty());
}

// --off-cpu on the lab's lock scenario: the time blocked is under the function that takes the
// lock (LabStore::update), in nanoseconds. Needs root and BPF: skips with the reason when they are
// absent, and fails when they are present and profile --off-cpu does not work.
TEST(ProfileCli, OffCpuNamesTheLockTaker) {
  if (std::string why = test_support::offcpu_unavailable(); !why.empty()) GTEST_SKIP() << why;
  auto lab = test_support::LabProcess::start({"--scenario", "lock", "--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  auto load =
      Background::start("wrk", {"-t1", "-c16", "-d20s", "-s",
                                std::string(CHOKEPOINT_SOURCE_DIR) + "/bench/lab/keys_random.lua",
                                "http://127.0.0.1:" + std::to_string(lab->port()) + "/"});
  ASSERT_TRUE(load) << load.error().message;
  std::this_thread::sleep_for(std::chrono::seconds(1));
  TempDir d{"chokepoint-profile-cli"};
  const std::string folded = d.path + "/lock.folded";
  auto r = run_chokepoint({"profile", "--off-cpu", "--pid", std::to_string(lab->pid()),
                           "--duration", "2s", "-o", folded, "--top", "5"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  // "N blocks in K distinct stacks", or "an estimated N blocks (M traced, the rest sampled out)
  // in K distinct stacks" when they came faster than the budget.
  EXPECT_TRUE(
      std::regex_search(r.stderr_text, std::regex(R"(blocks( \([^)]*\))? in \d+ distinct stacks)")))
      << r.stderr_text;
  EXPECT_NE(r.stdout_text.find(" ms "), std::string::npos) << r.stdout_text;  // time, not samples
  // Blocked time under LabStore::update: the lock's waiters.
  std::uint64_t total = 0, under_update = 0;
  std::istringstream in(read_file(folded));
  std::string line;
  while (std::getline(in, line)) {
    auto sp = line.rfind(' ');
    std::uint64_t v = std::stoull(line.substr(sp + 1));
    total += v;
    if (line.find("LabStore::update") != std::string::npos) under_update += v;
  }
  ASSERT_GT(total, 0u);
  EXPECT_GT(under_update, 0u) << "no blocked time under LabStore::update";
}

// Without privileges (setpriv to nobody): another user's process is refused with the paranoid
// level and what to do; an own command is profiled with user frames only, and a note says why.
TEST(ProfileCli, UnprivilegedUser) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch to an unprivileged user";
  if (access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "setpriv (util-linux) is missing";
  std::ifstream paranoid_file("/proc/sys/kernel/perf_event_paranoid");
  int paranoid = 0;
  paranoid_file >> paranoid;
  if (paranoid < 2) GTEST_SKIP() << "kernel.perf_event_paranoid is " << paranoid;
  const std::vector<std::string> as_nobody = {"--reuid=65534", "--regid=65534", "--clear-groups",
                                              chokepoint_bin()};
  auto with = [&](std::vector<std::string> args) {
    std::vector<std::string> all = as_nobody;
    all.insert(all.end(), args.begin(), args.end());
    auto r = run_to_exit(all, "/usr/bin/setpriv", std::chrono::seconds(30));
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : test_support::ExitResult{};
  };
  auto denied = with({"profile", "--pid", "1", "--duration", "200ms"});
  expect_cli_error(denied, 1, "perf_event_paranoid is " + std::to_string(paranoid));
  if (paranoid > 2) return;  // nothing may be profiled unprivileged: the error is all there is
  auto own = with(
      {"profile", "--duration", "500ms", "--top", "1", "--", "sh", "-c", "while :; do :; done"});
  EXPECT_EQ(own.exit_code, 0) << own.stderr_text;
  EXPECT_NE(own.stderr_text.find("note: kernel frames are left out"), std::string::npos)
      << own.stderr_text;
}

TEST(ProfileCli, HelpListsTheOptions) {
  auto r = run_chokepoint({"profile", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* opt :
       {"--pid", "--cgroup", "--duration", "--frequency", "--output", "--top", "--off-cpu"}) {
    EXPECT_NE(r.stdout_text.find(opt), std::string::npos) << opt;
  }
}

}  // namespace
}  // namespace chokepoint::profile_test
