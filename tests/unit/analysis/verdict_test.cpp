// The verdict's enums and the names the text report and the JSON contract print: the names are
// part of diagnose's JSON schema 1, so they are pinned here, and every verdict has its docs page.
#include "analysis/verdict.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace chokepoint::analysis {
namespace {

constexpr Verdict kAllVerdicts[] = {Verdict::kNone,   Verdict::kNetwork, Verdict::kDisk,
                                    Verdict::kMemory, Verdict::kLock,    Verdict::kCpu};

TEST(Verdict, NamesAreTheJsonSchemaOnesAndRoundTrip) {
  std::string all;
  for (Verdict v : kAllVerdicts) {
    all += std::string(verdict_name(v)) + " ";
    EXPECT_EQ(verdict_from_name(verdict_name(v)), v);
  }
  EXPECT_EQ(all, "none network disk memory lock cpu ");
  EXPECT_EQ(verdict_from_name("CPU"), std::nullopt);
  EXPECT_EQ(verdict_from_name(""), std::nullopt);
}

TEST(Verdict, EveryVerdictHasItsDocsPage) {
  for (Verdict v : kAllVerdicts) {
    const std::string page = std::string(CHOKEPOINT_SOURCE_DIR) + "/docs/verdicts/" +
                             std::string(verdict_name(v)) + ".md";
    EXPECT_TRUE(std::filesystem::exists(page)) << page;
  }
}

// One rule per file in src/analysis/rules/, and each names its page, which exists.
TEST(Verdict, EveryRuleFileNamesItsDocsPage) {
  const std::filesystem::path rules = std::string(CHOKEPOINT_SOURCE_DIR) + "/src/analysis/rules";
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(rules)) {
    const auto& path = entry.path();
    if (path.extension() != ".cpp" || path.filename() == "format.cpp") continue;
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    const std::string source = text.str();
    const auto at = source.find("docs/verdicts/");
    ASSERT_NE(at, std::string::npos) << path << " names no docs/verdicts/ page";
    const auto end = source.find(".md", at);
    ASSERT_NE(end, std::string::npos) << path;
    const std::string page = source.substr(at, end + 3 - at);
    EXPECT_TRUE(std::filesystem::exists(std::string(CHOKEPOINT_SOURCE_DIR) + "/" + page))
        << path << " names " << page;
    ++checked;
  }
  EXPECT_GE(checked, 8);
}

TEST(Verdict, TheLatencyHierarchyOrdersTies) {
  EXPECT_LT(hierarchy_rank(Verdict::kNetwork), hierarchy_rank(Verdict::kDisk));
  EXPECT_LT(hierarchy_rank(Verdict::kDisk), hierarchy_rank(Verdict::kMemory));
  EXPECT_LT(hierarchy_rank(Verdict::kMemory), hierarchy_rank(Verdict::kLock));
  EXPECT_LT(hierarchy_rank(Verdict::kLock), hierarchy_rank(Verdict::kCpu));
  EXPECT_LT(hierarchy_rank(Verdict::kCpu), hierarchy_rank(Verdict::kNone));
}

TEST(Verdict, KindSeverityAndFindingNamesAreDistinctAndPinned) {
  std::set<std::string_view> kinds;
  for (int k = 0; k <= static_cast<int>(BottleneckKind::kBusy); ++k) {
    std::string_view n = kind_name(static_cast<BottleneckKind>(k));
    EXPECT_FALSE(n.empty()) << k;
    EXPECT_TRUE(kinds.insert(n).second) << n;
  }
  EXPECT_EQ(kinds.size(), 22u);
  EXPECT_EQ(kind_name(BottleneckKind::kHeldAcrossIo), "held-across-io");
  EXPECT_EQ(kind_name(BottleneckKind::kRow), "row");
  EXPECT_EQ(kind_name(BottleneckKind::kDatabase), "database");
  EXPECT_EQ(kind_name(BottleneckKind::kFileLock), "file-lock");
  EXPECT_EQ(severity_name(Severity::kWarning), "warning");
  EXPECT_EQ(severity_name(Severity::kInfo), "info");
  EXPECT_EQ(finding_resource_name(FindingResource::kFds), "fds");
  EXPECT_EQ(finding_resource_name(FindingResource::kMemory), "memory");
  EXPECT_EQ(finding_resource_name(FindingResource::kHeld), "held");
}

}  // namespace
}  // namespace chokepoint::analysis
