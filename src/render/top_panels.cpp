// The full-screen view's panels (render/top_frame.h's top_panel_lines): disks, connections and
// locks, from one window's observation.
#include <fmt/format.h>
#include <sys/syscall.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "render/top_frame.h"
#include "util/escape.h"

namespace chokepoint::render {
namespace {

using model::Resource;
using util::terminal_text;

}  // namespace

std::string_view top_panel_name(TopPanel panel) {
  switch (panel) {
    case TopPanel::kDisks:
      return "disks";
    case TopPanel::kConnections:
      return "connections";
    case TopPanel::kLocks:
      return "locks";
  }
  return "disks";
}

namespace {

// Threads by their time waiting on `r`, longest first, with the wait's most common detail.
std::vector<std::string> waiting_threads(const model::Observation& obs, Resource r) {
  std::vector<const model::ThreadAccount*> threads;
  for (const auto& t : obs.threads) {
    if (t.split[r] > 0) threads.push_back(&t);
  }
  std::sort(threads.begin(), threads.end(), [r](const auto* a, const auto* b) {
    return a->split[r] != b->split[r] ? a->split[r] > b->split[r] : a->key.tid < b->key.tid;
  });
  std::vector<std::string> out;
  for (const auto* t : threads) {
    const auto& details = t->details[static_cast<std::size_t>(r)];
    const auto top =
        std::max_element(details.begin(), details.end(),
                         [](const auto& a, const auto& b) { return a.second < b.second; });
    out.push_back(fmt::format("{:>7} {:>7} {:<16} {:>6.1f}  {}", t->key.pid, t->key.tid,
                              terminal_text(t->comm.substr(0, 16)),
                              obs.duration_ns > 0 ? 100.0 * static_cast<double>(t->split[r]) /
                                                        static_cast<double>(obs.duration_ns)
                                                  : 0.0,
                              top == details.end() ? "" : terminal_text(top->first)));
  }
  return out;
}

// A panel's last section: a blank line, the column header (`share` names the share's column)
// and the threads that waited on `r`, or `none` when none did (nullptr: nothing).
void append_waiting(std::vector<std::string>& out, const model::Observation& obs, Resource r,
                    const char* share, const char* none) {
  out.emplace_back("");
  out.push_back(
      fmt::format("{:>7} {:>7} {:<16} {:>6}  {}", "PID", "TID", "NAME", share, "WAITS ON"));
  auto threads = waiting_threads(obs, r);
  if (threads.empty() && none != nullptr) threads.emplace_back(none);
  out.insert(out.end(), threads.begin(), threads.end());
}

std::vector<std::string> disks_panel(const model::Observation& obs) {
  std::vector<std::string> out = {
      fmt::format("{:<12} {:>6} {:>8} {:>8} {:>7} {:>7} {:>8} {:>9} {:>6}", "DEVICE", "UTIL%",
                  "READ/s", "WRITE/s", "r/s", "w/s", "flush/s", "await ms", "queue")};
  for (const auto& d : obs.system.disks) {
    out.push_back(
        fmt::format("{:<12} {:>6.1f} {:>8} {:>8} {:>7.1f} {:>7.1f} {:>8.1f} {:>9.2f} {:>6.2f}",
                    terminal_text(d.name), 100 * d.utilization, top_bytes_short(d.read_bytes_per_s),
                    top_bytes_short(d.write_bytes_per_s), d.reads_per_s, d.writes_per_s,
                    d.flushes_per_s, d.await_ms, d.queue_depth));
  }
  if (obs.system.disks.empty()) out.emplace_back("(no device counters in this window)");
  append_waiting(out, obs, Resource::kDisk, "DISK%", "(no thread waited on disk)");
  out.emplace_back("");
  out.push_back(fmt::format("{:>7} {:<16} {:>8} {:>8}", "PID", "NAME", "READ/s", "WRITE/s"));
  const double s = static_cast<double>(obs.duration_ns) / 1e9;
  std::vector<const model::ProcessSummary*> procs;
  for (const auto& p : obs.processes) {
    if (p.read_bytes + p.write_bytes > 0) procs.push_back(&p);
  }
  std::sort(procs.begin(), procs.end(), [](const auto* a, const auto* b) {
    return a->read_bytes + a->write_bytes > b->read_bytes + b->write_bytes;
  });
  for (const auto* p : procs) {
    out.push_back(
        fmt::format("{:>7} {:<16} {:>8} {:>8}", p->pid, terminal_text(p->name.substr(0, 16)),
                    top_bytes_short(s > 0 ? static_cast<double>(p->read_bytes) / s : 0),
                    top_bytes_short(s > 0 ? static_cast<double>(p->write_bytes) / s : 0)));
  }
  if (procs.empty()) out.emplace_back("(no process read or wrote)");
  return out;
}

std::vector<std::string> connections_panel(const model::Observation& obs) {
  const auto& s = obs.system;
  std::vector<std::string> out = {
      fmt::format("tcp: {:.1f} retransmits/s, {} listen overflows, {} time-wait",
                  s.tcp_retrans_per_s, s.listen_overflows, s.time_wait)};
  if (s.tcp) {
    // The state table is dumped every few seconds, not every frame: its age is part of it.
    const model::TcpTableSample& t = s.tcp->end;
    out.push_back(fmt::format(
        "tcp states of the target (sock_diag, {:.1f} s old): {} established, {} close-wait, {} "
        "time-wait, {} listening",
        s.tcp->age_s, t.count(model::TcpState::kEstablished), t.count(model::TcpState::kCloseWait),
        t.count(model::TcpState::kTimeWait),
        std::count_if(t.listeners.begin(), t.listeners.end(),
                      [](const model::TcpListener& l) { return l.target; })));
  }
  out.emplace_back("");
  out.push_back(fmt::format("{:>7} {:<16} {:>7} {:>7} {:>6} {:>8} {:>8} {:>10}", "PID", "NAME",
                            "SERVER", "CLIENT", "LISTEN", "SENT/s", "NOTSENT", "RTT max ms"));
  bool any = false;
  for (const auto& p : obs.processes) {
    if (p.server_connections + p.client_connections + p.listeners == 0) continue;
    any = true;
    out.push_back(fmt::format("{:>7} {:<16} {:>7} {:>7} {:>6} {:>8} {:>8} {:>10.2f}", p.pid,
                              terminal_text(p.name.substr(0, 16)), p.server_connections,
                              p.client_connections, p.listeners,
                              top_bytes_short(static_cast<double>(p.bytes_sent_per_s)),
                              top_bytes_short(static_cast<double>(p.notsent_bytes)),
                              static_cast<double>(p.upstream_rtt_us_max) / 1000));
    for (const auto& l : p.listen_sockets) out.push_back("          listen " + terminal_text(l));
    // Its peers (iftop's view of it), the most bytes sent first.
    constexpr std::size_t kPeersShown = 8;
    for (std::size_t i = 0; i < p.peers.size() && i < kPeersShown; ++i) {
      const auto& peer = p.peers[i];
      out.push_back(fmt::format(
          "          {:<8} {:<21} {:>4} conn {:>6}/s sent {:>5} retrans {:>8.2f} ms rtt {:>6} "
          "notsent {:>5} unacked",
          peer.clients ? "clients" : "upstream", terminal_text(peer.address), peer.connections,
          top_bytes_short(static_cast<double>(peer.bytes_sent_per_s)), peer.retransmits,
          static_cast<double>(peer.rtt_us_max) / 1000,
          top_bytes_short(static_cast<double>(peer.notsent_bytes)), peer.unacked_segments));
    }
    if (p.peers.size() > kPeersShown) {
      out.push_back(fmt::format("          ... and {} more peers", p.peers.size() - kPeersShown));
    }
  }
  if (!any) out.emplace_back("(no process has a TCP socket)");
  append_waiting(out, obs, Resource::kNetwork, "NET%", "(no thread waited on the network)");
  return out;
}

// Who released the lock at `address` ("0x55b9142e3380", as model::classify_futex writes it in
// the lock's detail), from the exact mode's wait-for graph: the thread whose wakeups ended most
// of its waiters' blocked time (a mutex's waiter is woken by the unlock of the thread that held
// it). The largest futex object at that address wins (the same address in two processes).
class LockHolders {
 public:
  explicit LockHolders(const model::Observation& obs) : obs_(obs) {
    if (!obs.wait_graph) return;
    if (obs.wait_graph->objects) {
      objects_ = obs.wait_graph->objects;
    } else {
      objects_ = std::make_shared<const std::vector<model::WaitObject>>(
          model::wait_objects(*obs.wait_graph));
    }
    for (const auto& o : *objects_) {
      if (o.syscall_nr != SYS_futex) continue;
      const model::WaitObject*& slot = by_address_[fmt::format("{:#x}", o.object)];
      if (slot == nullptr || slot->ns < o.ns) slot = &o;
    }
  }

