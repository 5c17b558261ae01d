// A timed wait's timeouts are not a hand-off (issue 15): a thread polling with 1 ms timed
// condition-variable waits, beside a spinning thread on the same CPU (timed_poller.c), is woken by
// its timer each time, while the spinner runs. The tracepoint runs in the spinner's context; the
// wait-for graph must see the timer, not the spinner, so the poller's wait is not given to the
// spinner's CPU state and no chain says "poller waits for spinner". Before stateacct.bpf.c told
// interrupts apart (src/bpf/task_context.h) it did: "thread 'poller' waits for thread 'spinner',
// which is on CPU 63% of the time (... 31% of busy time given to its state)".
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "support/background.h"
#include "support/cli.h"

namespace chokepoint {
namespace {

using test_support::Background;

TEST(TimedWaits, APollersTimeoutsAreNotAHandOffToTheThreadTheTimerInterrupted) {
  // The wait-for graph is the exact mode's (eBPF), which needs root.
  if (geteuid() != 0) GTEST_SKIP() << "needs root: the wait-for graph is loaded with eBPF";
  auto poller = Background::start(TIMED_POLLER, {});
  ASSERT_TRUE(poller) << poller.error().message;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto r =
      test_support::run_chokepoint({"diagnose", "--pid", std::to_string(poller->pid()), "-d", "2s",
                                    "--mode", "exact", "--no-stacks", "--no-probes", "--json"},
                                   60);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  const auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.stdout_text;
  // The wait-for graph ran (not a fallback without edges).
  ASSERT_TRUE(j["sources"].contains("wait-for graph")) << j["sources"].dump(1);
  ASSERT_TRUE(j["sources"]["wait-for graph"]["available"].get<bool>())
      << j["sources"]["wait-for graph"].dump();
  int poller_tid = 0;
  for (const auto& t : j["threads"]) {
    if (t["comm"] != "poller") continue;
    poller_tid = t["tid"].get<int>();
    // Its wait was given to nobody.
    EXPECT_FALSE(t.contains("waited_for_s")) << t.dump();
    // It waited for its timeouts most of the window (idle: a wait for work that never came).
    EXPECT_GT(t["time_split"]["idle"].get<double>(), 0.3) << t.dump();
  }
  ASSERT_NE(poller_tid, 0) << j["threads"].dump(1);
  for (const auto& b : j["bottlenecks"]) {
    if (!b.contains("chains")) continue;
    for (const auto& c : b["chains"]) {
      for (const auto& w : c["waiters"]) {
        EXPECT_NE(w["tid"].get<int>(), poller_tid) << "a chain from the poller: " << c.dump();
      }
    }
  }
}

// A thread on a 10 ms cycle (cycle_waiter.c: 3 ms of each in clock_nanosleep, the rest in
// select), read by the sampler alone. Its ticks come every 100 ms, ten cycles: read on their grid,
// every read fell at the same phase of the cycle and the window said sleep 0.00 or 0.99 (aliasing).
// Read at a point of each interval (collect/sampler/tick_schedule.h), the reads see each phase as
// often as it lasts: sleep about 0.32, with the noise of 40 reads (a standard deviation of 0.08;
// 100 windows of 2 s read a mean of 0.30 and none under 0.09, bench/diagnose/sampled_phase.sh).
TEST(TimedWaits, AThreadOnACycleThatDividesTheTickIsReadAtEveryPhaseOfIt) {
  auto waiter = Background::start(CYCLE_WAITER, {});
  ASSERT_TRUE(waiter) << waiter.error().message;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (int window = 0; window < 2; ++window) {
    auto r = test_support::run_chokepoint(
        {"diagnose", "--pid", std::to_string(waiter->pid()), "-d", "4s", "--mode", "sample",
         "--no-stacks", "--no-probes", "--json"},
        60);
    ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
    const auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.stdout_text;
    const double sleep = j["time_split"]["sleep"].get<double>();
    const double idle = j["time_split"]["idle"].get<double>();
    EXPECT_GT(sleep, 0.05) << j["time_split"].dump();
    EXPECT_LT(sleep, 0.65) << j["time_split"].dump();
    EXPECT_GT(sleep + idle, 0.95) << j["time_split"].dump();
  }
}

}  // namespace
}  // namespace chokepoint
