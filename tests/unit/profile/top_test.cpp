// top(): self and total shares over a hand-built profile.
#include "profile/top.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace chokepoint::profile {
namespace {

Frame fn(const std::string& name, const std::string& module = "/bin/svc") {
  Frame f;
  f.name = name;
  f.module = module;
  return f;
}

Frame root() {
  Frame f;
  f.kind = FrameKind::kProcess;
  f.name = "svc (1)";
  return f;
}

Stack stack(std::vector<Frame> frames, std::uint64_t value) {
  Stack s;
  s.frames = std::move(frames);
  s.value = value;
  s.count = value;
  return s;
}

// The lab's shape: handler -> hash (70) and handler -> checksum (30), plus an idle poll.
Profile lab_like() {
  Profile p;
  p.stacks.push_back(stack({root(), fn("main"), fn("handle"), fn("hash_rounds")}, 70));
  p.stacks.push_back(stack({root(), fn("main"), fn("handle"), fn("checksum")}, 30));
  p.stacks.push_back(stack({root(), fn("main"), fn("poll")}, 20));
  return p;
}

const TopEntry* find(const std::vector<TopEntry>& v, const std::string& name) {
  for (const auto& e : v) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

TEST(Top, SelfAndTotalShares) {
  auto t = top(lab_like(), 0);
  EXPECT_EQ(t.total_value, 120u);
  ASSERT_EQ(t.by_self.size(), 3u);
  EXPECT_EQ(t.by_self[0].name, "hash_rounds");
  EXPECT_NEAR(t.by_self[0].self_share, 70.0 / 120, 1e-12);
  EXPECT_EQ(t.by_self[1].name, "checksum");
  EXPECT_EQ(t.by_self[2].name, "poll");
  // Functions that are never a leaf have no self time and are not in by_self.
  EXPECT_EQ(find(t.by_self, "main"), nullptr);
  EXPECT_EQ(find(t.by_self, "svc (1)"), nullptr);

  ASSERT_EQ(t.by_total.size(), 5u);  // main, handle, hash_rounds, checksum, poll
  EXPECT_EQ(t.by_total[0].name, "main");
  EXPECT_NEAR(t.by_total[0].total_share, 1.0, 1e-12);
  EXPECT_EQ(t.by_total[1].name, "handle");
  EXPECT_EQ(t.by_total[1].total_value, 100u);
  EXPECT_EQ(t.by_total[1].self_value, 0u);
  EXPECT_EQ(find(t.by_total, "svc (1)"), nullptr);  // synthetic frames are not functions
}

TEST(Top, LimitsToN) {
  auto t = top(lab_like(), 2);
  EXPECT_EQ(t.by_self.size(), 2u);
  EXPECT_EQ(t.by_total.size(), 2u);
  EXPECT_EQ(t.total_value, 120u);  // n does not change the denominator
}

TEST(Top, RecursionCountsOncePerStackInTotal) {
  Profile p;
  p.stacks.push_back(stack({root(), fn("walk"), fn("walk"), fn("walk")}, 10));
  auto t = top(p, 0);
  ASSERT_EQ(t.by_total.size(), 1u);
  EXPECT_EQ(t.by_total[0].total_value, 10u);
  EXPECT_EQ(t.by_total[0].self_value, 10u);
}

TEST(Top, SameNameInTwoModulesIsTwoFunctions) {
  Profile p;
  p.stacks.push_back(stack({root(), fn("init", "/lib/a.so")}, 3));
  p.stacks.push_back(stack({root(), fn("init", "/lib/b.so")}, 1));
  auto t = top(p, 0);
  ASSERT_EQ(t.by_self.size(), 2u);
  EXPECT_EQ(t.by_self[0].module, "/lib/a.so");
  EXPECT_EQ(t.by_self[1].module, "/lib/b.so");
}

TEST(Top, StackWithoutFunctionsCountsInTheTotalOnly) {
  Profile p;
  p.stacks.push_back(stack({root()}, 5));
  p.stacks.push_back(stack({root(), fn("f")}, 5));
  auto t = top(p, 0);
  EXPECT_EQ(t.total_value, 10u);
  ASSERT_EQ(t.by_self.size(), 1u);
  EXPECT_NEAR(t.by_self[0].self_share, 0.5, 1e-12);
}

TEST(Top, EmptyProfile) {
  auto t = top(Profile{}, 10);
  EXPECT_EQ(t.total_value, 0u);
  EXPECT_TRUE(t.by_self.empty());
  EXPECT_TRUE(t.by_total.empty());
  EXPECT_NE(top_text(Profile{}, t).find("0 total"), std::string::npos);
}

TEST(Top, TextShowsPercentAndWhere) {
  Profile p = lab_like();
  p.stacks[0].frames.back().file = "cpu_work.cpp";
  p.stacks[0].frames.back().line = 12;
  std::string text = top_text(p, top(p, 3));
  EXPECT_NE(text.find("58.3"), std::string::npos) << text;  // 70 / 120
  EXPECT_NE(text.find("hash_rounds  cpu_work.cpp:12"), std::string::npos) << text;
  EXPECT_NE(text.find("checksum  /bin/svc"), std::string::npos) << text;
}

TEST(Top, LocationIsTheHeaviestLine) {
  Profile p;
  Frame light = fn("hash_rounds");
  light.file = "cpu_work.cpp";
  light.line = 12;
  Frame heavy = light;
  heavy.line = 14;
  p.stacks.push_back(stack({root(), fn("main"), light}, 10));
  p.stacks.push_back(stack({root(), fn("main"), heavy}, 30));
  auto t = top(p, 0);
  ASSERT_EQ(t.by_self.size(), 1u);
  EXPECT_EQ(t.by_self[0].self_value, 40u);  // both lines are one function
  EXPECT_EQ(t.by_self[0].file, "cpu_work.cpp");
  EXPECT_EQ(t.by_self[0].line, 14);
  const TopEntry* m = find(t.by_total, "main");
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->file.empty());  // no debug info: no location, not a made-up one
}

TEST(Top, OffCpuWeightIsShownInMilliseconds) {
  Profile p;
  p.weight = Weight::kNanoseconds;
  p.stacks.push_back(stack({root(), fn("futex_wait")}, 2'500'000));
  std::string text = top_text(p, top(p, 1));
  EXPECT_NE(text.find("2.5 ms"), std::string::npos) << text;
}

}  // namespace
}  // namespace chokepoint::profile
