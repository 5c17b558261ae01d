#pragma once
// Internal to src/model/builder*.cpp: the state behind model::ObservationBuilder (builder.h), what
// it keeps per thread, process and wait-for edge between ticks, and the Builder class whose
// members are defined along its concepts:
// - builder.cpp: the window and its cuts (tick, the process and system parts of a tick, finish,
//   cut_after) and builder.h's public classes;
// - builder_threads.cpp: the thread deltas (each thread sample's interval, quiet time in the last
//   wait, threads that ended, finding a tick's threads);
// - builder_exact.cpp: the exact split's feed (the kernel's per-thread sums and state per tick);
// - builder_edges.cpp: the wait-for edges (their sums at the window's start and last, the
//   window's graph);
// - builder_system.cpp: system rates (summarize_system) and the sources of a window.
// Not for use outside the builder: one Builder serves one caller, on one thread.

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "model/account.h"
#include "model/builder_edges.h"
#include "model/exact_split.h"
#include "model/observation.h"
#include "model/samples.h"
#include "model/wait.h"

namespace chokepoint::model::builder_internal {

struct ThreadTrack {
  ThreadAccount account;
  std::uint64_t run_ns = 0, run_delay_ns = 0;
  std::uint64_t majflt = 0, blkio_ns = 0, utime_ns = 0, stime_ns = 0;
  std::int64_t last_ns = 0;  // the last read that the account covers
  Carry carry;               // counters read late: the last interval's surplus (carry_over)
  WaitClass last_wait;
  bool last_in_disk_sync = false;
  bool last_mutex_wait = false;
  bool last_read_running = false;  // the last read found it running: no wait seen
  WaitRatio ratio;                 // the window's time between reads, pooled (divide_by_reads)
  ExactSplit exact;                // the exact mode's sums and the sampler's classes for them
};

struct ProcessTrack {
  std::string name;
  bool seen_in_window = false;
  bool has_status = false;  // a read of /proc/PID/status in the window
  std::optional<ProcessIo> io_first{}, io_last{};
  std::uint64_t rss_first = 0, rss_last = 0, rss_max = 0;
  std::uint64_t anon_first = 0, anon_last = 0, anon_max = 0;
  std::optional<GroupDelays> delays_first{}, delays_last{};
  std::uint64_t majflt = 0;
  std::set<int> tids{};  // the live threads, and those that ended in the window
  std::optional<std::uint64_t> open_fds{}, fd_soft_limit{};
  std::map<std::uint64_t, SocketSample> sockets_first{}, sockets_last{};  // by inode
  // What the sampler saw the process's fds and futexes to be (the exact mode classes by it).
  // Held by pointer: ThreadTrack's ExactSplit keeps its address.
  std::unique_ptr<ExactSplit::Process> waits = std::make_unique<ExactSplit::Process>();
};

class Builder {
 public:
  Builder(const RecordingInfo& info, std::int64_t start_ns, std::int64_t end_ns)
      : info_(info), start_(start_ns), end_(end_ns) {}
  // The window runs from the first tick to the last one added.
  explicit Builder(const RecordingInfo& info)
      : info_(info), start_(0), end_(std::numeric_limits<std::int64_t>::max()), open_(true) {}

  // False (and the tick ignored) past the window's end.
  bool tick(const Tick& t);
  // keep_threads: every thread goes on with a fresh account (cut_after); otherwise the builder is
  // spent.
  Observation finish(bool keep_threads = false);
  // The observation of [start, last.at_ns], then the builder goes on with [last.at_ns, end]
  // with every thread's and process's starting point kept and the window's own sums cleared.
  Observation cut_after(const Tick& last);

