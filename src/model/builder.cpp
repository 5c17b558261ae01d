#include "model/builder.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "model/exact_split.h"
#include "util/counters.h"

namespace chokepoint::model {
namespace {

// CPU a major fault costs in the kernel, reclaim included: about 80 µs measured on the lab's
// paging scenario on this VM (stime / majflt); 50 µs is the conservative bound we attribute.
constexpr double kMajorFaultCpuNs = 50'000;

std::int64_t delta_ns(std::uint64_t before, std::uint64_t after) {
  return static_cast<std::int64_t>(util::saturating_delta(before, after));
}

struct ThreadTrack {
  ThreadAccount account;
  std::uint64_t run_ns = 0, run_delay_ns = 0;
  std::uint64_t majflt = 0, blkio_ns = 0, utime_ns = 0, stime_ns = 0;
  std::int64_t last_ns = 0;  // the last read that the account covers
  Carry carry;               // counters read late: the last interval's surplus (carry_over)
  WaitClass last_wait;
  bool last_in_disk_sync = false;
  bool last_mutex_wait = false;
  ExactSplit exact;  // the exact mode's sums and the sampler's classes for them
};

// A wait-for edge's identity, hashed flat (a replay meets every edge of every tick).
struct EdgeKey {
  int waker_pid = 0, waker_tid = 0;
  WakerKind waker_kind = WakerKind::kThread;
  int wakee_pid = 0, wakee_tid = 0;
  long syscall_nr = -1;
  std::uint64_t object = 0;

  explicit EdgeKey(const WakeEdge& e)
      : waker_pid(e.waker_pid),
        waker_tid(e.waker_tid),
        waker_kind(e.waker_kind),
        wakee_pid(e.wakee_pid),
        wakee_tid(e.wakee_tid),
        syscall_nr(e.syscall_nr),
        object(e.object) {}
  auto tie() const {
    return std::tie(waker_pid, waker_tid, waker_kind, wakee_pid, wakee_tid, syscall_nr, object);
  }
  bool operator==(const EdgeKey& o) const { return tie() == o.tie(); }
};

struct EdgeKeyHash {
  std::size_t operator()(const EdgeKey& k) const {
    // Multiply-xorshift mixing of the fields, as two 64-bit words and the object.
    const auto u = [](int v) { return static_cast<std::uint64_t>(static_cast<std::uint32_t>(v)); };
    std::uint64_t h = (u(k.waker_tid) << 32 | u(k.wakee_tid)) * 0x9e3779b97f4a7c15ULL;
    h ^= ((u(k.waker_pid) << 32 | u(k.wakee_pid)) + static_cast<std::uint64_t>(k.waker_kind)) *
         0xc2b2ae3d27d4eb4fULL;
    h ^= (k.object + static_cast<std::uint64_t>(k.syscall_nr)) * 0x165667b19e3779f9ULL;
    return static_cast<std::size_t>(h ^ (h >> 29));
  }
};

// An edge's cumulative sums at or before the window's start (0 when it was not seen then) and the
// last ones.
struct EdgeSums {
  std::uint64_t base_ns = 0, base_count = 0, last_ns = 0, last_count = 0;
};

struct EdgeEntry {
  EdgeKey key;
  EdgeSums sums;
};

struct ProcessTrack {
  std::string name;
  bool seen_in_window = false;
  bool has_status = false;  // a read of /proc/PID/status in the window
  std::optional<ProcessIo> io_first, io_last;
  std::uint64_t rss_first = 0, rss_last = 0, rss_max = 0;
  std::uint64_t anon_first = 0, anon_last = 0, anon_max = 0;
  std::optional<GroupDelays> delays_first, delays_last;
  std::uint64_t majflt = 0;
  std::set<int> tids;
  std::optional<std::uint64_t> open_fds, fd_soft_limit;
  std::map<std::uint64_t, SocketSample> sockets_first, sockets_last;  // by inode
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
  void end_thread(const ThreadEnd& e);
  void process_sample(const ProcessSample& s);
  // What a tick adds beside its thread samples: processes, sockets, system, collector.
  void window_parts(const Tick& t);
  // The exact mode's sums of a tick; its state and edges only in the first of the tick's two
  // passes.
  void exact_sample(const Tick& t, bool first_pass);
  // The wait-for edges' deltas over the window.
  WaitGraph window_graph() const;
  // The sums of edge `e`, added when new.
  EdgeSums& edge_sums(const WakeEdge& e);
  // Sizes the edges' index to `slots` (a power of two) and fills it from edges_.
  void index_edges(std::size_t slots);
  using ThreadMap = std::map<std::pair<int, int>, ThreadTrack>;
  // The thread `key`, or threads_.end(). A tick gives its threads (and exact sums) in threads_'
  // order (the sampler's and store/'s): the next one is found a step or two on from `cursor`
  // (where the last was), not by a lookup; `cursor` is left at the thread, or where it would be.
  ThreadMap::iterator find_thread(const std::pair<int, int>& key, ThreadMap::iterator& cursor);
  // Closes a thread's account for the window: the exact split replaces the sampled one.
  void close_account(ThreadTrack& t);

