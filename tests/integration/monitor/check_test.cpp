// chokepoint check, the Nagios plugin mode, on the real lab under real load (wrk): the exit code
// follows the plugin API (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN), stdout is one status line with
// perfdata for every state share, and bad input is UNKNOWN with an error and a hint.
#include <gtest/gtest.h>

#include <optional>
#include <regex>
#include <string>
#include <thread>

#include "support/background.h"
#include "support/cli.h"
#include "support/lab_process.h"

namespace chokepoint::monitor_test {
namespace {

using test_support::Background;
using test_support::LabProcess;
using test_support::run_chokepoint;

constexpr const char* kShares[] = {"on_cpu", "cpu_wait", "disk", "network", "lock",
                                   "memory", "sleep",    "idle", "busy"};

// One line, the plugin's form, with every share in the perfdata.
void expect_plugin_line(const std::string& out, const std::string& state) {
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;
  EXPECT_EQ(out.rfind("CHOKEPOINT " + state + " - ", 0), 0u) << out;
  const auto bar = out.find(" | ");
  ASSERT_NE(bar, std::string::npos) << out;
  const std::string perf = out.substr(bar + 3);
  for (const char* s : kShares) {
    EXPECT_TRUE(std::regex_search(
        perf, std::regex(std::string("(^| )") + s + "=[0-9]\\.[0-9]{4};[0-9.:]*;[0-9.:]*;0;1")))
        << s << " missing in: " << perf;
  }
}

struct LoadedLab {
  LabProcess lab;
  Background load;
};

std::optional<LoadedLab> loaded_lab(const std::string& scenario) {
  auto lab = LabProcess::start({"--scenario", scenario, "--port", "0"});
  EXPECT_TRUE(lab) << lab.error().message;
  if (!lab) return std::nullopt;
  auto load = Background::start("wrk", {"-t1", "-c16", "-d20s", "--timeout", "10s",
                                        "http://127.0.0.1:" + std::to_string(lab->port()) + "/"});
  EXPECT_TRUE(load) << load.error().message;
  if (!load) return std::nullopt;
  std::this_thread::sleep_for(std::chrono::seconds(1));
  return LoadedLab{std::move(*lab), std::move(*load)};
}

TEST(Check, CpuBoundLabIsOkOnDiskAndWarnsOnCpu) {
  auto l = loaded_lab("cpu");
  ASSERT_TRUE(l);
  const std::string target = "pid:" + std::to_string(l->lab.pid());
  // CPU-bound: nearly all busy time is on_cpu or, on a loaded machine, cpu_wait; one of the two
  // holds at least half of it.
  auto warned = run_chokepoint({"check", target, "--warn", "on_cpu>0.2,cpu_wait>0.2", "--crit",
                                "disk>0.5", "--duration", "3s"});
  EXPECT_EQ(warned.exit_code, 1) << warned.stdout_text << warned.stderr_text;
  expect_plugin_line(warned.stdout_text, "WARNING");
  EXPECT_NE(warned.stdout_text.find(";0.2;;0;1 cpu_wait="), std::string::npos)
      << warned.stdout_text;
  EXPECT_NE(warned.stdout_text.find(";;0.5;0;1 network="), std::string::npos) << warned.stdout_text;
  auto ok = run_chokepoint({"check", target, "--crit", "disk>0.5", "--duration", "2s"});
  EXPECT_EQ(ok.exit_code, 0) << ok.stdout_text << ok.stderr_text;
  expect_plugin_line(ok.stdout_text, "OK");
  EXPECT_NE(ok.stdout_text.find("verdict cpu"), std::string::npos) << ok.stdout_text;
}

// The disk scenario fsyncs every request. Where the two cores saturate before the storage does,
// disk stays a large part of busy time (diagnose's verdict test, kRunnerUpShare): 0.2 holds either
// way.
TEST(Check, DiskBoundLabIsCritical) {
  auto l = loaded_lab("disk");
  ASSERT_TRUE(l);
  auto r = run_chokepoint({"check", "pid:" + std::to_string(l->lab.pid()), "--warn", "lock>0.5",
                           "--crit", "disk>0.2", "--duration", "3s"});
  EXPECT_EQ(r.exit_code, 2) << r.stdout_text << r.stderr_text;
  expect_plugin_line(r.stdout_text, "CRITICAL");
  EXPECT_NE(r.stdout_text.find("(crit disk>0.2)"), std::string::npos) << r.stdout_text;
}

// Bad input: UNKNOWN (3) at once, the reason on stdout for the monitoring system and an error
// with a hint on stderr for a person; no window is run.
TEST(Check, BadInputIsUnknown) {
  const auto start = std::chrono::steady_clock::now();
  struct Bad {
    std::vector<std::string> args;
    std::string fragment;
  };
  const std::vector<Bad> cases = {
      {{"check", "host", "--warn", "disk>>0.3"}, "--warn: threshold 'disk>>0.3' is not valid"},
      {{"check", "host", "--crit", "disk>1.5"}, "above 1"},
      {{"check", "host", "--crit", "dsk>0.5"}, "'dsk' is not a state"},
      {{"check", "host", "--warn", "disk>0.3;lock>0.1"}, "unexpected ';'"},
      {{"check", "host", "--crit", ""}, "give --warn, --crit or both"},
      {{"check", "host"}, "give --warn, --crit or both"},
      {{"check", "pid:abc", "--crit", "disk>0.5"}, "not a positive number"},
      {{"check", "pid:999999999", "--crit", "disk>0.5"}, "no process"},
      {{"check", "service:chokepoint-no-such-unit", "--crit", "disk>0.5"}, "not running"},
      {{"check", "host", "--crit", "disk>0.5", "--duration", "0"}, "--duration"},
      {{"check", "--crit", "disk>0.5"}, "target is required"},
      {{"check", "host", "--crit", "disk>0.5", "--bogus"}, "--bogus"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args[1] + " " + (c.args.size() > 3 ? c.args[3] : ""));
    auto r = run_chokepoint(c.args);
    EXPECT_EQ(r.exit_code, 3) << r.stdout_text << r.stderr_text;
    EXPECT_EQ(r.stdout_text.rfind("CHOKEPOINT UNKNOWN - ", 0), 0u) << r.stdout_text;
    EXPECT_EQ(r.stdout_text.find('\n'), r.stdout_text.size() - 1) << r.stdout_text;
    EXPECT_NE(r.stdout_text.find(c.fragment), std::string::npos) << r.stdout_text;
    EXPECT_NE(r.stderr_text.find("error: "), std::string::npos) << r.stderr_text;
    EXPECT_NE(r.stderr_text.find("hint: "), std::string::npos) << r.stderr_text;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

}  // namespace
}  // namespace chokepoint::monitor_test
