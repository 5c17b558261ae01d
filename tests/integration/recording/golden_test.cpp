// Golden replays: each recording under tests/fixtures/recordings/ (a real lab window, made by
// scripts/record_fixtures) must replay to the text and JSON reports checked in beside it. A change
// to the model, the rules or the renderers that moves a report shows here; when it is meant,
// CHOKEPOINT_UPDATE_GOLDEN=1 rewrites the goldens (tests/support/golden.h; review the diff).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support/cli.h"
#include "support/golden.h"

namespace chokepoint::recording_test {
namespace {

using test_support::expect_matches_golden;
using test_support::run_chokepoint;

const std::filesystem::path kDir = std::filesystem::path(CHOKEPOINT_FIXTURES_DIR) / "recordings";

class RecordingGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(RecordingGolden, ReplaysToTheCheckedInReports) {
  const auto file = kDir / (GetParam() + ".chokepoint");
  ASSERT_TRUE(std::filesystem::exists(file)) << file;
  auto text = run_chokepoint({"replay", file.string()});
  ASSERT_EQ(text.exit_code, 0) << text.stderr_text;
  expect_matches_golden(kDir / (GetParam() + ".txt"), text.stdout_text);
  auto json = run_chokepoint({"replay", file.string(), "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.stderr_text;
  expect_matches_golden(kDir / (GetParam() + ".json"), json.stdout_text);
}

INSTANTIATE_TEST_SUITE_P(Lab, RecordingGolden,
                         ::testing::Values("lab_none", "lab_disk", "lab_lock", "lab_upstream",
                                           "lab_lock_v2", "lab_lock_v3", "lab_lock_v4", "redis_v5"),
                         [](const auto& info) { return info.param; });

// Schema 5 keeps every poll of a service probe: a part of the recording replays the services
// from the polls made in it (the whole recording replays the summary the recorder kept).
TEST(RecordingGolden, APartOfASchema5RecordingReplaysItsServicesFromTheProbeSeries) {
  const auto file = kDir / "redis_v5.chokepoint";
  for (const char* ext : {".txt", ".json"}) {
    std::vector<std::string> cmd = {"replay", file.string(), "--from", "1s", "--to", "3s"};
    if (std::string(ext) == ".json") cmd.emplace_back("--json");
    auto r = run_chokepoint(cmd);
    ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
    EXPECT_NE(r.stdout_text.find("redis"), std::string::npos) << r.stdout_text;
    expect_matches_golden(kDir / (std::string("redis_v5_part") + ext), r.stdout_text);
  }
}

// The verdict over time is asked for (--over-time, or --column): without it a replay prints the
// report alone (the goldens above), and for a recording with no diagnosis's run-cost note says on
// stderr how to get the list; with it, the list follows the report, from the same recording.
TEST(RecordingGolden, TheVerdictOverTimeIsListedWhenAskedFor) {
  const auto file = (kDir / "lab_lock.chokepoint").string();
  auto plain = run_chokepoint({"replay", file});
  ASSERT_EQ(plain.exit_code, 0) << plain.stderr_text;
  EXPECT_EQ(plain.stdout_text.find("Verdict over time"), std::string::npos) << plain.stdout_text;
  EXPECT_NE(plain.stderr_text.find("replay --over-time lists how the verdict changed"),
            std::string::npos)
      << plain.stderr_text;
  auto listed = run_chokepoint({"replay", file, "--over-time"});
  ASSERT_EQ(listed.exit_code, 0) << listed.stderr_text;
  // The same report with the list after the diagnosis (before the load's part): taken out, the
  // rest is the plain replay's.
  std::string rest = listed.stdout_text;
  const auto at = rest.find("\nVerdict over time");
  ASSERT_NE(at, std::string::npos) << rest;
  const auto end = rest.find("\n\n", at + 1);
  rest.erase(at, end == std::string::npos ? std::string::npos : end + 1 - at);
  EXPECT_EQ(rest, plain.stdout_text);
  EXPECT_NE(listed.stdout_text.find("Verdict over time (5 columns of 0.2 s): cpu (saturated)"),
            std::string::npos)
      << listed.stdout_text;
  EXPECT_NE(listed.stdout_text.find("-> lock (mutex)\n    why: "), std::string::npos)
      << listed.stdout_text;
  auto json = run_chokepoint({"replay", file, "--json", "--column", "0.5s"});
  ASSERT_EQ(json.exit_code, 0) << json.stderr_text;
  EXPECT_NE(json.stdout_text.find("\"verdict_over_time\""), std::string::npos) << json.stdout_text;
}

}  // namespace
}  // namespace chokepoint::recording_test