 private:
  bool in_window(std::int64_t at) const { return at >= start_ && at <= end_; }
  // Quiet time [from, to] of a thread, in the wait it was last seen in, cut to the window.
  void add_quiet(ThreadTrack& t, std::int64_t from, std::int64_t to);
  void thread_sample(const ThreadSample& s);
  // A thread read under a new name: its account's from now on (and its process's, for a main
  // thread).
  void renamed(ThreadTrack& t, const std::string& comm);
  void end_thread(const ThreadEnd& e);
  void process_sample(const ProcessSample& s);
  // What a tick adds beside its thread samples: processes, sockets, system, collector.
  void window_parts(const Tick& t);
  // The exact mode's sums of a tick; its state and edges only in the first of the tick's two
  // passes.
  void exact_sample(const Tick& t, bool first_pass);
  // The wait-for edges' deltas over the window, in their keys' order.
  WaitGraph window_graph();
  // Brings edge_order_ up to the edges met since it was last sorted.
  void order_edges();
  // The sums of edge `e`, added when new.
  EdgeSums& edge_sums(const WakeEdge& e);
  // Sizes the edges' index to `slots` (a power of two) and fills it from edges_.
  void index_edges(std::size_t slots);
  using ThreadMap = std::map<std::pair<int, int>, ThreadTrack>;
  // The thread `key`, or threads_.end(). A tick gives its threads (and exact sums) in threads_'
  // order (the sampler's and store/'s): the next one is found a step or two on from `cursor`
  // (where the last was), not by a lookup; `cursor` is left at the thread, or where it would be.
  ThreadMap::iterator find_thread(const std::pair<int, int>& key, ThreadMap::iterator& cursor);
  // Closes a thread's account for the window: the exact split replaces the sampled one, or,
  // where the kernel's sums do not, the time between reads is divided by the window's reads
  // (divide_by_reads); the pool starts over for the next window.
  void close_account(ThreadTrack& t);

  const RecordingInfo& info_;
  std::int64_t start_, end_;
  bool open_ = false;
  bool any_tick_ = false;
  std::int64_t last_at_ = 0;
  ThreadMap threads_;
  std::vector<ThreadAccount> finished_;
  // Threads that ended in the window, (pid, tid): their processes' tids lose them at the cut.
  std::vector<std::pair<int, int>> ended_in_window_;
  std::map<int, ProcessTrack> processes_;
  std::set<int> pids_;
  std::int64_t in_disk_sync_ = 0;  // threads whose last wait is a disk sync
  std::int64_t lock_behind_disk_ns_ = 0;
  std::uint64_t syscall_denied_ = 0;
  double runnable_sum_ = 0;
  int runnable_count_ = 0;
  std::optional<SystemSample> sys_first_, sys_last_;
  std::optional<TcpTableSample> tcp_first_, tcp_last_;  // the dumps inside the window
  std::optional<ShmSample> shm_last_;
  std::optional<RlimitSample> rlimits_last_;
  std::optional<CollectorSample> collector_before_, collector_last_;
  // The exact mode: its samples at or before the window's start and in it, and the threads whose
  // split it gave.
  std::optional<ExactState> exact_before_, exact_first_, exact_last_;
  // Why the file calls were not timed by fentry: in the first and closing ticks' states only, so
  // kept across windows.
  std::string file_hook_problem_;
  int exact_threads_ = 0;
  // Its wait-for edges, cumulative: at or before the window's start, and the last; in the order
  // first met. Found by a flat index (a replay meets every changed edge of every tick, and a
  // hashed node per edge cost a report a sixth of its time): open addressing with linear
  // probing over a power-of-two table at most half full, each slot an edge's position + 1 (0:
  // empty).
  std::vector<EdgeEntry> edges_;
  std::vector<std::uint32_t> edge_slots_;
  // Positions in edges_ in their keys' order (a prefix of them: the edges met since are sorted
  // in by order_edges), so that a window's graph is not sorted again at every cut.
  std::vector<std::uint32_t> edge_order_;
  // A thread was first seen in the tick being added (its exact sums are taken again).
  bool new_thread_in_tick_ = false;
  ThreadMap::iterator thread_cursor_;  // find_thread's, over a tick's thread samples
  // After cut_after: system rates are over the time between the two reads (the first may be
  // before the window), and a window with no read of its own has none.
  bool system_span_ = false;  // the one before collector_last_, for cut_after
  bool exited_ = false;
};

// Clears `a`, whose window was moved to `closed`, for the thread's next window: its identity
// (key, names, when first and last seen) is kept, every sum and detail goes (builder.cpp).
void restart_account(ThreadAccount& a, const ThreadAccount& closed);
// A process's summary over the window (builder.cpp).
ProcessSummary summarize_process(int pid, const ProcessTrack& p, double secs);
// The sources of the sampler's own reads over a window (builder_system.cpp).
std::vector<Source> collector_sources(const Observation& obs, const CollectorSample& c,
                                      std::uint64_t syscall_denied, std::int64_t interval_ns);
// Which time split ran and why, from the exact mode's states at the window's ends
// (builder_exact.cpp).
Source exact_source(const ExactState& first, const ExactState& last, const Observation& obs,
                    int exact_threads, const std::string& file_hook_problem);
// Whether the window has a wait-for graph, with its edges and the time handed off
// (builder_edges.cpp).
Source wait_graph_source(const ExactState& last, std::size_t edges, std::int64_t handed_ns);

}  // namespace chokepoint::model::builder_internal
