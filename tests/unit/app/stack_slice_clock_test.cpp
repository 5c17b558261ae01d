// How `chokepoint record --stacks` cuts its slices (app/stack_recorder.h run_slices), with fake
// sources that take the time a real one would: every slice is read before it is cut, also the one
// whose length a slow cut already used up, and the slices follow each other without gaps.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "app/stack_recorder.h"
#include "util/clock.h"

namespace chokepoint::app {
namespace {

constexpr std::int64_t kMs = util::kNsPerMs;

struct Event {
  bool cut = false;
  std::int64_t at_ns = 0, from_ns = 0, to_ns = 0;
  std::int64_t read_ns = 0;  // a read's length
};

void sleep_ns(std::int64_t ns) {
  std::this_thread::sleep_for(std::chrono::nanoseconds(ns));
}

// Slices of 100 ms read in steps of at most 50 ms (a read of n ns takes n ns, as the perf rings'
// drain does); the cut numbered slow_cut takes 300 ms (symbolizing beside CPU hogs); stop after
// `cuts` cuts.
std::vector<Event> slices(int slow_cut, int cuts) {
  std::vector<Event> events;
  std::atomic<bool> stop{false};
  int done = 0;
  run_slices(
      100 * kMs, 50 * kMs, stop,
      [&](std::int64_t ns) {
        events.push_back({.at_ns = util::monotonic_ns(), .read_ns = ns});
        sleep_ns(ns);
      },
      [&](std::int64_t from_ns, std::int64_t to_ns) {
        events.push_back(
            {.cut = true, .at_ns = util::monotonic_ns(), .from_ns = from_ns, .to_ns = to_ns});
        if (++done == slow_cut) sleep_ns(300 * kMs);
        if (done == cuts) stop.store(true);
      });
  return events;
}

TEST(StackSliceClock, TheSliceAfterASlowCutIsReadBeforeItIsCut) {
  const auto events = slices(1, 3);
  std::vector<Event> cuts;
  bool read_since_cut = false;
  for (const auto& e : events) {
    if (!e.cut) {
      read_since_cut = true;
      continue;
    }
    // Beside 4 CPU hogs the slice after a 3.8 s cut was cut unread: no stack and nothing lost.
    EXPECT_TRUE(read_since_cut) << "cut " << cuts.size() + 1 << " had no read since the last one";
    read_since_cut = false;
    cuts.push_back(e);
  }
  ASSERT_EQ(cuts.size(), 3U);
  // The second slice covers the slow cut's 300 ms, and it was read after that cut ended.
  EXPECT_GE(cuts[1].to_ns - cuts[1].from_ns, 300 * kMs);
  for (std::size_t i = 1; i < cuts.size(); ++i) {
    EXPECT_EQ(cuts[i].from_ns, cuts[i - 1].to_ns) << "a gap before slice " << i + 1;
  }
}

TEST(StackSliceClock, SlicesLastTheirLengthAndAreReadInSteps) {
  const auto events = slices(0, 2);
  std::vector<Event> cuts;
  std::vector<std::int64_t> reads;  // the first slice's
  for (const auto& e : events) {
    if (e.cut) {
      cuts.push_back(e);
    } else if (cuts.empty()) {
      reads.push_back(e.read_ns);
    }
  }
  ASSERT_EQ(cuts.size(), 2U);
  // Steps of at most 50 ms, then the read at the end (0: what the sources hold).
  ASSERT_GE(reads.size(), 2U);
  EXPECT_EQ(reads.back(), 0);
  for (std::size_t i = 0; i + 1 < reads.size(); ++i) {
    EXPECT_GT(reads[i], 0);
    EXPECT_LE(reads[i], 50 * kMs);
  }
  for (const auto& c : cuts) {
    EXPECT_GE(c.to_ns - c.from_ns, 100 * kMs);
    EXPECT_LT(c.to_ns - c.from_ns, 2000 * kMs);  // bounded: a loaded machine's late wake-ups
  }
}

}  // namespace
}  // namespace chokepoint::app
