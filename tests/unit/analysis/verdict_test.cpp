// The verdict's enums and the names the text report and the JSON contract print: the names are
// part of diagnose's JSON schema 1, so they are pinned here, and every verdict has its docs page.
#include "analysis/verdict.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
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
  EXPECT_EQ(kinds.size(), 20u);
  EXPECT_EQ(kind_name(BottleneckKind::kHeldAcrossIo), "held-across-io");
  EXPECT_EQ(kind_name(BottleneckKind::kFileLock), "file-lock");
  EXPECT_EQ(severity_name(Severity::kWarning), "warning");
  EXPECT_EQ(severity_name(Severity::kInfo), "info");
  EXPECT_EQ(finding_resource_name(FindingResource::kFds), "fds");
  EXPECT_EQ(finding_resource_name(FindingResource::kMemory), "memory");
}

}  // namespace
}  // namespace chokepoint::analysis
