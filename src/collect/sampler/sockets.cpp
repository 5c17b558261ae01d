#include "collect/sampler/sockets.h"

#include <sys/stat.h>

namespace chokepoint::collect::sampler {
namespace {
constexpr std::int64_t kListenersRefreshNs = 1'000'000'000;
constexpr std::int64_t kFullDumpRefreshNs = 1'000'000'000;
}  // namespace

SocketTracker::Process& SocketTracker::process(int pid) {
  auto [it, added] = processes_.try_emplace(pid);
  if (added) {
    auto ns = netlink::netns_inode_of(pid, proc_.root());
    it->second.netns = ns ? *ns : 0;
  }
  return it->second;
}

SocketTracker::Namespace& SocketTracker::ns_of(int pid, Process& p) {
  auto& ns = namespaces_[p.netns];
  if (!ns.diag && !ns.failed) {
    auto diag = netlink::SockDiag::open_in_netns_of(pid);
    if (diag) {
      ns.diag.emplace(std::move(diag).value());
    } else {
      ns.failed = true;
      problem_ = diag.error().message + (diag.error().hint.empty() ? "" : "; " + diag.error().hint);
    }
  }
  return ns;
}

void SocketTracker::refresh_listeners(int pid, Namespace& ns, std::int64_t now_ns) {
  (void)pid;
  if (!ns.diag || (ns.listeners_at_ns >= 0 && now_ns - ns.listeners_at_ns < kListenersRefreshNs))
    return;
  auto dump = ns.diag->dump_tcp(netlink::SockDiag::kListenOnly);
  if (!dump) {
    problem_ = dump.error().message;
    return;
  }
  ns.listen_ports.clear();
  for (const auto& s : *dump) ns.listen_ports.insert(s.local_port);
  ns.listeners_at_ns = now_ns;
}

void SocketTracker::refresh_full_dump(Namespace& ns, std::int64_t now_ns) {
  if (!ns.diag || (ns.dumped_at_ns >= 0 && now_ns - ns.dumped_at_ns < kFullDumpRefreshNs)) return;
  // Sockets without an fd (a host's thousands of TIME_WAIT) are never looked up: not kept.
  ns.dump_by_inode.clear();
  auto dumped =
      ns.diag->dump_tcp_each(netlink::SockDiag::kAllStates, [&ns](netlink::TcpSocket&& s) {
        if (s.inode != 0) ns.dump_by_inode.emplace(s.inode, std::move(s));
      });
  if (!dumped) {
    problem_ = dumped.error().message;
    return;
  }
  ns.dumped_at_ns = now_ns;
}

std::optional<netlink::TcpSocket> SocketTracker::socket_for_fd(int pid, int fd, std::uint64_t inode,
                                                               std::int64_t now_ns) {
  Process& p = process(pid);
  if (!p.inspector && !p.inspector_failed) {
    auto ins = netlink::SocketInspector::open(pid);
    if (ins) {
      p.inspector.emplace(std::move(ins).value());
    } else {
      p.inspector_failed = true;
    }
  }
  if (p.inspector) {
    auto s = p.inspector->inspect(fd);
    if (s && (inode == 0 || s->inode == inode)) return std::move(s).value();
    if (!s && s.error().errno_value != EPERM && s.error().errno_value != ENOSYS)
      return std::nullopt;
    if (!s) {
      p.inspector.reset();
      p.inspector_failed = true;
      problem_ =
          "per-socket reads refused (" + s.error().message +
          "): tcp_info comes from sock_diag dumps once a second; run as root for fresh values";
    }
  }
  // Fallback: the namespace's full dump, by inode.
  Namespace& ns = ns_of(pid, p);
  refresh_full_dump(ns, now_ns);
  auto it = ns.dump_by_inode.find(inode);
  if (it == ns.dump_by_inode.end()) return std::nullopt;
  return it->second;
}

bool SocketTracker::is_server_side(int pid, const netlink::TcpSocket& s, std::int64_t now_ns) {
  Process& p = process(pid);
  Namespace& ns = ns_of(pid, p);
  refresh_listeners(pid, ns, now_ns);
  return ns.listen_ports.count(s.local_port) > 0;
}

std::vector<netlink::TcpSocket> SocketTracker::sockets_of(int pid, std::int64_t now_ns) {
  std::vector<netlink::TcpSocket> out;
  Process& p = process(pid);
  // stat(2) of /proc/PID/fd: st_size is the number of open fds since Linux 6.2 (0 before, and
  // then the table is read every time).
  struct stat st {};
  const std::string fd_dir = proc_.root() + "/" + std::to_string(pid) + "/fd";
  const bool sized = ::stat(fd_dir.c_str(), &st) == 0 && st.st_size > 0;
  const auto count = static_cast<std::uint64_t>(st.st_size);
  if (sized && p.fd_count == count) {
    bool all_there = true;
    for (const auto& [fd, inode] : p.tcp_fds) {
      auto s = socket_for_fd(pid, fd, inode, now_ns);
      if (!s) {
        all_there = false;  // closed or replaced: the table changed under the same count
        break;
      }
      out.push_back(std::move(*s));
    }
    if (all_there) return out;
    out.clear();
  }
  p.fd_count.reset();
  p.tcp_fds.clear();
  ++fd_table_reads_;
  auto fds = proc_.read_fd_targets(pid);
  if (!fds) return out;
  for (const auto& fd : *fds) {
    if (fd.target.kind != procfs::FdTarget::Kind::kSocket) continue;
    auto s = socket_for_fd(pid, fd.fd, fd.target.inode, now_ns);
    if (!s) continue;
    p.tcp_fds.emplace_back(fd.fd, fd.target.inode);
    out.push_back(std::move(*s));
  }
  if (sized) p.fd_count = count;
  return out;
}

}  // namespace chokepoint::collect::sampler
