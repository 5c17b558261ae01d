#pragma once
// The wait-for graph of a window (issue 15, after wPerf, OSDI '18): who woke whom out of which
// blocked wait, from the exact mode's in-kernel edge counts (src/bpf/stateacct.bpf.c). With it a
// wait is told apart as
// - contention: several threads wait on one object and the object's holder changes among them
//   (the waiters wake each other: a mutex);
// - a hand-off: one waker serves the waiters (a reply semaphore, a join, a job queue); the waiters'
//   time belongs to what that waker was doing, followed along the chain (the waker may itself wait
//   for another thread) to a depth limit, to the root thread and its own state.
// Pure functions; the builder fills WaitGraph, analysis/ reads it.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/account.h"
#include "model/time_split.h"

namespace chokepoint::model {

// Who a waker is. An interrupt is kInterrupt on an idle CPU, and for a futex wait, a sleep or a
// file call (a timeout, a device's completion) also while a thread ran; a socket's softirq taken
// while a thread ran is seen as that thread (a loopback send delivers that way, and the sender
// is the waker there): stateacct.bpf.c.
enum class WakerKind : std::uint8_t {
  kThread = 0,    // a user thread
  kKernelThread,  // kworker, ksoftirqd, ...
  kInterrupt,     // a timer or a device (waker tid 0)
};
inline constexpr std::size_t kWakerKindCount = 3;

// One edge: wakee_tid, blocked in (syscall_nr, object: the call's first argument, the futex word
// or the fd), was woken `count` times by waker_tid (of process waker_pid, maybe outside the
// target), and those wakeups ended `ns` of its blocked time. In model::ExactSample: cumulative
// since the accounting started; in WaitGraph: within the window.
struct WakeEdge {
  int waker_pid = 0;
  int waker_tid = 0;
  WakerKind waker_kind = WakerKind::kThread;
  int wakee_pid = 0;
  int wakee_tid = 0;
  long syscall_nr = -1;
  std::uint64_t object = 0;
  std::uint64_t ns = 0;
  std::uint64_t count = 0;
};

struct WaitObject;

struct WaitGraph {
  std::vector<WakeEdge> edges;  // the window's edges with ns or count > 0
  // wait_objects(*this), kept by whoever built the graph (model::Builder does, and changes no
  // edge after), so that attribute_handoffs, lock_handoffs and idle_handoffs classify the
  // objects once between them, not once each (a report classifies every column's). Null:
  // each computes them.
  std::shared_ptr<const std::vector<WaitObject>> objects;
};

enum class WaitShape : std::uint8_t {
  kHandoff,     // threads that do not wait on it (one, or a few workers) serve the waiters
  kContention,  // several waiters, woken mostly by each other: the holder changes among them
  kMixed,       // neither
};
std::string_view wait_shape_name(WaitShape shape);

// The share of an object's blocked time that wakers which do not wait on it must have ended for a
// hand-off (the chain follows the main one of them).
inline constexpr double kHandoffWakerShare = 0.8;
// The share of an object's blocked time ended by its own waiters for contention.
inline constexpr double kContentionWaiterShare = 0.5;
// How far a chain is followed.
inline constexpr int kChainDepthLimit = 4;

// One wait object of one process (an object is process-wide: a futex word, an fd).
struct WaitObject {
  int pid = 0;
  long syscall_nr = -1;
  std::uint64_t object = 0;
  double ns = 0;             // blocked time ended by wakeups in the window
  std::vector<int> waiters;  // tids, ascending
  WaitShape shape = WaitShape::kMixed;
  int waker_pid = 0;  // the main waker (most ns)
  int waker_tid = 0;
  WakerKind waker_kind = WakerKind::kThread;
  double waker_share = 0;  // of ns
  std::map<int, double> ns_by_waiter;
  // The blocked time each user thread that woke it ended, by (pid, tid).
  std::map<std::pair<int, int>, double> ns_by_thread_waker;
};

// A target thread that woke others in the window but has no time of its own there: it started
// and ended between two polls of the sampler (a joined worker that lives for one job; the join
// wakes its joiner from the thread-id word the kernel clears at exit), so schedstat never gave
// its time. What it did is inferred from the graph alone: `split.total_ns()` is the longest
// blocked time one of its wakeups ended (a join: the joiner waited for it for about its whole
// life), of which the time it was itself blocked (the edges into it: a futex word of contention
// is lock, one of a hand-off idle; fsync, fdatasync, msync and sync_file_range are disk; sleeps
// are sleep; the rest idle) is what it waited for, and the rest it was on a CPU or runnable
// (counted on_cpu: only schedstat tells the two apart). Its blocks on an object its joiner (the
// thread whose wait gave its life) woke it from are left out: that wait, however it ended (the
// joiner's start signal or broadcast, a timeout), came before the joiner's wait for it began.
struct ShortLivedThread {
  int pid = 0;
  int tid = 0;
  std::string comm;  // empty unless the sampler saw it once; observed text: escape it
  TimeSplit split;
};

// The short-lived threads of `threads`' processes in `graph`: user-thread wakers that are not in
// `threads`, or are with no time in their split. Sorted by (pid, tid).
std::vector<ShortLivedThread> short_lived_threads(const WaitGraph& graph,
                                                  const std::vector<ThreadAccount>& threads);

// Every object of the graph, classified. Sorted by (pid, syscall, object).
std::vector<WaitObject> wait_objects(const WaitGraph& graph);

// One hop: `tid` waits on (syscall_nr, object), a hand-off served by the next step's thread.
struct ChainStep {
  int pid = 0;
  int tid = 0;
  std::string comm;  // observed text: escape for the context
  long syscall_nr = -1;
  std::uint64_t object = 0;
};

// From a waiting thread to the root thread it waits for.
struct WaitChain {
  std::vector<ChainStep> steps;  // the waiter first; at least one
  int root_pid = 0;
  int root_tid = 0;
  std::string root_comm;  // empty when the root is not a target thread
  WakerKind root_kind = WakerKind::kThread;
  // The root thread's own largest state in the window (its split: on_cpu, disk, ...) and that
  // state's share of its time; unknown (nullopt) when the root is not a target thread.
  std::optional<Resource> root_resource;
  double root_share = 0;
  bool depth_limited = false;  // the chain went on beyond kChainDepthLimit
  // Where a root on a CPU runs: its hottest own-code function in on-CPU stacks taken after the
  // window ("Stage::run (pipeline.cpp:88)", observed text) and that function's share of the
  // root's samples. Empty when not known (no stacks, or the root is not on a CPU).
  std::string root_function;
  double root_function_share = 0;
  // The root is not one thread but the short-lived threads (ShortLivedThread) that served the
  // waiter's object, this many; root_tid is the one that ended the most of its wait, and
  // root_resource and root_share are their summed inferred split's. 0: a thread measured itself.
  int root_short_lived = 0;
  // That summed inferred split (root_short_lived > 0; empty otherwise): the group's time is
  // rarely one state, and the rules weigh its busy part.
  TimeSplit root_split;
};

// The chain from thread (pid, tid) waiting on (syscall_nr, object), a hand-off in `objects`: the
// waker, and while the waker itself spends most of its time off the CPU in a hand-off wait, its
// waker, up to kChainDepthLimit hops (a cycle stops it too). `threads` give names and states.
// nullopt when the object is not a hand-off.
// A root among `short_lived` (short_lived_threads) ends the chain with the short-lived threads
// that served the object as its root (WaitChain::root_short_lived).
std::optional<WaitChain> follow_chain(const std::vector<WaitObject>& objects,
                                      const std::vector<ThreadAccount>& threads, int pid, int tid,
                                      long syscall_nr, std::uint64_t object,
                                      const std::vector<ShortLivedThread>& short_lived = {});

// The target's lock wait that is a hand-off to a root thread in `root` state.
struct Handoff {
  WaitChain chain;     // a representative chain (of the waiter with the most such wait)
  double lock_ns = 0;  // lock_handoffs: the waiters' lock time (split) on hand-off objects
  double idle_ns = 0;  // idle_handoffs: the waiters' idle time on hand-off objects
  int waiters = 0;     // threads with such wait
};

// The lock time (ThreadAccount::split[kLock], divided by lock_objects_ns) of `threads` that is a
// hand-off, by root thread, largest first.
std::vector<Handoff> lock_handoffs(const WaitGraph& graph,
                                   const std::vector<ThreadAccount>& threads);
// The idle time attribute_handoffs gave to the wakers' states (ThreadAccount::waited_for, divided
// by the thread's hand-off objects in idle_objects_ns) of `threads`, by root thread, largest
// first: the chains behind it. Empty before attribute_handoffs ran.
std::vector<Handoff> idle_handoffs(const WaitGraph& graph,
                                   const std::vector<ThreadAccount>& threads);

// The design's time split for waits that belong to someone else: a thread's idle time on a
// hand-off (ThreadAccount::idle_objects_ns: a futex word only it waited on in the window, or a
// read of a pipe or an eventfd, a future, a join, a reply's condvar) that a target thread ended
// is divided as that waker spent its own time, and chains resolve (the waker's split includes
// what it waited for in turn; a cycle settles after kAttributionRounds rounds, as wPerf's knots).
// Time ended by anything else (a timeout, a signal, a thread outside the target) stays idle, and
// so does a pool parked on one word (two or more waiters) unless only short-lived threads woke it
// (joins: a thread-id word is reused by the next thread on a cached stack); time a short-lived
// thread ended (ShortLivedThread) is divided as its inferred split. Moves it in each thread's split
// and details (the waker's evidence, rescaled) and records it in ThreadAccount::waited_for; the
// total of every split stays. Returns the time moved, ns.
inline constexpr int kAttributionRounds = 8;
std::int64_t attribute_handoffs(const WaitGraph& graph, std::vector<ThreadAccount>& threads);

}  // namespace chokepoint::model
