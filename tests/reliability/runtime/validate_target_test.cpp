// Regression (issue 18 item 6, target half): a target is checked before chokepoint changes
// anything. `--pid 999999` and `--cgroup /nonexistent` used to switch delay accounting on and
// print "watching pid 999999" before failing; any directory holding a file named cgroup.procs
// passed as a cgroup; a kernel thread was watched with no word.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <string>

#include "support/cli.h"
#include "support/files.h"

namespace chokepoint::reliability_test {
namespace {

using test_support::expect_cli_error;
using test_support::run_chokepoint;

TEST(ValidateTarget, MissingPidFailsBeforeAnythingChanges) {
  auto r = run_chokepoint({"diagnose", "--pid", "999999", "--duration", "500ms"});
  expect_cli_error(r, 1, "no process with pid 999999");
  EXPECT_EQ(r.stderr_text.find("watching"), std::string::npos) << r.stderr_text;
  EXPECT_EQ(r.stderr_text.find("delay accounting"), std::string::npos) << r.stderr_text;
}

TEST(ValidateTarget, MissingCgroupFailsBeforeAnythingChanges) {
  auto r = run_chokepoint({"diagnose", "--cgroup", "/nonexistent", "--duration", "500ms"});
  expect_cli_error(r, 1, "not a cgroup");
  EXPECT_EQ(r.stderr_text.find("watching"), std::string::npos) << r.stderr_text;
  EXPECT_EQ(r.stderr_text.find("delay accounting"), std::string::npos) << r.stderr_text;
}

TEST(ValidateTarget, ADirectoryWithACgroupProcsFileIsNoCgroup) {
  test_support::TempDir dir("chokepoint-fake-cgroup");
  std::ofstream(dir.path + "/cgroup.procs") << getpid() << "\n";
  auto r = run_chokepoint({"diagnose", "--cgroup", dir.path, "--duration", "500ms"});
  expect_cli_error(r, 1, "not on a cgroup filesystem");
  EXPECT_EQ(r.stderr_text.find("watching"), std::string::npos) << r.stderr_text;
}

TEST(ValidateTarget, KernelThreadIsNamed) {
  auto r = run_chokepoint({"diagnose", "--pid", "2", "--duration", "300ms", "--no-stacks"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("pid 2 is a kernel thread"), std::string::npos) << r.stderr_text;
}

}  // namespace
}  // namespace chokepoint::reliability_test
