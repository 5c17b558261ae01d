#include "report/range_stacks.h"

#include <gtest/gtest.h>

namespace chokepoint::report {
namespace {

store::StackSlice slice(store::StackKind kind, std::int64_t from_ns, std::int64_t to_ns,
                        std::vector<store::FoldedCount> stacks) {
  store::StackSlice s;
  s.kind = kind;
  s.from_ns = from_ns;
  s.to_ns = to_ns;
  s.frequency_hz = kind == store::StackKind::kOnCpu ? 49 : 0;
  s.stacks = std::move(stacks);
  return s;
}

TEST(RangeStacksJson, NoSlicesIsNull) {
  EXPECT_TRUE(range_stacks_json({}, {}, 0).is_null());
}

TEST(RangeStacksJson, FramesAndStacksInternedOnceAcrossKindsAndTimesFromTheFirstTick) {
  const std::int64_t s = 1'000'000'000;
  const std::vector<store::StackSlice> on = {
      slice(store::StackKind::kOnCpu, 10 * s, 11 * s, {{"main;work;hash", 3}, {"main;idle", 1}}),
      slice(store::StackKind::kOnCpu, 11 * s, 12 * s, {{"main;work;hash", 5}})};
  const std::vector<store::StackSlice> off = {
      slice(store::StackKind::kOffCpu, 10 * s, 12 * s, {{"main;<img src=x>", 7000}})};
  const nlohmann::json j = range_stacks_json(on, off, 10 * s + s / 2);
  EXPECT_EQ(j["frames"], nlohmann::json({"main", "work", "hash", "idle", "<img src=x>"}));
  EXPECT_EQ(j["stacks"], nlohmann::json({{0, 1, 2}, {0, 3}, {0, 4}}));
  const auto& on_j = j["on_cpu"];
  EXPECT_EQ(on_j["merged_by"], 1);
  EXPECT_EQ(on_j["frequency_hz"], 49.0);
  ASSERT_EQ(on_j["slices"].size(), 2U);
  EXPECT_DOUBLE_EQ(on_j["slices"][0]["from_s"].get<double>(), -0.5);
  EXPECT_DOUBLE_EQ(on_j["slices"][0]["to_s"].get<double>(), 0.5);
  EXPECT_EQ(on_j["slices"][0]["counts"], nlohmann::json({0, 3, 1, 1}));
  EXPECT_EQ(on_j["slices"][1]["counts"], nlohmann::json({0, 5}));
  EXPECT_EQ(j["off_cpu"]["slices"][0]["counts"], nlohmann::json({2, 7000}));
  EXPECT_TRUE(range_stacks_json({}, off, 0)["on_cpu"].is_null());
}

TEST(RangeStacksJson, BeyondTheCapConsecutiveSlicesMergeInEqualGroups) {
  std::vector<store::StackSlice> on;
  for (int i = 0; i < 10; ++i) {
    on.push_back(slice(store::StackKind::kOnCpu, i * 100, (i + 1) * 100,
                       {{"a;b", static_cast<std::uint64_t>(i + 1)}}));
  }
  on[3].lost = 2;
  const nlohmann::json j = range_stacks_json(on, {}, 0, 4);
  const auto& k = j["on_cpu"];
  EXPECT_EQ(k["merged_by"], 3);
  ASSERT_EQ(k["slices"].size(), 4U);  // 3 + 3 + 3 + 1
  EXPECT_EQ(k["slices"][0]["counts"], nlohmann::json({0, 1 + 2 + 3}));
  EXPECT_EQ(k["slices"][1]["counts"], nlohmann::json({0, 4 + 5 + 6}));
  EXPECT_EQ(k["slices"][1]["lost"], 2);
  EXPECT_DOUBLE_EQ(k["slices"][1]["from_s"].get<double>(), 300e-9);
  EXPECT_DOUBLE_EQ(k["slices"][1]["to_s"].get<double>(), 600e-9);
  EXPECT_EQ(k["slices"][3]["counts"], nlohmann::json({0, 10}));
}

}  // namespace
}  // namespace chokepoint::report
