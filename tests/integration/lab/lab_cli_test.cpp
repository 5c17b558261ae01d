// Command-line contract: usage errors exit 2, runtime failures exit 1, both with error and hint.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/lab_process.h"

namespace chokepoint::lab_test {
namespace {

using test_support::default_lab_binary;
using test_support::LabProcess;
using test_support::run_to_exit;

TEST(LabCli, BadFlagsExitTwoWithErrorAndHint) {
  const std::vector<std::vector<std::string>> bad = {
      {"--scenario", "nope"},
      {"--model", "fibers"},
      {"--workers", "0"},
      {"--port", "http"},
      {"--port", "70000"},
      {"--bind", "not-an-address"},
      {"--scenario", "upstream"},
      {"--scenario", "upstream", "--upstream", "127.0.0.1"},
      {"--scenario", "disk", "--commit", "sometimes"},
      {"--scenario", "proxy"},
      {"--scenario", "proxy", "--upstream", "127.0.0.1:9", "--model", "threads"},
      {"--scenario", "proxy", "--upstream", "127.0.0.1:9", "--cache", "redis", "--cache-server",
       "127.0.0.1:6379"},
      {"--scenario", "proxy", "--upstream", "127.0.0.1:9", "--upstream-pool", "0"},
      {"--no-such-flag"},
  };
  for (const auto& args : bad) {
    SCOPED_TRACE(args[0] + " " + (args.size() > 1 ? args[1] : ""));
    auto r = run_to_exit(args, default_lab_binary());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->exit_code, 2);
    EXPECT_EQ(r->stderr_text.rfind("error: ", 0), 0u) << r->stderr_text;
    EXPECT_NE(r->stderr_text.find("\nhint: "), std::string::npos) << r->stderr_text;
    EXPECT_EQ(r->stdout_text, "");
  }
}

// --help names the choices ("--scenario none|cpu|...") and a bad value lists them, rather than
// CLI11's "{cpu->1,...} OR {1,...}" maps.
TEST(LabCli, ChoicesAreShownByName) {
  auto help = run_to_exit({"--help"}, default_lab_binary());
  ASSERT_TRUE(help) << help.error().message;
  EXPECT_EQ(help->exit_code, 0);
  EXPECT_NE(help->stdout_text.find("--scenario none|cpu|serial|lock|disk|log|leak|paging|"
                                   "upstream|bandwidth|backlog"),
            std::string::npos)
      << help->stdout_text;
  EXPECT_NE(help->stdout_text.find("--commit per-request|batch|async"), std::string::npos);
  EXPECT_NE(help->stdout_text.find("Examples:"), std::string::npos);
  EXPECT_EQ(help->stdout_text.find("->"), std::string::npos) << help->stdout_text;
  auto bad = run_to_exit({"--log", "loud"}, default_lab_binary());
  ASSERT_TRUE(bad) << bad.error().message;
  EXPECT_EQ(bad->exit_code, 2);
  EXPECT_NE(bad->stderr_text.find("error: --log: 'loud' is not one of sync|async|off"),
            std::string::npos)
      << bad->stderr_text;
}

TEST(LabCli, PortInUseExitsOne) {
  auto first = LabProcess::start({"--scenario", "none", "--port", "0"});
  ASSERT_TRUE(first) << first.error().message;
  auto r = run_to_exit({"--port", std::to_string(first->port())}, default_lab_binary());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_NE(r->stderr_text.find("error: cannot listen on 127.0.0.1:"), std::string::npos)
      << r->stderr_text;
  EXPECT_NE(r->stderr_text.find("hint: "), std::string::npos);
  EXPECT_EQ(*first->stop(), 0);
}

TEST(LabCli, UncreatableDataDirExitsOne) {
  auto r =
      run_to_exit({"--scenario", "disk", "--data-dir", "/proc/no/such/dir"}, default_lab_binary());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_EQ(r->stderr_text.rfind("error: cannot create data dir", 0), 0u) << r->stderr_text;
}

TEST(LabCli, HelpListsScenariosAndExitsZero) {
  auto r = run_to_exit({"--help"}, default_lab_binary());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_NE(r->stdout_text.find("--scenario"), std::string::npos);
  EXPECT_NE(r->stdout_text.find("--upstream-concurrent"), std::string::npos);
}

}  // namespace
}  // namespace chokepoint::lab_test