  const RecordingInfo& info_;
  std::int64_t start_, end_;
  bool open_ = false;
  bool any_tick_ = false;
  std::int64_t last_at_ = 0;
  ThreadMap threads_;
  std::vector<ThreadAccount> finished_;
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
  // A thread was first seen in the tick being added (its exact sums are taken again).
  bool new_thread_in_tick_ = false;
  ThreadMap::iterator thread_cursor_;  // find_thread's, over a tick's thread samples
  // After cut_after: system rates are over the time between the two reads (the first may be
  // before the window), and a window with no read of its own has none.
  bool system_span_ = false;  // the one before collector_last_, for cut_after
  bool exited_ = false;
};

void Builder::add_quiet(ThreadTrack& t, std::int64_t from, std::int64_t to) {
  from = std::max(from, start_);
  to = std::min(to, end_);
  if (to <= from) return;
  Interval iv;
  iv.wall_ns = to - from;
  iv.wait = t.last_wait;
  add_interval(t.account, iv);
  t.exact.sampled(iv);
}

void Builder::thread_sample(const ThreadSample& s) {
  const auto id = std::make_pair(s.key.pid, s.key.tid);
  auto it = find_thread(id, thread_cursor_);
  if (s.first) {
    // A first read without stat, or of a thread already watched, says nothing usable.
    if (!s.has_stat || it != threads_.end()) return;
    ThreadTrack t;
    t.exact = ExactSplit(processes_[s.key.pid].waits.get());
    t.account.key = s.key;
    t.account.comm = s.comm;
    t.account.process_name = s.process_name;
    t.account.first_seen_ns = s.at_ns;
    t.account.last_seen_ns = s.at_ns;
    t.run_ns = s.run_ns;
    t.run_delay_ns = s.run_delay_ns;
    t.majflt = s.majflt;
    t.blkio_ns = s.blkio_delay_ns;
    t.utime_ns = s.utime_ns;
    t.stime_ns = s.stime_ns;
    t.last_ns = s.at_ns;
    WaitObservation obs = s.wait;
    obs.majflt_delta = 0;
    t.last_wait = classify_wait(obs);
    t.exact.observe(obs, t.last_wait);
    if (in_window(s.at_ns) && obs.where == SyscallWhere::kUnknown) ++syscall_denied_;
    processes_[s.key.pid].tids.insert(s.key.tid);
    thread_cursor_ = threads_.emplace_hint(thread_cursor_, id, std::move(t));
    new_thread_in_tick_ = true;
    return;
  }
  if (it == threads_.end()) return;
  ThreadTrack& t = it->second;
  if (s.at_ns < t.last_ns) return;  // out of order: a broken recording
  // The polls that found it unchanged: still in the wait it was last seen in.
  const std::int64_t prev = std::clamp(s.prev_poll_ns, t.last_ns, s.at_ns);
  add_quiet(t, t.last_ns, prev);
  const bool count = s.at_ns > start_ && s.at_ns <= end_;
  Interval iv;
  iv.wall_ns = s.at_ns - std::max(prev, start_);
  iv.on_cpu_ns = delta_ns(t.run_ns, s.run_ns);
  iv.cpu_wait_ns = delta_ns(t.run_delay_ns, s.run_delay_ns);
  // Only between intervals of the window: one the window's start cuts has its counters from
  // before the window, and a window carries nothing in, so that it is what a builder over the
  // same ticks alone gives.
  if (count && prev >= start_) {
    carry_over(iv, t.carry);
  } else {
    t.carry = {};
  }
  t.run_ns = s.run_ns;
  t.run_delay_ns = s.run_delay_ns;
  t.last_ns = s.at_ns;
  t.account.last_seen_ns = s.at_ns;
  if (!s.has_stat) return;  // it ran, but vanished before its state was read

  const std::uint64_t majflt_delta = util::saturating_delta(t.majflt, s.majflt);
  const std::uint64_t du = util::saturating_delta(t.utime_ns, s.utime_ns);
  const std::uint64_t ds = util::saturating_delta(t.stime_ns, s.stime_ns);
  t.majflt = s.majflt;
  if (count) t.account.blkio_delay_ns += delta_ns(t.blkio_ns, s.blkio_delay_ns);
  t.blkio_ns = s.blkio_delay_ns;
  t.utime_ns = s.utime_ns;
  t.stime_ns = s.stime_ns;
  WaitObservation obs = s.wait;
  obs.majflt_delta = majflt_delta;
  if (count && obs.where == SyscallWhere::kUnknown) ++syscall_denied_;
  const WaitClass wait = classify_wait(obs);
  t.exact.observe(obs, wait);
  // fsync & co, or an O_DSYNC write or uncached read of a file it was caught blocked in.
  const bool in_disk_sync = is_disk_work(obs);
  // Kernel time of a thread that was inside disk work at both ends of the interval is disk work.
  // Kernel time of a thread that took major faults is fault and reclaim work, up to
  // kMajorFaultCpuNs per fault (the faults are on its critical path; the cap keeps a network
  // server with a rare fault from turning its syscall time into memory).
  const double kernel_ns =
      static_cast<double>(iv.on_cpu_ns) *
      (du + ds > 0 ? static_cast<double>(ds) / static_cast<double>(du + ds) : 0.0);
  if (in_disk_sync && t.last_in_disk_sync) {
    iv.kernel_work_ns = static_cast<std::int64_t>(kernel_ns);
    iv.kernel_work_resource = Resource::kDisk;
  } else if (majflt_delta > 0) {
    iv.kernel_work_ns = static_cast<std::int64_t>(
        std::min(kernel_ns, static_cast<double>(majflt_delta) * kMajorFaultCpuNs));
    iv.kernel_work_resource = Resource::kMemory;
  }
  // The off-CPU time of the interval: if it is seen running now, the last wait it was in.
  iv.wait = (wait.resource == Resource::kOnCpu) ? t.last_wait : wait;
  const bool mutex_now = is_lock_queue(wait);
  if (mutex_now && t.last_mutex_wait) iv.cpu_wait_resource = Resource::kLock;
  iv.majflt_delta = majflt_delta;
  if (wait.resource != Resource::kOnCpu) {
    t.last_wait = wait;
    in_disk_sync_ += (in_disk_sync ? 1 : 0) - (t.last_in_disk_sync ? 1 : 0);
    t.last_in_disk_sync = in_disk_sync;
    t.last_mutex_wait = mutex_now;
  }
  if (count) {
    processes_[s.key.pid].majflt += majflt_delta;
    add_interval(t.account, iv);
    t.exact.sampled(iv);
  }
}

void Builder::end_thread(const ThreadEnd& e) {
  auto it = threads_.find({e.pid, e.tid});
  if (it == threads_.end()) return;
  ThreadTrack& t = it->second;
  add_quiet(t, t.last_ns, std::max(t.last_ns, e.last_poll_ns));
  if (t.last_in_disk_sync) --in_disk_sync_;
  // A thread that ended before the window is not part of it (nor one of its process's threads).
  if (e.last_poll_ns >= start_) {
    close_account(t);
    finished_.push_back(std::move(t.account));
  } else {
    processes_[e.pid].tids.erase(e.tid);
  }
  threads_.erase(it);
}

void Builder::process_sample(const ProcessSample& s) {
  ProcessTrack& p = processes_[s.pid];
  if (s.name && p.name.empty()) p.name = *s.name;
  if (!in_window(s.at_ns)) return;
  p.seen_in_window = true;
  // The window's first read of each kind starts it (a read of the fd table alone carries none).
  if (s.io) {
    if (!p.io_first) p.io_first = s.io;
    p.io_last = s.io;
  }
  if (s.has_status) {
    if (!p.has_status) {
      p.has_status = true;
      p.rss_first = s.rss_bytes;
      p.anon_first = s.anon_bytes;
    }
    p.rss_last = s.rss_bytes;
    p.rss_max = std::max(p.rss_max, s.rss_bytes);
    p.anon_last = s.anon_bytes;
    p.anon_max = std::max(p.anon_max, s.anon_bytes);
  }
  if (s.delays) {
    if (!p.delays_first) p.delays_first = s.delays;
    p.delays_last = s.delays;
  }
  if (s.open_fds) p.open_fds = s.open_fds;
  if (s.fd_soft_limit) p.fd_soft_limit = s.fd_soft_limit;
}

bool Builder::tick(const Tick& t) {
  if (t.at_ns > end_) return false;
  if (open_) {
    if (!any_tick_) start_ = t.at_ns;
    last_at_ = std::max(last_at_, t.at_ns);
  }
  any_tick_ = true;
  for (int pid : t.new_pids) pids_.insert(pid);
  // The exact sums before the threads that ended go (their last sums are in this tick), and again
  // for the threads first seen in it (adding a sum twice is the same as once).
  if (t.exact) exact_sample(t, true);
  new_thread_in_tick_ = false;
  for (const auto& e : t.ended) end_thread(e);
  thread_cursor_ = threads_.begin();
  for (const auto& s : t.threads) thread_sample(s);
  if (t.exact) {
    exact_sample(t, false);
    // How futex words were waited on, for the process's threads to class their waits by (once
    // its threads have made it known).
    for (const auto& o : t.exact->futex_ops) {
      auto p = processes_.find(o.pid);
      if (p != processes_.end()) p->second.waits->futex_ops[o.word] = o.how;
    }
  }
  window_parts(t);
  return true;
}

void Builder::exact_sample(const Tick& t, bool first_pass) {
  const bool before = t.at_ns <= start_;
  if (!before && !in_window(t.at_ns)) return;
  // The second pass is for the threads first seen in the tick: taking the others' sums again
  // changes nothing.
  if (first_pass || new_thread_in_tick_) {
    auto cursor = threads_.begin();
    for (const auto& w : t.exact->waits) {
      const auto it = find_thread({w.pid, w.tid}, cursor);
      // A thread id handed out again: the new thread's sums are not the old one's.
      if (it == threads_.end() || (w.start_time_ticks != 0 &&
                                   w.start_time_ticks != it->second.account.key.start_time_ticks)) {
        continue;
      }
      it->second.exact.sum(w, before);
    }
  }
  if (!first_pass) return;
  const ExactState& state = t.exact->state;
  if (!state.file_hook_problem.empty()) file_hook_problem_ = state.file_hook_problem;
  if (before) exact_before_ = state;
  if (in_window(t.at_ns)) {
    if (!exact_first_) exact_first_ = state;
    exact_last_ = state;
  }
  for (const auto& e : t.exact->edges) {
    EdgeSums& sums = edge_sums(e);
    if (before) {
      sums.base_ns = e.ns;
      sums.base_count = e.count;
    }
    sums.last_ns = e.ns;
    sums.last_count = e.count;
  }
}

EdgeSums& Builder::edge_sums(const WakeEdge& e) {
  if ((edges_.size() + 1) * 2 > edge_slots_.size()) {
    index_edges(std::max<std::size_t>(1024, edge_slots_.size() * 2));
  }
  const EdgeKey key(e);
  const std::size_t mask = edge_slots_.size() - 1;
  for (std::size_t i = EdgeKeyHash{}(key)&mask;; i = (i + 1) & mask) {
    const std::uint32_t slot = edge_slots_[i];
    if (slot == 0) {
      edges_.push_back({key, {}});
      edge_slots_[i] = static_cast<std::uint32_t>(edges_.size());
      return edges_.back().sums;
    }
    if (edges_[slot - 1].key == key) return edges_[slot - 1].sums;
  }
}

void Builder::index_edges(std::size_t slots) {
  edge_slots_.assign(slots, 0);
  const std::size_t mask = slots - 1;
  for (std::size_t n = 0; n < edges_.size(); ++n) {
    std::size_t i = EdgeKeyHash{}(edges_[n].key) & mask;
    while (edge_slots_[i] != 0) i = (i + 1) & mask;
    edge_slots_[i] = static_cast<std::uint32_t>(n + 1);
  }
}

Builder::ThreadMap::iterator Builder::find_thread(const std::pair<int, int>& key,
                                                  ThreadMap::iterator& cursor) {
  for (int step = 0; step < 4 && cursor != threads_.end() && cursor->first < key; ++step) {
    ++cursor;
  }
  if (cursor == threads_.end() || cursor->first != key) {
    // Behind the cursor, or further on: where it is, or would be.
    cursor = threads_.lower_bound(key);
  }
  return cursor != threads_.end() && cursor->first == key ? cursor : threads_.end();
}

void Builder::close_account(ThreadTrack& t) {
  if (t.exact.apply(t.account)) ++exact_threads_;
}

void Builder::window_parts(const Tick& t) {
  for (const auto& p : t.processes) process_sample(p);
  const bool inside = in_window(t.at_ns);
  if (inside) {
    for (const auto& s : t.sockets) {
      ProcessTrack& p = processes_[s.pid];
      p.sockets_first.try_emplace(s.inode, s);
      p.sockets_last[s.inode] = s;
    }
  }
  // Lock waits that coincide with a disk sync in the same process: the lock is held across IO.
  // Two passes over every thread only when some thread is in a disk sync at all (at 10,000
  // threads the passes cost more than the sampling itself).
  if (inside && t.lock_credit_ns > 0 && in_disk_sync_ > 0) {
    std::map<int, int> disk_sync_threads;
    for (const auto& [id, th] : threads_) {
      if (th.last_in_disk_sync) ++disk_sync_threads[id.first];
    }
    for (const auto& [id, th] : threads_) {
      if (th.last_mutex_wait && disk_sync_threads[id.first] > 0) {
        lock_behind_disk_ns_ += t.lock_credit_ns;
      }
    }
  }
  // The collector's counters are cumulative: the window's cost runs from the last read at or
  // before its start (a read at the start is both that baseline and the window's sources) to its
  // last read.
  if (t.collector) {
    if (t.at_ns <= start_) collector_before_ = t.collector;
    if (inside) collector_last_ = t.collector;
  }
  if (!inside) return;
  if (t.system) {
    if (!sys_first_) sys_first_ = t.system;
    sys_last_ = t.system;
    if (t.system->tcp_table) {
      if (!tcp_first_) tcp_first_ = t.system->tcp_table;
      tcp_last_ = t.system->tcp_table;
    }
    if (t.system->shm) shm_last_ = t.system->shm;
    if (t.system->rlimits) rlimits_last_ = t.system->rlimits;
  }
  if (t.runnable) {
    runnable_sum_ += static_cast<double>(*t.runnable);
    ++runnable_count_;
  }
  exited_ = t.target_exited;
}

ProcessSummary summarize_process(int pid, const ProcessTrack& p, double secs) {
  ProcessSummary ps;
  ps.pid = pid;
  ps.name = p.name;
  ps.threads = static_cast<int>(p.tids.size());
  ps.rss_start_bytes = p.rss_first;
  ps.rss_end_bytes = p.rss_last;
  ps.rss_max_bytes = p.rss_max;
  ps.anon_start_bytes = p.anon_first;
  ps.anon_end_bytes = p.anon_last;
  ps.anon_max_bytes = p.anon_max;
  ps.majflt = p.majflt;
  if (p.delays_first && p.delays_last) {
    const auto& a = *p.delays_first;
    const auto& b = *p.delays_last;
    ps.has_delays = true;
    ps.delay_cpu_ns = util::saturating_delta(a.cpu_ns, b.cpu_ns);
    ps.delay_blkio_ns = util::saturating_delta(a.blkio_ns, b.blkio_ns);
    ps.delay_swapin_ns = util::saturating_delta(a.swapin_ns, b.swapin_ns);
    ps.delay_reclaim_ns = util::saturating_delta(a.reclaim_ns, b.reclaim_ns);
    ps.delay_thrashing_ns = util::saturating_delta(a.thrashing_ns, b.thrashing_ns);
    ps.delay_compact_ns = util::saturating_delta(a.compact_ns, b.compact_ns);
  }
  if (p.io_first && p.io_last) {
    ps.read_bytes = util::saturating_delta(p.io_first->read_bytes, p.io_last->read_bytes);
    ps.write_bytes = util::saturating_delta(p.io_first->write_bytes, p.io_last->write_bytes);
    ps.syscw = util::saturating_delta(p.io_first->syscw, p.io_last->syscw);
  }
  if (p.fd_soft_limit) ps.fd_soft_limit = *p.fd_soft_limit;
  if (!p.open_fds) return ps;  // the fd table was unreadable: no socket summary either
  ps.open_fds = *p.open_fds;
  std::set<std::string> peers;
  std::uint64_t acked = 0;
  for (const auto& [inode, s] : p.sockets_last) {
    if (s.state == SocketState::kListen) {
      ++ps.listeners;
      ps.listen_sockets.push_back(fmt::format("{}:{} backlog {}, accept queue {}", s.local_addr,
                                              s.local_port, s.send_queue_bytes,
                                              s.recv_queue_bytes));
      continue;
    }
    if (s.state != SocketState::kEstablished) continue;
    if (s.server_side) {
      ++ps.server_connections;
    } else {
      ++ps.client_connections;
      peers.insert(fmt::format("{}:{}", s.remote_addr, s.remote_port));
      ps.upstream_rtt_us_max = std::max<std::uint64_t>(ps.upstream_rtt_us_max, s.rtt_us);
    }
    ps.notsent_bytes += s.notsent_bytes;
    auto f = p.sockets_first.find(inode);
    if (f != p.sockets_first.end()) {
      ps.sndbuf_limited_us +=
          util::saturating_delta(f->second.sndbuf_limited_us, s.sndbuf_limited_us);
      ps.rwnd_limited_us += util::saturating_delta(f->second.rwnd_limited_us, s.rwnd_limited_us);
      acked += util::saturating_delta(f->second.bytes_acked, s.bytes_acked);
    }
  }
  ps.upstream_peers.assign(peers.begin(), peers.end());
  ps.bytes_sent_per_s =
      secs > 0 ? static_cast<std::uint64_t>(static_cast<double>(acked) / secs) : 0;
  return ps;
}

std::vector<Source> collector_sources(const Observation& obs, const CollectorSample& c,
                                      std::uint64_t syscall_denied, std::int64_t interval_ns) {
  std::vector<Source> out;
  std::int64_t blkio = 0;
  for (const auto& t : obs.threads) blkio += t.blkio_delay_ns;
  const bool delayacct = c.delayacct_readable && c.delayacct_on;
  out.push_back(
      {"delay accounting", delayacct,
       fmt::format("exact time blocked on block IO ({:.3f} s over the target's threads; only "
                   "tasks started "
                   "after kernel.task_delayacct was switched on carry it)",
                   static_cast<double>(blkio) / 1e9),
       c.delayacct_readable
           ? "run as root: diagnose switches kernel.task_delayacct on for the run (tasks started "
             "after that carry data, e.g. with -- COMMAND), or set it before starting the service"
           : "this kernel has no kernel.task_delayacct"});
  std::uint64_t memory_ns = 0, blkio_ns = 0;
  for (const auto& ps : obs.processes) {
    memory_ns += ps.delay_memory_ns();
    blkio_ns += ps.delay_blkio_ns;
  }
  out.push_back(
      {"taskstats", c.taskstats_open && delayacct,
       fmt::format("exact swap-in, reclaim, thrashing and compaction delays per process ({:.3f} "
                   "s memory, {:.3f} s block IO over the target)",
                   static_cast<double>(memory_ns) / 1e9, static_cast<double>(blkio_ns) / 1e9),
       c.taskstats_open ? (delayacct ? "" : "kernel.task_delayacct is off") : c.taskstats_problem});
  // Recordings made before the iterator existed say nothing about it: no line then.
  if (c.task_iterator_on || !c.task_iterator_problem.empty()) {
    out.push_back(
        {"task iterator", c.task_iterator_on,
         "eBPF iter/task: every thread's on-CPU and run-queue time, state and system call in "
         "one read (every second, at each listing, and when many threads are due), so a quiet "
         "thread is not polled on its own",
         c.task_iterator_on ? ""
                            : c.task_iterator_problem +
                                  "; each thread's /proc/TID/schedstat is read instead (one pread "
                                  "a thread a poll)"});
  }
  out.push_back({"thread state sampling", syscall_denied == 0,
                 fmt::format("thread state, syscall and fd every {} ms for threads that ran",
                             interval_ns / 1'000'000),
                 syscall_denied == 0
                     ? ""
                     : fmt::format("{} reads of /proc/TID/syscall were refused: run as "
                                   "root or as the target's owner to see what threads "
                                   "wait on",
                                   syscall_denied)});
  out.push_back(
      {"stack scan", c.stack_problem.empty(),
       fmt::format("the libc function under each futex(FUTEX_WAIT_BITSET) sleep tells rwlock and "
                   "semaphore waits (lock) from parked threads (idle): {} stacks read, {} named, "
                   "{} answers from the cache",
                   c.stack_scans, c.stack_named, c.stack_cache_hits),
       c.stack_problem.empty()
           ? ""
           : c.stack_problem +
                 ": run as root or as the target's owner (reading a thread's stack needs ptrace "
                 "access); until then rwlock and semaphore waits read as idle"});
  out.push_back({"tcp_info (sock_diag)", c.socket_problem.empty(),
                 "per-connection RTT, queues, send-buffer-limited time", c.socket_problem});
  if (c.socket_order_tried) {
    out.push_back(
        {"socket order", c.socket_order_on && c.socket_order_problem.empty(),
         "eBPF on sock_send_length/sock_recv_length: the exact order of each connection's last "
         "send and receive, so an event loop with a request out on an upstream waits on the "
         "network",
         c.socket_order_problem.empty()
             ? ""
             : c.socket_order_problem +
                   "; an event loop's requests out are read from tcp_info's last send and "
                   "receive times, which count 4 ms jiffies and miss a request written in the "
                   "jiffy its previous reply arrived"});
  }
  return out;
}

// How the file system calls' time on the CPU was timed, for the time split's sources line; ""
// for recordings made before the hook was kept.
std::string file_calls_text(const std::string& hook, const std::string& problem) {
  const std::string why = problem.empty() ? "" : ": " + problem;
  if (hook == "fentry") {
    return "; file system calls' on-CPU time is disk, timed by fentry/fexit on their entry points "
           "(no other system call pays for it)";
  }
  if (hook == "raw_syscalls") {
    return "; file system calls' on-CPU time is disk, timed on raw_syscalls sys_enter/sys_exit, "
           "which every system call of the host pays for while attached (no fentry" +
           why + ")";
  }
  if (hook == "none") {
    return "; file system calls' on-CPU time is not timed and stays on_cpu (no fentry" + why +
           "; raw_syscalls, which every system call of the host would pay for, only with --mode "
           "exact)";
  }
  return "";
}

// Which time split ran and why, from the exact mode's samples at the window's start and end.
Source exact_source(const ExactState& first, const ExactState& last, const Observation& obs,
                    int exact_threads, const std::string& file_hook_problem) {
  const std::string mode = last.mode.empty() ? std::string("auto") : last.mode;
  if (!last.on) {
    return {"time split", false, "",
            fmt::format("sampled (--mode {}): {}{}{}", mode, last.problem,
                        last.hint.empty() ? "" : "; hint: ", last.hint)};
  }
  const double secs = static_cast<double>(obs.duration_ns) / 1e9;
  const std::uint64_t switches = util::saturating_delta(first.switches, last.switches);
  const std::uint64_t thinned = util::saturating_delta(first.thinned_out, last.thinned_out);
  const std::uint64_t lost = util::saturating_delta(first.lost, last.lost);
  std::string budget =
      thinned == 0 ? std::string("every one accounted")
                   : fmt::format(
                         "above {} per CPU per second 1 in up to {} accounted and weighed by it "
                         "({:.1f}% not accounted)",
                         last.budget_per_cpu_s, last.thin_every_max,
                         100.0 * static_cast<double>(thinned) /
                             static_cast<double>(std::max<std::uint64_t>(1, switches)));
  if (lost > 0) budget += fmt::format("; {} intervals did not fit the kernel's maps", lost);
  if (!last.problem.empty()) budget += "; " + last.problem;  // e.g. too many target processes
  return {
      "time split", true,
      fmt::format(
          "exact (--mode {}): each thread's off-CPU time divided by eBPF state "
          "accounting of every switch and wakeup, with the system call and its fd or futex read "
          "at each switch-out ({} of {} threads; "
          "{:.0f} switches/s, {}); each wait classed as the sampler classes it; "
          "on-CPU and run-queue time from schedstat{}",
          mode, exact_threads, obs.threads.size(),
          secs > 0 ? static_cast<double>(switches) / secs : 0.0, budget,
          file_calls_text(last.file_hook, file_hook_problem)),
      ""};
}

// Whether the window has a wait-for graph (it comes with the exact mode's eBPF programs).
Source wait_graph_source(const ExactState& last, std::size_t edges, std::int64_t handed_ns) {
  if (!last.on) {
    return {"wait-for graph", false, "",
            "without it (the exact mode's eBPF did not run) a thread waiting for another "
            "thread's hand-off (a reply semaphore, a join) is classed by what it waits in, "
            "lock for a semaphore; run as root with BTF (--mode exact or auto)"};
  }
  std::string detail = fmt::format(
      "eBPF on sched_waking: who woke each target thread out of which wait (futex "
      "word or fd), with the blocked time each wakeup ended ({} edges); hand-offs to "
      "one thread are followed to that thread's own state",
      edges);
  if (handed_ns > 0) {
    detail += fmt::format(
        ", and the time threads waited for them idle ({:.2f} thread-s) is divided as the threads "
        "that ended them spent theirs",
        static_cast<double>(handed_ns) / 1e9);
  }
  return {"wait-for graph", true, std::move(detail), ""};
}

WaitGraph Builder::window_graph() const {
  WaitGraph g;
  for (const auto& [key, sums] : edges_) {
    const std::uint64_t ns = util::saturating_delta(sums.base_ns, sums.last_ns);
    const std::uint64_t count = util::saturating_delta(sums.base_count, sums.last_count);
    if (ns == 0 && count == 0) continue;
    WakeEdge e;
    std::tie(e.waker_pid, e.waker_tid, e.waker_kind, e.wakee_pid, e.wakee_tid, e.syscall_nr,
             e.object) = key.tie();
    e.ns = ns;
    e.count = count;
    g.edges.push_back(e);
  }
  // In the key's order, as the analysis has always summed them.
  std::sort(g.edges.begin(), g.edges.end(), [](const WakeEdge& a, const WakeEdge& b) {
    return EdgeKey(a).tie() < EdgeKey(b).tie();
  });
  return g;
}

Observation Builder::finish(bool keep_threads) {
  if (open_) end_ = any_tick_ ? last_at_ : start_;
  Observation obs;
  obs.target = info_.target;
  obs.target.pids.assign(pids_.begin(), pids_.end());
  obs.duration_ns = end_ - start_;
  obs.interval_ns = info_.interval_ns;
  obs.target_exited = exited_;
  finished_.reserve(finished_.size() + threads_.size());
  for (auto& [id, t] : threads_) {
    add_quiet(t, t.last_ns, end_);
    close_account(t);
    if (keep_threads) t.exact.next_window();
    t.carry = {};
    // Going on (cut_after): the thread keeps its track and starts a fresh account.
    ThreadAccount fresh;
    if (keep_threads) {
      fresh.key = t.account.key;
      fresh.comm = t.account.comm;
      fresh.process_name = t.account.process_name;
      fresh.first_seen_ns = t.account.first_seen_ns;
      fresh.last_seen_ns = t.account.last_seen_ns;
    }
    finished_.push_back(std::exchange(t.account, std::move(fresh)));
  }
  if (!keep_threads) threads_.clear();
  obs.threads = std::move(finished_);
  finished_.clear();
  obs.lock_wait_behind_disk_ns = lock_behind_disk_ns_;

  const double secs = static_cast<double>(obs.duration_ns) / 1e9;
  for (const auto& [pid, p] : processes_) {
    if (p.seen_in_window) obs.processes.push_back(summarize_process(pid, p, secs));
  }
  if (sys_first_ && sys_last_ && (!system_span_ || sys_last_->at_ns > sys_first_->at_ns)) {
    const double span_s = static_cast<double>(sys_last_->at_ns - sys_first_->at_ns) / 1e9;
    obs.system = summarize_system(*sys_first_, *sys_last_, system_span_ ? span_s : secs);
    obs.sources = system_sources(*sys_last_);
  }
  if (tcp_last_) {
    TcpTable tcp;
    tcp.end = *tcp_last_;
    if (tcp_first_ && tcp_first_->at_ns < tcp_last_->at_ns) {
      tcp.start = *tcp_first_;
      tcp.span_s = static_cast<double>(tcp_last_->at_ns - tcp_first_->at_ns) / 1e9;
    }
    tcp.age_s = static_cast<double>(std::max<std::int64_t>(0, end_ - tcp_last_->at_ns)) / 1e9;
    std::string when = "at the window's start and end";
    if (tcp.age_s >= 0.5)
      when = fmt::format("the last dump {:.1f} s before the window's end", tcp.age_s);
    obs.system.tcp = std::move(tcp);
    obs.sources.push_back({"tcp states", true,
                           "TCP sockets of the target's namespace by state (sock_diag), and its "
                           "conntrack table, " +
                               when,
                           ""});
  }
  if (shm_last_) {
    obs.system.shm = shm_last_;
    obs.sources.push_back({"shared memory", shm_last_->sysv_read,
                           "System V segments against kernel.shmmax, shmall and shmmni; /dev/shm",
                           shm_last_->sysv_read ? "" : "/proc/sysvipc/shm is unreadable"});
  }
  if (rlimits_last_) {
    obs.system.rlimits = rlimits_last_;
    obs.sources.push_back({"rlimits", true,
                           "nproc, memlock and stack limits against the tasks of the uid, VmLck "
                           "and VmStk",
                           ""});
  }
  if (runnable_count_ > 0) obs.system.run_queue_avg = runnable_sum_ / runnable_count_;
  const CollectorSample c = collector_last_.value_or(CollectorSample{});
  if (c.cpus_allowed && !obs.target.pids.empty()) obs.system.cpus_allowed = *c.cpus_allowed;
  auto more = collector_sources(obs, c, syscall_denied_, info_.interval_ns);
  obs.sources.insert(obs.sources.end(), more.begin(), more.end());
  if (exact_last_) {
    obs.sources.push_back(exact_source(exact_before_ ? *exact_before_ : *exact_first_, *exact_last_,
                                       obs, exact_threads_, file_hook_problem_));
    std::int64_t handed_ns = 0;
    if (exact_last_->on) {
      obs.wait_graph = window_graph();
      handed_ns = attribute_handoffs(*obs.wait_graph, obs.threads);
    }
    obs.sources.push_back(wait_graph_source(
        *exact_last_, obs.wait_graph ? obs.wait_graph->edges.size() : 0, handed_ns));
  }
  obs.sources.insert(
      obs.sources.begin(),
      {"schedstat", true, "exact on-CPU and run-queue wait time of every thread", ""});

  const CollectorSample before = collector_before_.value_or(CollectorSample{});
  obs.overhead.cpu_s = static_cast<double>(c.cpu_ns - before.cpu_ns) / 1e9;
  obs.overhead.rss_bytes = c.rss_bytes;
  obs.overhead.thread_samples = util::saturating_delta(before.thread_samples, c.thread_samples);
  obs.overhead.deep_samples = util::saturating_delta(before.deep_samples, c.deep_samples);
  return obs;
}

Observation Builder::cut_after(const Tick& last) {
  // finish() closes every account at the window's end; the tracks stay, with fresh accounts.
  const std::int64_t end = end_;
  end_ = last.at_ns;
  Observation obs = finish(/*keep_threads=*/true);
  end_ = end;
  start_ = last.at_ns;
  // What ended before the new window is forgotten, so that a builder fed for days (top, the
  // agent) holds the threads and processes that are alive, not every one it ever saw.
  std::map<int, std::set<int>> live;
  for (const auto& [id, t] : threads_) live[id.first].insert(id.second);
  for (auto it = processes_.begin(); it != processes_.end();) {
    auto l = live.find(it->first);
    if (l == live.end()) {
      pids_.erase(it->first);
      it = processes_.erase(it);
    } else {
      it->second.tids = std::move(l->second);
      ++it;
    }
  }
  for (auto& [pid, p] : processes_) {
    ProcessTrack fresh;
    fresh.name = std::move(p.name);
    fresh.tids = std::move(p.tids);
    fresh.waits = std::move(p.waits);  // the threads' ExactSplits point at it
    p = std::move(fresh);
  }
  lock_behind_disk_ns_ = 0;
  syscall_denied_ = 0;
  if (exact_last_) exact_before_ = std::move(exact_last_);
  // The edges' baseline is where the window ended; those into threads that ended go.
  std::size_t kept = 0;
  for (std::size_t i = 0; i < edges_.size(); ++i) {
    EdgeEntry entry = edges_[i];
    auto l = live.find(entry.key.wakee_pid);
    if (l == live.end() || l->second.count(entry.key.wakee_tid) == 0) continue;
    entry.sums.base_ns = entry.sums.last_ns;
    entry.sums.base_count = entry.sums.last_count;
    edges_[kept++] = entry;
  }
  if (kept < edges_.size()) {
    edges_.erase(edges_.begin() + static_cast<std::ptrdiff_t>(kept), edges_.end());
    index_edges(edge_slots_.size());
  }
  exact_first_.reset();
  exact_last_.reset();
  exact_threads_ = 0;
  runnable_sum_ = 0;
  runnable_count_ = 0;
  // The system counters are read now and then (not at every tick): the new window's rates start
  // from the last read before it, over the time between the reads.
  std::optional<SystemSample> system_before = std::move(sys_last_);
  sys_first_.reset();
  sys_last_.reset();
  tcp_first_.reset();
  tcp_last_.reset();
  shm_last_.reset();
  rlimits_last_.reset();
  system_span_ = true;
  // The collector's last read before the new window (window_parts below makes the boundary
  // tick's read, if any, the baseline).
  if (collector_last_) collector_before_ = std::move(collector_last_);
  collector_last_.reset();
  exited_ = false;
  // The boundary tick belongs to both windows (a window includes its ends): its process, socket,
  // system and collector reads start the new one. Its thread samples do not count again (an
  // interval is counted in the window it ends in).
  window_parts(last);
  if (!sys_first_) sys_first_ = std::move(system_before);
  return obs;
}

std::uint64_t opt_delta(const std::optional<std::uint64_t>& a,
                        const std::optional<std::uint64_t>& b) {
  if (!a || !b) return 0;
  return util::saturating_delta(*a, *b);
}

double psi_share(const PressureSample& a, const PressureSample& b, bool full, double seconds) {
  if (!a.supported || !b.supported || seconds <= 0) return 0;
  const auto& la = full ? a.full_total_ns : a.some_total_ns;
  const auto& lb = full ? b.full_total_ns : b.some_total_ns;
  if (!la || !lb) return 0;
  return std::min(1.0, static_cast<double>(util::saturating_delta(*la, *lb)) / 1e9 / seconds);
}

}  // namespace

struct ObservationBuilder::Impl {
  Impl(const RecordingInfo& info, std::int64_t from_ns, std::int64_t to_ns)
      : info_copy(info), builder(info_copy, from_ns, std::max(from_ns, to_ns)) {}
  explicit Impl(const RecordingInfo& info) : info_copy(info), builder(info_copy) {}
  RecordingInfo info_copy;
  Builder builder;
};

ObservationBuilder::ObservationBuilder(const RecordingInfo& info, std::int64_t from_ns,
                                       std::int64_t to_ns)
    : impl_(std::make_unique<Impl>(info, from_ns, to_ns)) {}
ObservationBuilder::ObservationBuilder(const RecordingInfo& info)
    : impl_(std::make_unique<Impl>(info)) {}
ObservationBuilder::~ObservationBuilder() = default;

bool ObservationBuilder::add(const Tick& tick) {
  return impl_->builder.tick(tick);
}

Observation ObservationBuilder::finish() {
  return impl_->builder.finish();
}

Observation ObservationBuilder::cut_after(const Tick& last) {
  return impl_->builder.cut_after(last);
}

ObservationSink::ObservationSink(Samples* keep) : keep_(keep) {}
ObservationSink::~ObservationSink() = default;

void ObservationSink::begin(const RecordingInfo& info) {
  info_ = info;
  builder_ = std::make_unique<ObservationBuilder>(info);
  if (keep_) keep_->begin(info);
}

void ObservationSink::keep_next(Samples* keep) {
  keep_ = keep;
  if (keep_ && builder_) keep_->begin(info_);
}

void ObservationSink::add(Tick tick) {
  builder_->add(tick);
  if (tick.closing) closed_ = builder_->cut_after(tick);
  if (keep_) keep_->add(std::move(tick));
}

Observation ObservationSink::finish() {
  if (closed_) {
    Observation obs = std::move(*closed_);
    closed_.reset();
    return obs;
  }
  return builder_->finish();
}

Observation build_observation(const RecordingInfo& info, const std::vector<Tick>& ticks,
                              const Window& window) {
  if (ticks.empty()) {
    Observation obs;
    obs.target = info.target;
    obs.interval_ns = info.interval_ns;
    return obs;
  }
  const std::int64_t start = window.from_ns.value_or(ticks.front().at_ns);
  const std::int64_t end = window.to_ns.value_or(ticks.back().at_ns);
  ObservationBuilder b(info, start, end);
  for (const auto& t : ticks) {
    if (!b.add(t)) break;
  }
  return b.finish();
}

SystemSummary summarize_system(const SystemSample& a, const SystemSample& b, double seconds) {
  SystemSummary out;
  out.cpus_online = b.cpus_online;
  out.cpus_allowed = out.cpus_online;
  if (a.has_cpu && b.has_cpu) {
    const auto total = static_cast<double>(util::saturating_delta(a.cpu_total_ns, b.cpu_total_ns));
    const auto busy = static_cast<double>(util::saturating_delta(a.cpu_busy_ns, b.cpu_busy_ns));
    const auto iowait =
        static_cast<double>(util::saturating_delta(a.cpu_iowait_ns, b.cpu_iowait_ns));
    if (total > 0) {
      out.cpu_utilization = busy / total;
      out.iowait_share = iowait / total;
    }
  }
  out.psi_cpu = {b.psi_cpu.supported, psi_share(a.psi_cpu, b.psi_cpu, false, seconds),
                 psi_share(a.psi_cpu, b.psi_cpu, true, seconds)};
  out.psi_memory = {b.psi_memory.supported, psi_share(a.psi_memory, b.psi_memory, false, seconds),
                    psi_share(a.psi_memory, b.psi_memory, true, seconds)};
  out.psi_io = {b.psi_io.supported, psi_share(a.psi_io, b.psi_io, false, seconds),
                psi_share(a.psi_io, b.psi_io, true, seconds)};
  if (b.has_meminfo) {
    out.mem_total_bytes = b.mem_total_bytes;
    out.mem_available_bytes = b.mem_available_bytes;
    out.swap_used_bytes = util::saturating_delta(b.swap_free_bytes, b.swap_total_bytes);
  }
  const auto vm = [](const SystemSample& s, std::uint64_t v) { return s.has_vmstat ? v : 0; };
  if (seconds > 0) {
    out.majflt_per_s =
        static_cast<double>(util::saturating_delta(vm(a, a.pgmajfault), vm(b, b.pgmajfault))) /
        seconds;
    out.refaults_per_s =
        static_cast<double>(util::saturating_delta(vm(a, a.refault_file), vm(b, b.refault_file)) +
                            util::saturating_delta(vm(a, a.refault_anon), vm(b, b.refault_anon))) /
        seconds;
  }
  out.oom_kills = util::saturating_delta(vm(a, a.oom_kill), vm(b, b.oom_kill));

  if (a.disks && b.disks && seconds > 0) {
    std::map<std::string, const DiskSample*> before;
    for (const auto& d : *a.disks) before[d.name] = &d;
    for (const auto& d : *b.disks) {
      auto it = before.find(d.name);
      if (it == before.end()) continue;
      const auto& p = *it->second;
      DiskSummary s;
      s.name = d.name;
      const double wall_ns = seconds * 1e9;
      s.utilization = std::min(
          1.0, static_cast<double>(util::saturating_delta(p.io_time_ns, d.io_time_ns)) / wall_ns);
      s.queue_depth = static_cast<double>(
                          util::saturating_delta(p.weighted_io_time_ns, d.weighted_io_time_ns)) /
                      wall_ns;
      const auto ios = static_cast<double>(util::saturating_delta(p.reads, d.reads) +
                                           util::saturating_delta(p.writes, d.writes));
      const auto io_ns =
          static_cast<double>(util::saturating_delta(p.read_time_ns, d.read_time_ns) +
                              util::saturating_delta(p.write_time_ns, d.write_time_ns));
      s.await_ms = ios > 0 ? io_ns / ios / 1e6 : 0;
      s.reads_per_s = static_cast<double>(util::saturating_delta(p.reads, d.reads)) / seconds;
      s.writes_per_s = static_cast<double>(util::saturating_delta(p.writes, d.writes)) / seconds;
      s.read_bytes_per_s =
          static_cast<double>(util::saturating_delta(p.read_bytes, d.read_bytes)) / seconds;
      s.write_bytes_per_s =
          static_cast<double>(util::saturating_delta(p.write_bytes, d.write_bytes)) / seconds;
      if (p.flushes && d.flushes) {
        s.flushes_per_s =
            static_cast<double>(util::saturating_delta(*p.flushes, *d.flushes)) / seconds;
      }
      out.disks.push_back(s);
    }
  }
  if (a.has_net && b.has_net) {
    out.tcp_retrans_per_s =
        seconds > 0
            ? static_cast<double>(opt_delta(a.tcp_retrans_segs, b.tcp_retrans_segs)) / seconds
            : 0;
    out.listen_overflows = opt_delta(a.listen_overflows, b.listen_overflows);
    out.listen_drops = opt_delta(a.listen_drops, b.listen_drops);
    out.passive_opens = opt_delta(a.passive_opens, b.passive_opens);
  }
  if (b.tcp_time_wait) out.time_wait = *b.tcp_time_wait;
  if (b.files_open && b.files_max) {
    out.files_open = *b.files_open;
    out.files_max = *b.files_max;
  }
  out.cgroup_path = b.cgroup_memory_dir;
  out.cgroup_memory_limit_bytes = b.cgroup_memory_limit_bytes;
  out.cgroup_memory_usage_bytes = b.cgroup_memory_usage_bytes;
  out.cgroup_nr_throttled = util::saturating_delta(a.cgroup_nr_throttled, b.cgroup_nr_throttled);
  if (seconds > 0) {
    out.cgroup_throttled_share = std::min(1.0, static_cast<double>(util::saturating_delta(
                                                   a.cgroup_throttled_ns, b.cgroup_throttled_ns)) /
                                                   1e9 / seconds);
  }
  return out;
}

std::vector<Source> system_sources(const SystemSample& s) {
  std::vector<Source> out;
  const bool psi_ok = s.psi_cpu.supported;
  out.push_back({"psi", psi_ok, "pressure stall information for cpu, memory and io",
                 psi_ok
                     ? ""
                     : (s.psi_cpu.present ? s.psi_cpu.unsupported_reason + "; boot with psi=1"
                                          : "no /proc/pressure: boot with psi=1 (kernel 4.20+)")});
  out.push_back({"diskstats", s.disks.has_value(), "per-disk utilization, await and queue depth",
                 s.disks ? "" : "/proc/diskstats is unreadable"});
  out.push_back({"net counters", s.has_net, "TCP retransmits, listen overflows and drops",
                 s.has_net ? "" : "/proc/PID/net/snmp is unreadable: run as root"});
  out.push_back({"cgroup", !s.cgroup_memory_dir.empty() || !s.cgroup_cpu_dir.empty(),
                 "the target's cgroup memory limit and CPU throttling",
                 s.cgroup_memory_dir.empty() ? "no memory cgroup found for the target" : ""});
  return out;
}

}  // namespace chokepoint::model
