#include "model/builder.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <map>
#include <tuple>
#include <utility>

#include "model/builder_state.h"
#include "util/counters.h"

namespace chokepoint::model {
namespace builder_internal {

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
    // What the fds the sums name are, as the collector found them; like a sampled read of the
    // fd, the latest says (an fd number is another file or connection once reused).
    for (const auto& n : t.exact->fd_names) {
      auto p = processes_.find(n.pid);
      if (p != processes_.end() && n.role != FdRole::kUnknown) {
        p->second.waits->fds[n.fd] = {n.role, n.detail};
      }
    }
  }
  window_parts(t);
  return true;
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

// Field by field rather than a fresh ThreadAccount per thread per window (ten empty maps built,
// moved twice and destroyed: 1.4% of the agent's time at 1,000 threads, h-agent8's profile).
// The size check is there so that a new field is not forgotten here.
static_assert(
    sizeof(ThreadAccount) == 776,
    "ThreadAccount changed: clear its new fields in restart_account, then update the size");
void restart_account(ThreadAccount& a, const ThreadAccount& closed) {
  a.key = closed.key;
  a.comm = closed.comm;  // `a`'s were moved to `closed`
  a.process_name = closed.process_name;
  a.split = {};
  for (auto& d : a.details) d.clear();
  a.samples = 0;
  a.first_seen_ns = closed.first_seen_ns;
  a.last_seen_ns = closed.last_seen_ns;
  a.majflt = 0;
  a.blkio_delay_ns = 0;
  a.kernel_work_ns = 0;
  a.held_ns = {};
  a.lock_objects_ns.clear();
  a.idle_objects_ns.clear();
  a.waited_for = {};
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
  std::uint64_t acked = 0;
  // By (clients, address): the peer, and the bytes its connections sent over the window.
  std::map<std::pair<bool, std::string>, std::pair<ProcessSummary::Peer, std::uint64_t>> by_peer;
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
      ps.upstream_rtt_us_max = std::max<std::uint64_t>(ps.upstream_rtt_us_max, s.rtt_us);
    }
    ps.notsent_bytes += s.notsent_bytes;
    const std::string address =
        s.server_side ? s.remote_addr : fmt::format("{}:{}", s.remote_addr, s.remote_port);
    auto& [peer, peer_sent_bytes] = by_peer[{s.server_side, address}];
    ++peer.connections;
    peer.rtt_us_max = std::max(peer.rtt_us_max, s.rtt_us);
    peer.notsent_bytes += s.notsent_bytes;
    peer.unacked_segments += s.unacked_segments;
    auto f = p.sockets_first.find(inode);
    if (f != p.sockets_first.end()) {
      ps.sndbuf_limited_us +=
          util::saturating_delta(f->second.sndbuf_limited_us, s.sndbuf_limited_us);
      ps.rwnd_limited_us += util::saturating_delta(f->second.rwnd_limited_us, s.rwnd_limited_us);
      const std::uint64_t sent = util::saturating_delta(f->second.bytes_acked, s.bytes_acked);
      acked += sent;
      peer_sent_bytes += sent;
      peer.retransmits += util::saturating_delta(f->second.total_retrans, s.total_retrans);
    }
  }
  const auto per_s = [secs](std::uint64_t bytes) {
    return secs > 0 ? static_cast<std::uint64_t>(static_cast<double>(bytes) / secs) : 0;
  };
  ps.bytes_sent_per_s = per_s(acked);
  for (auto& [key, peer_and_bytes] : by_peer) {
    auto& [peer, sent_bytes] = peer_and_bytes;
    peer.address = key.second;
    peer.clients = key.first;
    peer.bytes_sent_per_s = per_s(sent_bytes);
    ps.peers.push_back(std::move(peer));
  }
  std::stable_sort(ps.peers.begin(), ps.peers.end(), [](const auto& a, const auto& b) {
    return a.bytes_sent_per_s > b.bytes_sent_per_s;
  });
  return ps;
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
    finished_.push_back(std::move(t.account));
    // Going on (cut_after): the thread keeps its track, and its account is cleared in place.
    if (keep_threads) restart_account(t.account, finished_.back());
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
      obs.wait_graph->objects =
          std::make_shared<const std::vector<WaitObject>>(wait_objects(*obs.wait_graph));
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
  // agent) holds the threads and processes that are alive, not every one it ever saw. A process's
  // tids are its live threads and those that ended in the window (ended_in_window_): only the
  // latter go, not a walk of every thread (a tid reused in the window is live again).
  for (const auto& [pid, tid] : ended_in_window_) {
    if (threads_.count({pid, tid}) != 0) continue;
    if (auto p = processes_.find(pid); p != processes_.end()) p->second.tids.erase(tid);
  }
  ended_in_window_.clear();
  for (auto it = processes_.begin(); it != processes_.end();) {
    ProcessTrack& p = it->second;
    if (p.tids.empty()) {
      pids_.erase(it->first);
      it = processes_.erase(it);
      continue;
    }
    // The window's reads go; the name, the live threads and what the sampler saw of the fds and
    // futexes stay (the threads' ExactSplits point at `waits`; naming it here also spares the
    // allocation of its default).
    p = ProcessTrack{
        .name = std::move(p.name), .tids = std::move(p.tids), .waits = std::move(p.waits)};
    ++it;
  }
  lock_behind_disk_ns_ = 0;
  syscall_denied_ = 0;
  if (exact_last_) exact_before_ = std::move(exact_last_);
  // The edges' baseline is where the window ended; those into threads that ended go.
  std::size_t kept = 0;
  for (std::size_t i = 0; i < edges_.size(); ++i) {
    EdgeEntry entry = edges_[i];
    auto p = processes_.find(entry.key.wakee_pid);
    if (p == processes_.end() || p->second.tids.count(entry.key.wakee_tid) == 0) continue;
    entry.sums.base_ns = entry.sums.last_ns;
    entry.sums.base_count = entry.sums.last_count;
    edges_[kept++] = entry;
  }
  if (kept < edges_.size()) {
    edges_.erase(edges_.begin() + static_cast<std::ptrdiff_t>(kept), edges_.end());
    index_edges(edge_slots_.size());
    edge_order_.clear();
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
}  // namespace builder_internal

using builder_internal::Builder;

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
}  // namespace chokepoint::model
