#pragma once
// Per-thread accounting of wall time over a diagnosis window, and the raw evidence behind it.
// The sampler feeds intervals in; analysis reads the totals. Plain data, no I/O.

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "model/time_split.h"
#include "model/wait.h"

namespace chokepoint::model {

// A thread's identity: tids are reused, so the start time is part of the key.
struct ThreadKey {
  int pid = 0;
  int tid = 0;
  std::uint64_t start_time_ticks = 0;
  auto operator<=>(const ThreadKey&) const = default;
};

struct ThreadAccount {
  ThreadKey key;
  std::string comm;          // the thread's name
  std::string process_name;  // the process's comm
  TimeSplit split;
  // For each resource, ns by wait detail ("fdatasync /data/x", "mutex 0x..."): the evidence.
  std::array<std::map<std::string, std::int64_t>, kResourceCount> details;
  std::int64_t samples = 0;        // state samples taken
  std::int64_t first_seen_ns = 0;  // monotonic
  std::int64_t last_seen_ns = 0;
  std::uint64_t majflt = 0;  // major faults during the window
  // Time blocked on block IO during the window, from delay accounting (/proc stat field 42):
  // exact, but only for tasks started after kernel.task_delayacct was switched on; 0 otherwise.
  std::int64_t blkio_delay_ns = 0;
  // On-CPU kernel time spent on disk or memory work (inside fsync, in page faults and reclaim),
  // moved from on_cpu to disk or memory. It still used a core.
  std::int64_t kernel_work_ns = 0;
  // Off-CPU time the thread was held in each model::Hold state (stopped, traced, frozen, in
  // vfork), indexed by the enum; also counted in split's idle. [kNone] stays 0.
  std::array<std::int64_t, kHoldCount> held_ns{};
  // The exact mode: the lock time by (system call, wait object: the futex word, the fd) as the
  // kernel summed it in the window, before scaling to split[kLock] (model::ExactSplit); empty
  // in the sampled split. The wait-for graph (model/wait_graph.h) says whose hand-off each is.
  std::map<std::pair<long, std::uint64_t>, std::int64_t> lock_objects_ns;
  // The exact mode: the idle time by (system call, wait object), as lock_objects_ns; the wait-for
  // graph moves the part that waited for another thread's hand-off (model::attribute_handoffs).
  std::map<std::pair<long, std::uint64_t>, std::int64_t> idle_objects_ns;
  // Of split, the time this thread waited for other target threads' hand-offs (a reply's futex, a
  // pipe), divided as those threads spent theirs (model::attribute_handoffs); it was idle. Its own
  // use of each resource is split minus this. Empty without the wait-for graph.
  TimeSplit waited_for;
};

// One interval of one thread: exact counters from schedstat plus the wait it was seen in.
struct Interval {
  std::int64_t wall_ns = 0;
  std::int64_t on_cpu_ns = 0;    // schedstat run_ns delta
  std::int64_t cpu_wait_ns = 0;  // schedstat run_delay_ns delta
  // Of on_cpu_ns, the part spent in the kernel (stime share) doing disk or memory work: inside a
  // disk sync syscall (fsync burns CPU in the filesystem), or in page faults and reclaim.
  std::int64_t kernel_work_ns = 0;
  Resource kernel_work_resource = Resource::kDisk;  // kDisk or kMemory
  WaitClass wait;                                   // what the off-CPU remainder was spent on
  // Where the run-queue time goes: kCpuWait, or kLock for a thread that was queued on a mutex at
  // both ends of the interval (woken when the lock was released, it waited for a core, found the
  // lock taken again and went back to sleep: the hand-off is part of the lock's cost).
  Resource cpu_wait_resource = Resource::kCpuWait;
  std::uint64_t majflt_delta = 0;
};

// The counter surplus carried from one of a thread's intervals to the next (carry_over).
struct Carry {
  std::int64_t on_cpu_ns = 0;
  std::int64_t cpu_wait_ns = 0;
};
// At most this much surplus is carried; more says the counters and the clock disagree for another
// reason, and the excess is dropped as add_interval's clamp drops it.
inline constexpr std::int64_t kMaxCarryNs = 1'000'000'000;

// A thread's schedstat is read a little after (or before) its tick's clock, and the later a read
// is in one interval, the more that interval's counters exceed its wall time and the next falls
// short of its own. Clamping each interval alone loses the surplus and fills the next interval's
// gap with idle ("short waits between samples"), so a thread that never blocked showed idle, more
// of it the busier the machine. carry_over adds the surplus of the thread's last interval to iv's
// counters, cuts them to iv's wall time (on-CPU first, as add_interval clamps), and keeps what
// still exceeds it in `carry` for the next interval (up to kMaxCarryNs each).
void carry_over(Interval& interval, Carry& carry);

// Adds one interval to a thread's account. Clamps so that on_cpu + cpu_wait never exceeds wall
// time (counters and clocks are read at slightly different instants) and the split sums to the
// wall time exactly.
void add_interval(ThreadAccount& account, const Interval& interval);

// The off-CPU remainder of an interval as add_interval counts it: its ns (wall time less the
// clamped on-CPU and run-queue time) and the resource it goes to.
std::int64_t off_cpu_ns(const Interval& interval);
Resource off_cpu_resource(const Interval& interval);

// A wait as the sampled split names it: resource, detail and hold state.
using WaitKey = std::tuple<Resource, std::string, Hold>;
// The same wait with its detail borrowed, to look a WaitKey up without copying the detail.
using WaitKeyView = std::tuple<Resource, std::string_view, Hold>;

// Orders WaitKeys and WaitKeyViews together (transparent), each compared as a WaitKeyView: a
// tuple of std::string against one of std::string_view does not compile with every standard
// library (clang with libstdc++ 12 rejects std::less<>'s mixed tuple comparison).
struct WaitKeyLess {
  using is_transparent = void;
  static WaitKeyView view(const WaitKey& k) {
    return {std::get<0>(k), std::get<1>(k), std::get<2>(k)};
  }
  static const WaitKeyView& view(const WaitKeyView& k) { return k; }
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    return view(a) < view(b);
  }
};

