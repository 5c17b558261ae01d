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

}  // namespace
}  // namespace chokepoint::recording_test
