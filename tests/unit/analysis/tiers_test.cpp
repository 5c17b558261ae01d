// Which tier limits a multi-tier service: the request path followed from the front tier through
// the tiers it waits on the network for.
#include "analysis/tiers.h"

#include <gtest/gtest.h>

namespace chokepoint::analysis {
namespace {

TierDiagnosis tier(int pid, const char* name, Verdict v, BottleneckKind kind, double share) {
  TierDiagnosis t;
  t.root_pid = pid;
  t.name = name;
  t.pids = {pid};
  t.diagnosis.verdict = v;
  if (v != Verdict::kNone) {
    Bottleneck b;
    b.resource = v;
    b.kind = kind;
    b.share = share;
    b.significant = true;
    t.diagnosis.bottlenecks.push_back(b);
  }
  return t;
}

model::TierLink link(std::size_t from, std::size_t to, const char* address) {
  return {from, to, address, 4};
}

TEST(LimitingTier, AFrontWaitingOnTheNetworkForADiskBoundTierIsLimitedByThatDisk) {
  const std::vector<TierDiagnosis> tiers = {
      tier(10, "app", Verdict::kNetwork, BottleneckKind::kUpstream, 0.9),
      tier(20, "postgres", Verdict::kDisk, BottleneckKind::kFsync, 0.8)};
  const LimitingTier l = limiting_tier(tiers, {link(0, 1, "127.0.0.1:5432")});
  ASSERT_EQ(l.tier, std::optional<std::size_t>(1));
  EXPECT_EQ(l.path, (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(l.reason,
            "tier 1 (pid 10, app) waits on the network (upstream) for tier 2 (pid 20, postgres) "
            "at 127.0.0.1:5432, which is limited by disk (fsync): the whole is limited by tier 2 "
            "(pid 20, postgres)'s disk (fsync)");
}

TEST(LimitingTier, ThePathIsFollowedThroughSeveralTiersInAnyOrder) {
  // Given back to front: the db (0) is called by the api (2), which the proxy (1) calls.
  const std::vector<TierDiagnosis> tiers = {
      tier(30, "db", Verdict::kCpu, BottleneckKind::kSerial, 0.95),
      tier(10, "proxy", Verdict::kNetwork, BottleneckKind::kUpstream, 0.9),
      tier(20, "api", Verdict::kNetwork, BottleneckKind::kUpstream, 0.7)};
  const LimitingTier l =
      limiting_tier(tiers, {link(1, 2, "127.0.0.1:8080"), link(2, 0, "127.0.0.1:5432")});
  ASSERT_EQ(l.tier, std::optional<std::size_t>(0));
  EXPECT_EQ(l.path, (std::vector<std::size_t>{1, 2, 0}));
  EXPECT_NE(l.reason.find("which is limited by cpu (serial)"), std::string::npos) << l.reason;
}

TEST(LimitingTier, AFrontLimitedByItsOwnResourceIsTheLimit) {
  const std::vector<TierDiagnosis> tiers = {
      tier(10, "app", Verdict::kCpu, BottleneckKind::kSaturated, 0.9),
      tier(20, "db", Verdict::kDisk, BottleneckKind::kFsync, 0.3)};
  const LimitingTier l = limiting_tier(tiers, {link(0, 1, "127.0.0.1:5432")});
  ASSERT_EQ(l.tier, std::optional<std::size_t>(0));
  EXPECT_EQ(l.path, (std::vector<std::size_t>{0}));
  EXPECT_NE(l.reason.find("limited by cpu (saturated), not by the tiers it calls"),
            std::string::npos)
      << l.reason;
}

TEST(LimitingTier, ACalleeWithHeadroomLeavesTheLimitAtItsCaller) {
  // The upstream sleeps before answering: not busy, so its capacity is not the limit.
  const std::vector<TierDiagnosis> tiers = {
      tier(10, "app", Verdict::kNetwork, BottleneckKind::kUpstream, 0.9),
      tier(20, "slow", Verdict::kNone, BottleneckKind::kIo, 0)};
  const LimitingTier l = limiting_tier(tiers, {link(0, 1, "127.0.0.1:9000")});
  ASSERT_EQ(l.tier, std::optional<std::size_t>(0));
  EXPECT_NE(l.reason.find("which has headroom (none)"), std::string::npos) << l.reason;
}

TEST(LimitingTier, TiersThatDoNotCallEachOtherStandAlone) {
  const std::vector<TierDiagnosis> tiers = {
      tier(10, "a", Verdict::kCpu, BottleneckKind::kBusy, 0.9),
      tier(20, "b", Verdict::kDisk, BottleneckKind::kFsync, 0.8)};
  const LimitingTier l = limiting_tier(tiers, {});
  EXPECT_FALSE(l.tier);
  EXPECT_TRUE(l.path.empty());
  EXPECT_NE(l.reason.find("no tier calls another"), std::string::npos) << l.reason;
  // A cycle has no front either.
  EXPECT_FALSE(limiting_tier(tiers, {link(0, 1, "x:1"), link(1, 0, "y:2")}).tier);
}

}  // namespace
}  // namespace chokepoint::analysis
