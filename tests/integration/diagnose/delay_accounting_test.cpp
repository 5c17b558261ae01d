// kernel.task_delayacct is one setting for the whole machine: this test runs alone (SERIAL), so
// that the setting it reads is the one its own runs left.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/background.h"
#include "support/cli.h"
#include "support/lab_process.h"

namespace chokepoint::diagnose_test {
namespace {

using test_support::chokepoint_bin;
using test_support::run_chokepoint;

using test_support::Background;
using test_support::LabProcess;
using test_support::run_to_exit;

// As root, delay accounting is switched on for the run and restored afterwards; a launched command
// starts after the switch, so it carries the data.
TEST(DiagnoseDelayAccounting, SwitchedOnAndRestored) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to change kernel.task_delayacct";
  auto read_setting = [] {
    std::ifstream in("/proc/sys/kernel/task_delayacct");
    int v = -1;
    in >> v;
    return v;
  };
  int before = read_setting();
  if (before < 0) GTEST_SKIP() << "this kernel has no kernel.task_delayacct";
  auto r = run_chokepoint({"diagnose", "--duration", "500ms", "--json", "--", "sleep", "5"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(read_setting(), before);
  auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_TRUE(j["sources"]["delay accounting"]["available"].get<bool>());
  if (before == 0) {
    EXPECT_NE(r.stderr_text.find("switched delay accounting on"), std::string::npos);
  }
}

int read_delayacct() {
  std::ifstream in("/proc/sys/kernel/task_delayacct");
  int v = -1;
  in >> v;
  return v;
}

// Regression: two overlapping runs. The first run switches delay accounting on and ends while the
// second still runs: it must not switch it off under the second; the last one out restores it.
TEST(DiagnoseDelayAccounting, OverlappingRunsRestoreOnlyWhenTheLastEnds) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to change kernel.task_delayacct";
  const int before = read_delayacct();
  if (before < 0) GTEST_SKIP() << "this kernel has no kernel.task_delayacct";
  if (before != 0) GTEST_SKIP() << "kernel.task_delayacct is already 1: nothing is switched";
  // The first run's window is long enough for the second to start beside it even when starting
  // is slow (the ASan build took 0.7-2 s before main() here); the test waits for the first to
  // switch the setting on rather than for a fixed time.
  auto first = Background::start(chokepoint_bin(),
                                 {"diagnose", "--duration", "4s", "--json", "--", "sleep", "15"});
  ASSERT_TRUE(first) << first.error().message;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (read_delayacct() != 1 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(read_delayacct(), 1);
  auto second = Background::start(chokepoint_bin(),
                                  {"diagnose", "--duration", "7s", "--json", "--", "sleep", "15"});
  ASSERT_TRUE(second) << second.error().message;
  auto first_done = first->wait(20'000);
  ASSERT_TRUE(first_done) << first_done.error().message;
  EXPECT_EQ(*first_done, 0);
  EXPECT_EQ(read_delayacct(), 1) << "the first run switched it off under the second";
  auto second_done = second->wait(20'000);
  ASSERT_TRUE(second_done) << second_done.error().message;
  EXPECT_EQ(*second_done, 0);
  EXPECT_EQ(read_delayacct(), 0) << "the last run out did not restore it";
}

}  // namespace
}  // namespace chokepoint::diagnose_test
