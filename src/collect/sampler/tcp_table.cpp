#include "collect/sampler/tcp_table.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include "collect/netlink/sock_diag.h"
#include "collect/procfs/net.h"
#include "collect/procfs/text.h"
#include "util/scoped_fd.h"

namespace chokepoint::collect::sampler {
namespace {

using netlink::TcpSocket;
using netlink::TcpState;

std::optional<std::uint64_t> read_sysctl_u64(const procfs::ProcFs& proc, std::string_view path) {
  auto text = proc.read_text(path, false);
  if (!text) return std::nullopt;
  return procfs::parse_u64(procfs::trim(*text));
}

// Net sysctls are per network namespace, and /proc/sys shows the namespace of the reader.
void read_net_sysctls(const procfs::ProcFs& proc, model::TcpTableSample& t) {
  if (auto text = proc.read_text("sys/net/ipv4/ip_local_port_range", false)) {
    if (auto r = procfs::parse_port_range(*text)) {
      t.port_range_low = r->low;
      t.port_range_high = r->high;
    }
  }
  t.somaxconn = read_sysctl_u64(proc, "sys/net/core/somaxconn");
  t.max_syn_backlog = read_sysctl_u64(proc, "sys/net/ipv4/tcp_max_syn_backlog");
  t.tw_reuse = read_sysctl_u64(proc, "sys/net/ipv4/tcp_tw_reuse");
  t.syncookies = read_sysctl_u64(proc, "sys/net/ipv4/tcp_syncookies");
  t.conntrack_count = read_sysctl_u64(proc, "sys/net/netfilter/nf_conntrack_count");
  t.conntrack_max = read_sysctl_u64(proc, "sys/net/netfilter/nf_conntrack_max");
  // thread-self: /proc/net is /proc/self/net, the namespace of the process's first thread, which
  // is not the one this reader may have entered.
  if (auto text = proc.read_text("thread-self/net/stat/nf_conntrack", false)) {
    if (auto st = procfs::parse_conntrack_stat(*text)) {
      t.conntrack_drop = st->drop;
      t.conntrack_early_drop = st->early_drop;
      t.conntrack_insert_failed = st->insert_failed;
    }
  }
}

// Reads them on a short-lived thread that entered pid's namespace (setns changes only the calling
// thread's), or here when pid shares ours.
void read_net_sysctls_of(const procfs::ProcFs& proc, int pid, model::TcpTableSample& t) {
  auto theirs = netlink::netns_inode_of(pid, proc.root());
  auto ours = netlink::netns_inode_of(getpid(), proc.root());
  if (!theirs || !ours || *theirs == *ours) {
    read_net_sysctls(proc, t);
    return;
  }
  const std::string ns_path = proc.root() + "/" + std::to_string(pid) + "/ns/net";
  util::ScopedFd ns_fd(::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns_fd.valid()) return;
  std::thread worker([&] {
    if (::setns(ns_fd.get(), CLONE_NEWNET) == 0) read_net_sysctls(proc, t);
  });
  worker.join();
}

// Sockets without an fd (TIME_WAIT, SYN_RECV, FIN_WAIT2 after close), counted by the group
// they fall in: no fd can make them a target's, only their endpoints can (take_tcp_table).
struct OrphanGroup {
  TcpState state = TcpState::kClose;
  bool server_side = false;
  std::string local_addr;
  std::uint16_t local_port = 0;  // 0 on the client side
  std::string remote_addr;
  std::uint16_t remote_port = 0;  // 0 on the server side
  std::uint64_t count = 0;
};

// One dump of a namespace, as take_tcp_table needs it. A host where other programs ran load
// tests holds tens of thousands of TIME_WAIT sockets for a minute: kept whole (190 bytes each as
// a TcpSocket, and a vector's doubling on top), every dump by one of the agent's target threads
// left its own malloc arena that much bigger (the agent at 94 MB instead of 30 with 15,000 to
// 28,000 of them, docs/benchmarks.md). Orphans are counted by group as they come instead.
struct NamespaceDump {
  std::vector<TcpSocket> sockets;  // the listening ones and those with an fd (inode != 0)
  std::vector<OrphanGroup> orphans;
  std::set<std::uint16_t> listen_ports;
};

// The last dumps of this process, one per network namespace (at most kMaxShared).
struct SharedDump {
  std::uint64_t netns = 0;
  std::int64_t at_ns = 0;
  std::shared_ptr<const NamespaceDump> dump;
};
constexpr std::size_t kMaxShared = 16;
struct SharedDumps {
  std::mutex mutex;
  std::vector<SharedDump> dumps;  // GUARDED_BY(mutex)
};
SharedDumps& shared() {
  static SharedDumps s;
  return s;
}

util::Result<std::shared_ptr<const NamespaceDump>> dump_of(int pid, bool whole_host) {
  auto diag = whole_host ? netlink::SockDiag::open() : netlink::SockDiag::open_in_netns_of(pid);
  if (!diag) return diag.error();
  auto d = std::make_shared<NamespaceDump>();
  // An orphan's group needs the listening ports, which the per-family fallback dumps after the
  // other family's orphans: until the end an orphan is its state, ports and its address pair
  // (few distinct pairs: an id into pairs).
  struct Orphan {
    std::uint32_t pair = 0;
    std::uint16_t local_port = 0, remote_port = 0;
    TcpState state = TcpState::kClose;
  };
  std::vector<Orphan> orphans;
  std::map<std::pair<std::string, std::string>, std::uint32_t> pair_ids;
  std::vector<const std::pair<std::string, std::string>*> pairs;
  auto dumped = diag->dump_tcp_each(netlink::SockDiag::kAllStates, [&](TcpSocket&& s) {
    if (s.state == TcpState::kListen) d->listen_ports.insert(s.local_port);
    if (s.inode != 0 || s.state == TcpState::kListen) {
      d->sockets.push_back(std::move(s));
      return;
    }
    auto [it, added] = pair_ids.try_emplace({std::move(s.local_addr), std::move(s.remote_addr)},
                                            static_cast<std::uint32_t>(pairs.size()));
    if (added) pairs.push_back(&it->first);
    orphans.push_back({it->second, s.local_port, s.remote_port, s.state});
  });
  if (!dumped) return dumped.error();
  // (state, server side, pair, local port, remote port) -> count, in take_tcp_table's key order
  // once the pair's addresses replace its id (the groups are merged into a map there).
  std::map<std::tuple<std::uint8_t, bool, std::uint32_t, std::uint16_t, std::uint16_t>,
           std::uint64_t>
      counts;
  // The side of an orphan whose local port does not listen (any more): a server that exited
  // leaves its closed connections in TIME_WAIT for a minute, the clients' ports on the remote
  // side. Grouped as client sockets they made a group per client port: 12,000 groups in each of
  // the agent's tables (and their copies in every window), the agent at 147 MB instead of 30
  // (docs/benchmarks.md). The local endpoint is the server's when more of the orphans share it
  // than share the remote one (a destination many connections went to is the other way round).
  std::map<std::pair<std::uint32_t, std::uint16_t>, std::uint32_t> by_local, by_remote;
  for (const Orphan& o : orphans) {
    ++by_local[{o.pair, o.local_port}];
    ++by_remote[{o.pair, o.remote_port}];
  }
  for (const Orphan& o : orphans) {
    const bool server_side = d->listen_ports.count(o.local_port) > 0 ||
                             by_local[{o.pair, o.local_port}] > by_remote[{o.pair, o.remote_port}];
    ++counts[{static_cast<std::uint8_t>(o.state), server_side, o.pair,
              server_side ? o.local_port : std::uint16_t{0},
              server_side ? std::uint16_t{0} : o.remote_port}];
  }
  d->orphans.reserve(counts.size());
  for (const auto& [key, count] : counts) {
    const auto& [state, server_side, pair, local_port, remote_port] = key;
    d->orphans.push_back({static_cast<TcpState>(state), server_side, pairs[pair]->first, local_port,
                          pairs[pair]->second, remote_port, count});
  }
  return std::shared_ptr<const NamespaceDump>(std::move(d));
}

// A dump of pid's namespace: the shared one when it is at most reuse_ns from now_ns. *at_ns is
// set to the time of the dump returned.
util::Result<std::shared_ptr<const NamespaceDump>> shared_dump(const procfs::ProcFs& proc, int pid,
                                                               bool whole_host, std::int64_t now_ns,
                                                               std::int64_t reuse_ns,
                                                               std::int64_t* at_ns) {
  *at_ns = now_ns;
  if (reuse_ns <= 0) return dump_of(pid, whole_host);
  auto netns = netlink::netns_inode_of(pid, proc.root());
  if (!netns) return dump_of(pid, whole_host);
  // Held over the dump: a caller closing at the same time waits for it and shares it.
  SharedDumps& sd = shared();
  std::lock_guard<std::mutex> lock(sd.mutex);
  auto& shared_dumps = sd.dumps;
  auto it = std::find_if(shared_dumps.begin(), shared_dumps.end(),
                         [&](const SharedDump& d) { return d.netns == *netns; });
  if (it != shared_dumps.end() && std::llabs(now_ns - it->at_ns) <= reuse_ns) {
    *at_ns = it->at_ns;
    return it->dump;
  }
  auto dump = dump_of(pid, whole_host);
  if (!dump) return dump.error();
  if (it == shared_dumps.end()) {
    if (shared_dumps.size() >= kMaxShared) {
      it = std::min_element(
          shared_dumps.begin(), shared_dumps.end(),
          [](const SharedDump& a, const SharedDump& b) { return a.at_ns < b.at_ns; });
    } else {
      it = shared_dumps.insert(shared_dumps.end(), SharedDump{});
    }
  }
  *it = {*netns, now_ns, *dump};
  return *dump;
}

}  // namespace

std::optional<model::TcpTableSample> take_tcp_table(const procfs::ProcFs& proc,
                                                    const std::vector<int>& pids, bool whole_host,
                                                    std::int64_t now_ns, const FdTargetsOf& fds_of,
                                                    std::string* problem, std::int64_t reuse_ns) {
  if (!whole_host && pids.empty()) return std::nullopt;
  std::int64_t dumped_at_ns = now_ns;
  auto dumped = shared_dump(proc, whole_host ? getpid() : pids[0], whole_host, now_ns, reuse_ns,
                            &dumped_at_ns);
  if (!dumped) {
    if (problem) *problem = dumped.error().message;
    return std::nullopt;
  }
  const NamespaceDump& dump = **dumped;

  // The target's sockets by inode; a process that vanished mid-read has none.
  std::set<std::uint64_t> owned;
  for (int pid : whole_host ? std::vector<int>{} : pids) {
    const auto* fds = fds_of(pid);
    if (fds == nullptr) continue;
    for (const auto& fd : *fds) {
      if (fd.target.kind == procfs::FdTarget::Kind::kSocket) owned.insert(fd.target.inode);
    }
  }
  // A namespace where every socket that has an fd is the target's (a container, a pod, a service
  // in a namespace of its own) is the target's: so are its orphans, whatever their endpoints.
  bool namespace_is_target = !owned.empty();
  for (const auto& s : dump.sockets) {
    if (s.inode != 0 && owned.count(s.inode) == 0) namespace_is_target = false;
  }
  const auto is_owned = [&](const TcpSocket& s) {
    return whole_host || (s.inode != 0 && owned.count(s.inode) > 0);
  };

  model::TcpTableSample t;
  t.at_ns = dumped_at_ns;  // a shared dump's own time
  const std::set<std::uint16_t>& listen_ports = dump.listen_ports;
  std::set<std::uint16_t> target_listen_ports;
  std::set<std::pair<std::string, std::uint16_t>> target_destinations;
  for (const auto& s : dump.sockets) {
    if (s.state != TcpState::kListen) continue;
    if (is_owned(s)) target_listen_ports.insert(s.local_port);
    t.listeners.push_back(
        {s.local_addr, s.local_port, s.recv_queue_bytes, s.send_queue_bytes, is_owned(s)});
  }
  for (const auto& s : dump.sockets) {
    if (s.state != TcpState::kListen && listen_ports.count(s.local_port) == 0 && is_owned(s))
      target_destinations.insert({s.remote_addr, s.remote_port});
  }

  // (state, server side, local addr, local port, remote addr, remote port) -> group
  using Key =
      std::tuple<std::uint8_t, bool, std::string, std::uint16_t, std::string, std::uint16_t>;
  std::map<Key, model::TcpGroup> groups;
  const auto add = [&groups](model::TcpGroup&& g, std::uint64_t count, bool target) {
    Key key{static_cast<std::uint8_t>(g.state),
            g.server_side,
            g.local_addr,
            g.local_port,
            g.remote_addr,
            g.remote_port};
    auto [it, added] = groups.try_emplace(std::move(key), std::move(g));
    it->second.count += count;
    it->second.target = it->second.target || target;
  };
  for (const auto& s : dump.sockets) {
    if (s.state == TcpState::kListen) continue;
    const bool server_side = listen_ports.count(s.local_port) > 0;
    model::TcpGroup g;
    g.state = s.state;
    g.server_side = server_side;
    g.local_addr = s.local_addr;
    g.local_port = server_side ? s.local_port : 0;
    g.remote_addr = s.remote_addr;
    g.remote_port = server_side ? 0 : s.remote_port;
    add(std::move(g), 1, is_owned(s));
  }
  // Orphans (TIME_WAIT, SYN_RECV, FIN_WAIT2 after close, and connections not yet accepted) have
  // no fd: they are the target's when they belong to its listener or its destinations.
  for (const auto& o : dump.orphans) {
    const bool target =
        whole_host || namespace_is_target ||
        (o.server_side ? target_listen_ports.count(o.local_port) > 0
                       : target_destinations.count({o.remote_addr, o.remote_port}) > 0);
    model::TcpGroup g;
    g.state = o.state;
    g.server_side = o.server_side;
    g.local_addr = o.local_addr;
    g.local_port = o.local_port;
    g.remote_addr = o.remote_addr;
    g.remote_port = o.remote_port;
    add(std::move(g), o.count, target);
  }
  t.groups.reserve(groups.size());
  for (auto& [key, g] : groups) t.groups.push_back(std::move(g));

  if (whole_host) {
    read_net_sysctls(proc, t);
  } else {
    read_net_sysctls_of(proc, pids[0], t);
  }
  return t;
}

}  // namespace chokepoint::collect::sampler
