#include "render/flamegraph_folded.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "profile/folded.h"
#include "unit/render/sample_profile.h"

namespace chokepoint::render {
namespace {

using namespace sample;  // NOLINT: the sample profiles

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Sums the value after the last blank of every line, the way flamegraph.pl reads it, and checks
// that every line has exactly that shape.
std::uint64_t parse_total(const std::string& folded) {
  std::uint64_t total = 0;
  std::istringstream in(folded);
  std::string line;
  while (std::getline(in, line)) {
    const auto blank = line.rfind(' ');
    EXPECT_NE(blank, std::string::npos) << line;
    if (blank == std::string::npos) continue;
    total += std::stoull(line.substr(blank + 1));
  }
  return total;
}

TEST(Folded, MatchesGoldenFile) {
  const std::string golden = read_file(CHOKEPOINT_FIXTURES_DIR "/render/lab_cpu.folded");
  ASSERT_FALSE(golden.empty());
  EXPECT_EQ(folded(lab_cpu_profile()), golden);
}

TEST(Folded, SameBytesWhateverTheStackOrder) {
  const std::string first = folded(lab_cpu_profile());
  for (unsigned seed = 1; seed <= 5; ++seed)
    EXPECT_EQ(folded(shuffled(lab_cpu_profile(), seed)), first);
}

TEST(Folded, ValuesSumToTheProfileTotal) {
  EXPECT_EQ(parse_total(folded(lab_cpu_profile())), total_value(lab_cpu_profile()));
  EXPECT_EQ(parse_total(folded(lab_offcpu_profile())), total_value(lab_offcpu_profile()));
}

TEST(Folded, OffCpuValuesAreNanoseconds) {
  const std::string out = folded(lab_offcpu_profile());
  EXPECT_NE(out.find("lab_cpu_hash_rounds 65000000\n"), std::string::npos) << out;
}

TEST(Folded, AnnotatesKernelAndJitFrames) {
  const std::string out = folded(lab_cpu_profile());
  EXPECT_NE(out.find(";asm_sysvec_apic_timer_interrupt_[k] 5\n"), std::string::npos) << out;
  EXPECT_NE(out.find(";Interpreter::run_[j] 8\n"), std::string::npos) << out;
}

TEST(Folded, SanitizesSeparatorsAndControlCharacters) {
  profile::Profile p;
  profile::Stack s;
  s.frames = {user("a;b"), user("line\nbreak\r\ttab"), user(""), user("x\x7fy")};
  s.value = 3;
  p.stacks.push_back(s);
  EXPECT_EQ(folded(p), "a:b;line break  tab;[unknown];x y 3\n");
}

TEST(Folded, MergesStacksThatFoldAlike) {
  const std::string out = folded(lab_cpu_profile());
  // Lines 60 and 61 of lab_cpu_checksum are one function in folded form: 29 + 1.
  EXPECT_NE(out.find(";lab_cpu_checksum 30\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("never_shown"), std::string::npos) << out;
}

TEST(Folded, SortsFrameByFrame) {
  // Frame by frame, "a" < "a::b", so the stack through "a" comes first, although the line
  // "a::b 1" would sort before "a;x 1" as whole text (':' < ';').
  profile::Profile p;
  p.stacks.push_back({{user("a::b")}, 1, 1});
  p.stacks.push_back({{user("a"), user("x")}, 2, 2});
  p.stacks.push_back({{user("a")}, 3, 3});
  EXPECT_EQ(folded(p), "a 3\na;x 2\na::b 1\n");
}

TEST(Folded, NamesThatSanitizeAlikeMerge) {
  profile::Profile p;
  p.stacks.push_back({{user("f;g")}, 1, 1});
  p.stacks.push_back({{user("f:g")}, 2, 2});
  EXPECT_EQ(folded(p), "f:g 3\n");
}

TEST(Folded, EmptyStackAndEmptyProfile) {
  EXPECT_EQ(folded(profile::Profile{}), "");
  profile::Profile p;
  p.stacks.push_back({{}, 7, 7});
  EXPECT_EQ(folded(p), "[no frames] 7\n");
}

// parse_folded (profile/folded.h) reads back what folded writes: the same text again, kernel and
// JIT frames recognised by their suffixes. A recording keeps its stacks this way.
TEST(FoldedParse, RoundTripsToTheSameText) {
  for (const auto& p : {lab_cpu_profile(), lab_offcpu_profile()}) {
    profile::Profile back;
    ASSERT_TRUE(profile::parse_folded(folded(p), back));
    EXPECT_EQ(folded(back), folded(p));
  }
  profile::Profile back;
  ASSERT_TRUE(profile::parse_folded("a;b_[k] 5\n\na;c_[j] 7\n", back));
  ASSERT_EQ(back.stacks.size(), 2U);
  EXPECT_EQ(back.stacks[0].frames[1].name, "b");
  EXPECT_EQ(back.stacks[0].frames[1].kind, profile::FrameKind::kKernel);
  EXPECT_EQ(back.stacks[1].frames[1].kind, profile::FrameKind::kJit);
  EXPECT_EQ(back.stacks[1].value, 7U);
}

TEST(FoldedParse, ALineWithoutAValueIsAnErrorNamingIt) {
  profile::Profile back;
  auto r = profile::parse_folded("a;b 5\na;c\n", back);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("line 2"), std::string::npos) << r.error().message;
  EXPECT_FALSE(profile::parse_folded("a;b x5\n", back));
  EXPECT_FALSE(profile::parse_folded("a;b -5\n", back));
}

}  // namespace
}  // namespace chokepoint::render