  // The HOLDER column of a lock detail ("mutex 0x55b9142e3380", "rwlock 0x... (caller)").
  std::string holder(const std::string& detail) const {
    if (!obs_.wait_graph) return "not known (the wait-for graph needs --mode exact)";
    const auto from = detail.find(' ');
    const std::string address =
        from == std::string::npos ? ""
                                  : detail.substr(from + 1, detail.find(' ', from + 1) - from - 1);
    auto it = by_address_.find(address);
    if (it == by_address_.end()) return "not seen released in the window";
    const model::WaitObject& o = *it->second;
    if (o.waker_kind == model::WakerKind::kInterrupt) return "none: its waits ended by timeouts";
    std::string who = fmt::format("tid {}", o.waker_tid);
    for (const auto& t : obs_.threads) {
      if (t.key.pid == o.waker_pid && t.key.tid == o.waker_tid) {
        who += " " + terminal_text(t.comm);
        break;
      }
    }
    if (o.waker_pid != 0 &&
        !std::count(obs_.target.pids.begin(), obs_.target.pids.end(), o.waker_pid)) {
      who += fmt::format(" of pid {}", o.waker_pid);
    }
    if (o.shape == model::WaitShape::kContention) {
      return fmt::format("passed among its {} waiters; {} released it most ({:.0f}%)",
                         o.waiters.size(), who, 100 * o.waker_share);
    }
    return fmt::format("{} ({:.0f}% of its waits ended)", who, 100 * o.waker_share);
  }