// The sampled split's ratio estimator of a thread's off-CPU time between reads.
// A read sees one instant of the thread. An interval in which the thread ran holds waits that
// began and ended between its two reads, and the read that closes it sees one of them, or none
// when it finds the thread running. add_interval charges the whole off-CPU remainder to the wait
// that read saw (to the last wait seen before it when it saw none, and to idle "short waits
// between samples" when none was ever seen), so one read decides up to a whole interval:
// - the first interval of a window is as long as the sampler's first gap (1 s with the task
//   iterator, which parks a thread from its first read until the next iterator read): a quarter
//   of a busy thread's off-CPU time in a 3 s window, decided by one read per thread, taken at
//   the same instant for every thread (a pool's threads wait on one journal commit together);
// - the last wait seen stands for every interval after it whose closing read finds the thread
//   running, so one read of a rare wait (an event loop's epoll_wait) weighs like many.
// The ratio estimator pools that time instead, per thread and window: the off-CPU remainder of
// every interval that ends in a read of a thread that ran (and the quiet time after a read that
// found it running, spent in a wait it started unseen), divided among the waits the window's
// reads found it in, in proportion to their number. Each read lands in a wait with the chance of
// that wait's share of the time between reads, so every read of the thread counts once.
// Time a thread spent in the wait a read saw, without running since (quiet time), is not pooled:
// it was seen.
struct WaitRatio {
  // Transparent (WaitKeyLess): found by a WaitKeyView, so a lookup copies no detail.
  // The pooled time by the wait add_interval charged it to (divide_by_reads takes it back).
  std::map<WaitKey, std::int64_t, WaitKeyLess> charged_ns;
  // The window's reads that closed an interval and found the thread off-CPU, by wait.
  std::map<WaitKey, std::int64_t, WaitKeyLess> reads;
};

// Pools the off-CPU remainder of `interval` (as add_interval counted it).
void pool_off_cpu(WaitRatio& ratio, const Interval& interval);

// Counts a read that found the thread off-CPU in `wait` (wait.resource is not kOnCpu).
void count_read(WaitRatio& ratio, const WaitClass& wait);

// Moves the pooled time from the waits add_interval charged it to onto ratio.reads' waits, in
// proportion to their reads (the remainder of the rounding to the wait read most often): split,
// details and held_ns alike; the thread's total and its on-CPU and run-queue time stay. Without
// a read that found the thread off-CPU the pooled time stays where it was charged.
// REQUIRES: every interval pooled was added to `account` by add_interval, and nothing has moved
// account's off-CPU time since (the exact mode replaces it instead: this is for the sampled split).
void divide_by_reads(ThreadAccount& account, const WaitRatio& ratio);

// The time a thread was held, in all hold states together.
std::int64_t held_total_ns(const ThreadAccount& account);

// The sum of all threads' splits.
TimeSplit total_split(const std::vector<ThreadAccount>& threads);

// For one resource, the wait details summed over threads, largest first.
std::vector<std::pair<std::string, std::int64_t>> top_details(
    const std::vector<ThreadAccount>& threads, Resource r, std::size_t limit);

}  // namespace chokepoint::model
