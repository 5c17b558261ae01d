// Threshold expressions (monitor/threshold.h) and the Nagios line built on them.
#include "monitor/threshold.h"

#include <gtest/gtest.h>

#include "monitor/nagios.h"

namespace chokepoint::monitor {
namespace {

model::TimeSplit split_of(std::int64_t on_cpu, std::int64_t disk, std::int64_t idle) {
  model::TimeSplit s;
  s[model::Resource::kOnCpu] = on_cpu;
  s[model::Resource::kDisk] = disk;
  s[model::Resource::kIdle] = idle;
  return s;
}

TEST(Threshold, ParsesTermsAndSpaces) {
  auto t = parse_threshold("disk>0.3, lock >= 0.5 ,busy<1,idle<=0");
  ASSERT_TRUE(t) << t.error().message;
  ASSERT_EQ(t->terms.size(), 4u);
  EXPECT_EQ(t->terms[0].text, "disk>0.3");
  EXPECT_EQ(t->terms[1].text, "lock>=0.5");
  EXPECT_EQ(t->terms[1].op, Compare::kGreaterEqual);
  EXPECT_EQ(share_name(t->terms[2].share), "busy");
  EXPECT_EQ(t->terms[3].op, Compare::kLessEqual);
  EXPECT_DOUBLE_EQ(t->terms[0].limit, 0.3);
}

// Regression (found by monitor_threshold_fuzz): the canonical text printed the limit with {:g},
// so 0.0000000001 became 1e-10, which the parser (rightly) rejects; the perfdata had it too.
TEST(Threshold, CanonicalTextKeepsTheNumberAsWritten) {
  auto t = parse_threshold("disk > 0.0000000001,lock<0.50");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->terms[0].text, "disk>0.0000000001");
  EXPECT_EQ(t->terms[1].text, "lock<0.50");
  EXPECT_TRUE(parse_threshold(t->terms[0].text));
}

TEST(Threshold, RejectsWhatTheGrammarDoesNot) {
  for (const char* bad : {"",           " ",
                          "disk",       "disk>",
                          ">0.3",       "disk>>0.3",
                          "disk=0.3",   "disk>1.5",
                          "disk>-0.1",  "disk>0.",
                          "disk>.3",    "disk>0.3,",
                          ",disk>0.3",  "disk>0.3;lock>0.2",
                          "Disk>0.3",   "disk >0.3 x",
                          "dsk>0.3",    "disk>0x1",
                          "disk>1e-1",  "disk>nan",
                          "disk>0.3\n", "disk\t>0.3",
                          "disk>30%",   "disk>0.3,,lock>0.1"}) {
    auto t = parse_threshold(bad);
    EXPECT_FALSE(t) << "accepted '" << bad << "'";
    if (!t) {
      EXPECT_FALSE(t.error().hint.empty());
      EXPECT_EQ(t.error().message.find('\n'), std::string::npos);
    }
  }
  std::string many = "disk>0.1";
  for (int i = 0; i < 20; ++i) many += ",disk>0.1";
  EXPECT_FALSE(parse_threshold(many));
  EXPECT_FALSE(parse_threshold(std::string(2000, ' ') + "disk>0.1"));
}

TEST(Threshold, SharesOfBusyAndOfAllTime) {
  // 1 s on CPU, 3 s in disk, 4 s idle: disk is 75% of busy time, idle half of all time.
  const StateShares s = state_shares(split_of(1'000'000'000, 3'000'000'000, 4'000'000'000));
  EXPECT_DOUBLE_EQ(s.value[static_cast<std::size_t>(model::Resource::kDisk)], 0.75);
  EXPECT_DOUBLE_EQ(s.value[static_cast<std::size_t>(model::Resource::kOnCpu)], 0.25);
  EXPECT_DOUBLE_EQ(s.value[static_cast<std::size_t>(model::Resource::kIdle)], 0.5);
  EXPECT_DOUBLE_EQ(s.value[model::kResourceCount], 0.5);
  // Nothing at all: every share 0, never NaN.
  const StateShares zero = state_shares(model::TimeSplit{});
  for (double v : zero.value) EXPECT_EQ(v, 0.0);
}

TEST(Threshold, CrossedReturnsTheFirstTermThatHolds) {
  const StateShares s = state_shares(split_of(1, 3, 4));
  auto t = parse_threshold("lock>0.1,disk>0.7,on_cpu>0.2");
  ASSERT_TRUE(t);
  auto c = crossed(*t, s);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->text, "disk>0.7");
  EXPECT_FALSE(crossed(*parse_threshold("disk>0.75"), s));
  EXPECT_TRUE(crossed(*parse_threshold("disk>=0.75"), s));
  EXPECT_TRUE(crossed(*parse_threshold("busy<0.6"), s));
}

TEST(Nagios, StatusLineWithPerfdataForEveryShare) {
  const StateShares s = state_shares(split_of(1, 3, 4));
  const auto warn = parse_threshold("disk>0.3");
  const auto crit = parse_threshold("disk>0.6,lock>0.5");
  ASSERT_TRUE(warn && crit);
  analysis::Diagnosis d;
  d.verdict = analysis::Verdict::kDisk;
  analysis::Bottleneck b;
  b.resource = analysis::Verdict::kDisk;
  b.kind = analysis::BottleneckKind::kFsync;
  b.share = 0.75;
  d.bottlenecks.push_back(b);
  const CheckResult r = judge(s, *warn, *crit);
  EXPECT_EQ(r.state, PluginState::kCritical);
  const std::string line = nagios_line("name:db|x\n", r, s, d, *warn, *crit);
  EXPECT_EQ(line,
            "CHOKEPOINT CRITICAL - name:db\\x7cx\\n: disk 0.75 (crit disk>0.6); verdict disk "
            "(fsync, 75% of busy time) | on_cpu=0.2500;;;0;1 cpu_wait=0.0000;;;0;1 "
            "disk=0.7500;0.3;0.6;0;1 network=0.0000;;;0;1 lock=0.0000;;0.5;0;1 "
            "memory=0.0000;;;0;1 sleep=0.0000;;;0;1 idle=0.5000;;;0;1 busy=0.5000;;;0;1\n");
  EXPECT_EQ(judge(s, *warn, std::nullopt).state, PluginState::kWarning);
  EXPECT_EQ(judge(s, parse_threshold("lock>0.1").value(), std::nullopt).state, PluginState::kOk);
  EXPECT_EQ(nagios_unknown_line("a|b"), "CHOKEPOINT UNKNOWN - a\\x7cb\n");
}

}  // namespace
}  // namespace chokepoint::monitor
