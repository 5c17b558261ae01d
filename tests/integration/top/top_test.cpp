// chokepoint top without a terminal: --batch text frames and --json lines, golden-checked from a
// recording of the lab's disk scenario (tests/fixtures/recordings/lab_disk.chokepoint, cut into
// two 500 ms frames); live on the lab (its threads listed, the sort order the flag asks for); a
// process named with escape sequences cannot reach the terminal (nor through stacks); and the
// error contract.
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support/background.h"
#include "support/cli.h"
#include "support/golden.h"
#include "support/lab_process.h"

namespace chokepoint::top_test {
namespace {

using test_support::Background;
using test_support::expect_cli_error;
using test_support::LabProcess;
using test_support::run_chokepoint;

const std::filesystem::path kFixtures = CHOKEPOINT_FIXTURES_DIR;
const std::string kRecording = (kFixtures / "recordings" / "lab_disk.chokepoint").string();

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << line;
    out.push_back(std::move(j));
  }
  return out;
}

TEST(TopTest, ReplayBatchAndJsonMatchGoldens) {
  auto text = run_chokepoint({"top", "--replay", kRecording, "--interval", "500ms", "--batch"});
  ASSERT_EQ(text.exit_code, 0) << text.stderr_text;
  test_support::expect_matches_golden((kFixtures / "top" / "lab_disk_batch.txt").string(),
                                      text.stdout_text);
  // The disk scenario's verdict heads both frames.
  EXPECT_NE(text.stdout_text.find("frame 2 at 1.0 s"), std::string::npos) << text.stdout_text;
  EXPECT_NE(text.stdout_text.find("verdict: disk (fsync)"), std::string::npos);

  auto json = run_chokepoint({"top", "--replay", kRecording, "--interval", "500ms", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.stderr_text;
  test_support::expect_matches_golden((kFixtures / "top" / "lab_disk.jsonl").string(),
                                      json.stdout_text);
  const auto frames = json_lines(json.stdout_text);
  ASSERT_EQ(frames.size(), 2U);
  for (const auto& f : frames) EXPECT_EQ(f["verdict"]["resource"], "disk");
}

TEST(TopTest, SortOrderFollowsTheFlag) {
  for (const std::string key : {"runq", "name", "pid"}) {
    auto r = run_chokepoint(
        {"top", "--replay", kRecording, "--interval", "1s", "--json", "--sort", key});
    ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
    const auto frames = json_lines(r.stdout_text);
    ASSERT_EQ(frames.size(), 1U);
    const auto& threads = frames[0]["processes"][0]["threads"];
    ASSERT_GT(threads.size(), 10U);
    for (std::size_t i = 1; i < threads.size(); ++i) {
      const auto& a = threads[i - 1];
      const auto& b = threads[i];
      if (key == "runq") {
        EXPECT_GE(a["runq_pct"].get<double>(), b["runq_pct"].get<double>()) << i;
      } else if (key == "name") {
        EXPECT_LE(a["name"].get<std::string>(), b["name"].get<std::string>()) << i;
      } else {
        EXPECT_LT(a["tid"].get<int>(), b["tid"].get<int>()) << i;
      }
    }
  }
}

TEST(TopTest, LiveLabThreadsInFrames) {
  auto lab = LabProcess::start({"--scenario", "disk", "--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  auto r = run_chokepoint({"top", "--pid", std::to_string(lab->pid()), "--json", "--interval",
                           "500ms", "--iterations", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  const auto frames = json_lines(r.stdout_text);
  ASSERT_EQ(frames.size(), 2U) << r.stdout_text;
  EXPECT_EQ(frames[1]["frame"], 2);
  std::set<std::string> names;
  for (const auto& t : frames[1]["processes"][0]["threads"]) names.insert(t["name"]);
  EXPECT_TRUE(names.count("lab-worker")) << r.stdout_text;
  EXPECT_TRUE(names.count("lab-loop-0")) << r.stdout_text;

  auto text = run_chokepoint({"top", "--pid", std::to_string(lab->pid()), "--batch", "--interval",
                              "300ms", "--iterations", "1"});
  ASSERT_EQ(text.exit_code, 0) << text.stderr_text;
  EXPECT_NE(text.stdout_text.find("chokepoint-lab"), std::string::npos) << text.stdout_text;
  EXPECT_NE(text.stdout_text.find("verdict: "), std::string::npos) << text.stdout_text;
}

// top --mode as diagnose has it: the batch frames end with the time split's source, which says
// which mode ran (exact: the eBPF state accounting, which works here as root).
TEST(TopTest, ModeSaysWhichTimeSplitRan) {
  auto lab = LabProcess::start({"--scenario", "disk", "--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  auto exact = run_chokepoint({"top", "--pid", std::to_string(lab->pid()), "--batch", "--mode",
                               "exact", "--interval", "500ms", "--iterations", "2"});
  ASSERT_EQ(exact.exit_code, 0) << exact.stderr_text;
  EXPECT_NE(exact.stdout_text.find("frame 2"), std::string::npos) << exact.stdout_text;
  EXPECT_NE(exact.stdout_text.find("+ time split: exact (--mode exact): each thread's off-CPU "
                                   "time divided by eBPF state accounting"),
            std::string::npos)
      << exact.stdout_text;
  auto sample = run_chokepoint({"top", "--pid", std::to_string(lab->pid()), "--batch", "--mode",
                                "sample", "--interval", "300ms", "--iterations", "1"});
  ASSERT_EQ(sample.exit_code, 0) << sample.stderr_text;
  EXPECT_NE(sample.stdout_text.find("time split: sampled (--mode sample)"), std::string::npos)
      << sample.stdout_text;
  expect_cli_error(run_chokepoint({"top", "--pid", std::to_string(lab->pid()), "--mode", "bogus"}),
                   2, "--mode 'bogus'");
  expect_cli_error(run_chokepoint({"top", "--replay", kRecording, "--mode", "exact"}), 2, "--mode");
}

TEST(TopTest, EscapeSequencesInANameCannotReachTheTerminal) {
  // The stacks test's target, its main thread named with a clear-screen, a retitle and a bell.
  auto evil = Background::start(STACKS_TARGET, {"0",
                                                "\x1b[2J\x1b]0;x\a"
                                                "ev"});
  ASSERT_TRUE(evil) << evil.error().message;
  const std::string comm_path = "/proc/" + std::to_string(evil->pid()) + "/comm";
  for (int i = 0; i < 100; ++i) {
    std::ifstream in(comm_path);
    std::string comm;
    std::getline(in, comm);
    if (comm.find("ev") != std::string::npos) break;
    usleep(20'000);
  }
  auto r = run_chokepoint({"top", "--pid", std::to_string(evil->pid()), "--batch", "--interval",
                           "200ms", "--iterations", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.stdout_text.find('\x1b'), std::string::npos);
  EXPECT_EQ(r.stdout_text.find('\x07'), std::string::npos);
  EXPECT_NE(r.stdout_text.find("\\e[2J\\e]0;x\\x07ev"), std::string::npos) << r.stdout_text;
  // The same name in a stacks dump.
  auto stacks = run_chokepoint({"stacks", "--pid", std::to_string(evil->pid())});
  ASSERT_EQ(stacks.exit_code, 0) << stacks.stderr_text;
  EXPECT_EQ(stacks.stdout_text.find('\x1b'), std::string::npos);
  EXPECT_NE(stacks.stdout_text.find("\\e[2J\\e]0;x\\x07ev"), std::string::npos)
      << stacks.stdout_text;
}

TEST(TopTest, BadOptionsAreErrorsWithHints) {
  expect_cli_error(run_chokepoint({"top", "--replay", kRecording, "--sort", "bogus"}), 2,
                   "--sort bogus");
  expect_cli_error(run_chokepoint({"top", "--replay", kRecording, "--batch", "--json"}), 2,
                   "--batch and --json");
  expect_cli_error(run_chokepoint({"top", "--interval", "10ms"}), 2, "--interval");
  expect_cli_error(run_chokepoint({"top", "--replay", "/nonexistent.chokepoint"}), 1,
                   "nonexistent");
  expect_cli_error(run_chokepoint({"top", "--replay", kRecording, "--pid", "1"}), 2, "--replay");
}

}  // namespace
}  // namespace chokepoint::top_test
