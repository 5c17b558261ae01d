// TargetResolver (collect/sampler/target.h) on real processes this test starts: a pid target's
// process is followed by its pidfd, and one that exits is gone at the next look, reaped or not.
#include "collect/sampler/target.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "support/spawn.h"

namespace chokepoint::collect::sampler {
namespace {

TargetSpec pid_target(pid_t pid) {
  TargetSpec spec;
  spec.kind = TargetSpec::Kind::kPid;
  spec.pid = pid;
  return spec;
}

// Waits (at most 5 s) until /proc says the process is a zombie: it has exited, not reaped.
bool wait_zombie(pid_t pid) {
  const procfs::ProcFs proc("/proc");
  for (int i = 0; i < 500; ++i) {
    if (auto st = proc.read_task_stat(pid, pid); st && st->state == 'Z') return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST(TargetResolver, FollowsAPidUntilItExitsReapedOrNot) {
  auto child = test_support::spawn_process({"sleep", "30"});
  ASSERT_TRUE(child) << child.error().message;
  const procfs::ProcFs proc("/proc");
  TargetResolver resolver(pid_target(*child), proc);
  for (int look = 0; look < 3; ++look) {  // the first look opens the pidfd, the others poll it
    auto pids = resolver.pids();
    ASSERT_TRUE(pids) << pids.error().message;
    EXPECT_EQ(*pids, std::vector<int>{*child}) << "look " << look;
  }
  // Exited but not reaped (a zombie, as resolve_pids takes it: gone).
  ASSERT_EQ(::kill(*child, SIGKILL), 0);
  ASSERT_TRUE(wait_zombie(*child));
  auto gone = resolver.pids();
  ASSERT_TRUE(gone) << gone.error().message;
  EXPECT_TRUE(gone->empty());
  auto again = resolve_pids(pid_target(*child), proc);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->empty());
  // Reaped: still gone (unless another process took the pid, as resolve_pids would find too).
  int status = 0;
  ASSERT_EQ(::waitpid(*child, &status, 0), *child);
  auto reaped = resolver.pids();
  ASSERT_TRUE(reaped);
  EXPECT_EQ(*reaped, *resolve_pids(pid_target(*child), proc));
}

TEST(TargetResolver, TargetsWithoutAPidfdResolveAsResolvePids) {
  // A pid with its descendants, and the host: resolve_pids at every look.
  auto child = test_support::spawn_process({"sleep", "30"});
  ASSERT_TRUE(child) << child.error().message;
  const procfs::ProcFs proc("/proc");
  TargetSpec with_children = pid_target(getpid());
  with_children.children = true;
  TargetResolver resolver(with_children, proc);
  auto pids = resolver.pids();
  ASSERT_TRUE(pids) << pids.error().message;
  EXPECT_NE(std::find(pids->begin(), pids->end(), *child), pids->end());
  EXPECT_NE(std::find(pids->begin(), pids->end(), getpid()), pids->end());
  ::kill(*child, SIGKILL);
  int status = 0;
  ::waitpid(*child, &status, 0);
  pids = resolver.pids();
  ASSERT_TRUE(pids);
  EXPECT_EQ(std::find(pids->begin(), pids->end(), *child), pids->end());
  TargetResolver host(TargetSpec{}, proc);
  auto all = host.pids();
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(std::find(all->begin(), all->end(), getpid()), all->end());  // never itself
  EXPECT_NE(std::find(all->begin(), all->end(), 1), all->end());
}

}  // namespace
}  // namespace chokepoint::collect::sampler