 private:
  const model::Observation& obs_;
  std::shared_ptr<const std::vector<model::WaitObject>> objects_;
  std::map<std::string, const model::WaitObject*> by_address_;
};

std::vector<std::string> locks_panel(const model::Observation& obs) {
  struct Lock {
    std::int64_t ns = 0;
    std::size_t waiters = 0;
  };
  std::map<std::string, Lock> locks;
  for (const auto& t : obs.threads) {
    for (const auto& [detail, ns] : t.details[static_cast<std::size_t>(Resource::kLock)]) {
      auto& l = locks[detail];
      l.ns += ns;
      ++l.waiters;
    }
  }
  std::vector<std::pair<std::string, Lock>> sorted(locks.begin(), locks.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.second.ns > b.second.ns; });
  const LockHolders holders(obs);
  std::vector<std::string> out = {
      fmt::format("{:<40} {:>8} {:>12}  {}", "LOCK", "WAITERS", "WAITED ms", "HOLDER")};
  for (const auto& [name, l] : sorted) {
    out.push_back(fmt::format("{:<40} {:>8} {:>12.1f}  {}",
                              terminal_text(name.empty() ? "(unknown)" : name), l.waiters,
                              static_cast<double>(l.ns) / 1e6, holders.holder(name)));
  }
  if (sorted.empty()) out.emplace_back("(no thread waited on a lock)");
  // The lock table above already says when no thread waited.
  append_waiting(out, obs, Resource::kLock, "LOCK%", nullptr);
  return out;
}

}  // namespace

std::vector<std::string> top_panel_lines(const model::Observation& obs, TopPanel panel) {
  switch (panel) {
    case TopPanel::kDisks:
      return disks_panel(obs);
    case TopPanel::kConnections:
      return connections_panel(obs);
    case TopPanel::kLocks:
      return locks_panel(obs);
  }
  return {};
}

}  // namespace chokepoint::render
