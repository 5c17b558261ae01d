// Multi-tier targets: processes grouped into tiers by their parents, each tier's samples alone,
// and tiers linked by a connection one opened to an address another listens on.
#include "model/tiers.h"

#include <gtest/gtest.h>

#include "model/builder.h"
#include "support/socket_sample.h"

namespace chokepoint::model {
namespace {

constexpr std::int64_t kMs = 1'000'000;

ProcessSample process(int pid, std::optional<int> ppid, const char* name) {
  ProcessSample p;
  p.pid = pid;
  p.ppid = ppid;
  p.name = name;
  return p;
}

ThreadSample thread(int pid, int tid, std::int64_t at_ns, bool first, std::uint64_t run_ns) {
  ThreadSample t;
  t.key = {pid, tid, 7};
  t.at_ns = at_ns;
  t.prev_poll_ns = at_ns - 100 * kMs;
  t.first = first;
  if (first) {
    t.comm = "w";
    t.process_name = "svc";
  }
  t.run_ns = run_ns;
  t.has_stat = true;
  t.wait.state = 'R';
  return t;
}

SocketSample socket(int pid, std::uint64_t inode, SocketState state, bool server_side,
                    const char* local, std::uint16_t local_port, const char* remote,
                    std::uint16_t remote_port) {
  return test_support::socket_sample(pid, inode, state, {local, local_port, remote, remote_port},
                                     server_side);
}

// An app (10, with a child 11) calling a database (20, with a backend 21) on 127.0.0.1:5432;
// 30 is a process of neither (its parent 1 is no root).
Samples two_tiers() {
  Samples s;
  s.info.target = {"pid", "10,20", {}};
  s.info.interval_ns = 100 * kMs;
  for (int i = 0; i < 4; ++i) {
    Tick t;
    t.at_ns = (1000 + 100 * i) * kMs;
    const bool first = i == 0;
    if (first) {
      t.new_pids = {10, 11, 20, 21, 30};
      t.processes = {process(10, 1, "app"), process(11, 10, "app"), process(20, 1, "db"),
                     process(21, 20, "db"), process(30, 1, "other")};
    }
    const auto u = static_cast<std::uint64_t>(i);
    for (int pid : {10, 11, 20, 21, 30}) {
      t.threads.push_back(thread(pid, pid, t.at_ns, first, u * (pid == 21 ? 90 : 10) * kMs));
    }
    if (i == 3) {
      t.sockets = {
          socket(20, 1, SocketState::kListen, false, "0.0.0.0", 5432, "0.0.0.0", 0),
          socket(11, 2, SocketState::kEstablished, false, "127.0.0.1", 40000, "127.0.0.1", 5432),
          socket(11, 3, SocketState::kEstablished, false, "127.0.0.1", 40001, "127.0.0.1", 5432),
          socket(21, 4, SocketState::kEstablished, true, "127.0.0.1", 5432, "127.0.0.1", 40000),
          // To an address nobody watched listens on: no link.
          socket(10, 5, SocketState::kEstablished, false, "127.0.0.1", 40002, "10.0.0.9", 443)};
      t.closing = true;
    }
    s.ticks.push_back(std::move(t));
  }
  return s;
}

TEST(Tiers, EachProcessJoinsTheTierOfItsNearestRootAncestor) {
  const TierMap tiers = assign_tiers(two_tiers(), {10, 20});
  EXPECT_EQ(tiers, (TierMap{{10, 0}, {11, 0}, {20, 1}, {21, 1}}));
}

TEST(Tiers, TheTopLevelProcessesAreThoseNoOtherProcessStarted) {
  // A cgroup holding the app, the database and another service: their children are no roots.
  EXPECT_EQ(top_level_processes(two_tiers()), (std::vector<int>{10, 20, 30}));
  // A process with no known parent (a recording before schema 3) is a root too.
  Samples s = two_tiers();
  s.ticks[0].processes[1].ppid.reset();
  EXPECT_EQ(top_level_processes(s), (std::vector<int>{10, 11, 20, 30}));
}

TEST(Tiers, ARootInsideAnotherTierStartsItsOwnTier) {
  // 11 is a child of 10, but named as a tier of its own.
  const TierMap tiers = assign_tiers(two_tiers(), {10, 11});
  EXPECT_EQ(tiers, (TierMap{{10, 0}, {11, 1}}));
}

TEST(Tiers, ATiersSamplesHoldOnlyItsProcesses) {
  const Samples s = two_tiers();
  const TierMap tiers = assign_tiers(s, {10, 20});
  const Samples db = tier_samples(s, tiers, 1, 20);
  EXPECT_EQ(db.info.target.spec, "20");
  ASSERT_EQ(db.ticks.size(), s.ticks.size());
  EXPECT_EQ(db.ticks[0].new_pids, (std::vector<int>{20, 21}));
  const Observation obs = build_observation(db.info, db.ticks);
  EXPECT_EQ(obs.target.pids, (std::vector<int>{20, 21}));
  ASSERT_EQ(obs.threads.size(), 2u);
  for (const auto& t : obs.threads) EXPECT_TRUE(t.key.pid == 20 || t.key.pid == 21);
  for (const auto& t : db.ticks[3].sockets) EXPECT_TRUE(t.pid == 20 || t.pid == 21);
}

TEST(Tiers, AConnectionToAnotherTiersListenerLinksThem) {
  const Samples s = two_tiers();
  const auto links = link_tiers(s, assign_tiers(s, {10, 20}));
  ASSERT_EQ(links.size(), 1u);
  EXPECT_EQ(links[0].from, 0u);
  EXPECT_EQ(links[0].to, 1u);
  EXPECT_EQ(links[0].address, "127.0.0.1:5432");  // the wildcard listener takes it
  EXPECT_EQ(links[0].connections, 2);
}

TEST(Tiers, WithoutParentsOnlyTheRootsThemselvesAreTiers) {
  // A recording before schema 3 has no parents: children cannot be placed.
  Samples s = two_tiers();
  for (auto& t : s.ticks) {
    for (auto& p : t.processes) p.ppid.reset();
  }
  EXPECT_EQ(assign_tiers(s, {10, 20}), (TierMap{{10, 0}, {20, 1}}));
}

}  // namespace
}  // namespace chokepoint::model
