// Regression (issue 18 item 3): `kill -9` of a running chokepoint leaves the machine as it was.
// Before: kernel.task_delayacct stayed 1 with its marker file, and a `-- CMD` child was orphaned
// to pid 1. Kills at random points (start-up, switching delay accounting, launching, the window,
// writing outputs), at least 50 times, then checks the sysctl, the children and temporary files.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "support/background.h"
#include "support/cli.h"
#include "support/files.h"

namespace chokepoint::reliability_test {
namespace {

using test_support::Background;
using test_support::chokepoint_bin;

int read_delayacct() {
  std::ifstream in("/proc/sys/kernel/task_delayacct");
  int v = -1;
  in >> v;
  return v;
}

// Pids of processes whose command line contains `needle`.
std::set<int> processes_with(const std::string& needle) {
  std::set<int> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (char& c : cmdline) c = c == '\0' ? ' ' : c;
    if (cmdline.find(needle) != std::string::npos) out.insert(std::stoi(name));
  }
  return out;
}

// Entries of `dir` whose names start with `prefix`.
std::set<std::string> entries(const std::string& dir, const std::string& prefix) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename();
    if (name.rfind(prefix, 0) == 0) out.insert(name);
  }
  return out;
}

// kernel.task_delayacct and the marker when no chokepoint run (or guard) is alive: when the lock
// file can be locked exclusively. Other chokepoint runs on the machine (another build's tests) may
// hold it; then there is nothing to check yet.
struct Quiet {
  int setting = -1;
  bool marker = false;
};
std::optional<Quiet> quiet_state(const std::string& dir) {
  const std::string lock = dir + "/chokepoint-delayacct.lock";
  int fd = open(lock.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return Quiet{read_delayacct(), std::filesystem::exists(dir + "/chokepoint-delayacct.switched")};
  std::optional<Quiet> out;
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
    out = Quiet{read_delayacct(), std::filesystem::exists(dir + "/chokepoint-delayacct.switched")};
  }
  close(fd);
  return out;
}

// Waits up to 3 s for `done`; the guard and the kernel act right after the kill, not at once.
template <class F>
bool eventually(F done, int timeout_ms = 3000) {
  for (int i = 0; i < timeout_ms / 20; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

TEST(Sigkill, AtRandomPointsLeavesNothingBehind) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: delay accounting is switched only as root";
  ASSERT_GE(read_delayacct(), 0) << "this kernel has no kernel.task_delayacct";
  const std::string dir = access("/run", W_OK) == 0 ? "/run" : "/tmp";
  std::optional<Quiet> start;
  for (int i = 0; i < 3000 && !start; ++i) {
    start = quiet_state(dir);
    if (!start) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(start) << "other chokepoint runs held the delay accounting lock for 30 s";
  ASSERT_FALSE(start->marker) << "a marker from before the test, with no chokepoint running";
  const int before = start->setting;
  // As the machine was when nothing ran: the setting the test started with, and no marker.
  auto restored = [&] {
    auto q = quiet_state(dir);
    return q && q->setting == before && !q->marker;
  };
  test_support::TempDir out_dir("chokepoint-sigkill-test");
  const auto run_files_before = entries("/run", "chokepoint-delayacct.lock");
  const auto tmp_files_before = entries("/tmp", "chokepoint-delayacct");

  const unsigned seed = std::random_device{}();
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> delay_ms(0, 600);
  // 50 runs in the release build, 20 under the sanitizers (make asan-test), which reach every
  // kind of run (four diagnose runs to each profile run) at the same spread of kill times.
#if defined(__SANITIZE_ADDRESS__)
  constexpr int kRuns = 20;
#else
  constexpr int kRuns = 50;
#endif
  for (int i = 0; i < kRuns; ++i) {
    SCOPED_TRACE("seed " + std::to_string(seed) + ", run " + std::to_string(i));
    // A unique command line for the launched child, to find it afterwards.
    const std::string child_arg = "1000." + std::to_string(10000 + i);
    std::vector<std::string> args;
    if (i % 5 == 4) {
      // profile writes an output at the end: killed while writing, it must leave no temporary.
      args = {"profile",
              "--duration",
              "500ms",
              "-o",
              out_dir.path + "/p" + std::to_string(i) + ".folded",
              "--",
              "sleep",
              child_arg};
    } else {
      args = {"diagnose", "--duration", "2s", "--no-stacks", "--", "sleep", child_arg};
    }
    auto run = Background::start(chokepoint_bin(), args);
    ASSERT_TRUE(run) << run.error().message;
    const int wait_ms = delay_ms(rng);
    std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
    kill(run->pid(), SIGKILL);
    auto code = run->wait(10'000);
    ASSERT_TRUE(code) << code.error().message;
    EXPECT_TRUE(eventually([&] { return processes_with("sleep " + child_arg).empty(); }))
        << "the launched command outlived chokepoint (killed after " << wait_ms << " ms)";
    EXPECT_TRUE(eventually(restored, 15000))
        << "kernel.task_delayacct is " << read_delayacct() << " and the marker "
        << (std::filesystem::exists(dir + "/chokepoint-delayacct.switched") ? "stayed" : "is gone")
        << " (killed after " << wait_ms << " ms)";
    for (const auto& name : entries(out_dir.path, "p")) {
      EXPECT_EQ(name.find(".tmp"), std::string::npos)
          << "a temporary output was left: " << name << " (killed after " << wait_ms << " ms)";
    }
    if (HasFailure()) break;
  }
  EXPECT_EQ(entries("/run", "chokepoint-delayacct.lock"), run_files_before);
  EXPECT_EQ(entries("/tmp", "chokepoint-delayacct"), tmp_files_before);
}

// A launched command's own children end with the run too: the command runs in a process group of
// its own, which chokepoint ends at exit (before, only the command itself was signalled).
TEST(LaunchedCommand, ItsProcessGroupEndsWithTheRun) {
  const std::string marker = "300.4242";
  auto r = test_support::run_chokepoint({"diagnose", "--duration", "300ms", "--no-stacks", "--",
                                         "sh", "-c", "sleep " + marker + " & sleep " + marker});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_TRUE(eventually([&] { return processes_with("sleep " + marker).empty(); }))
      << "a child of the launched command outlived the run";
}

}  // namespace
}  // namespace chokepoint::reliability_test
