#pragma once
// The TCP sockets of the target's processes, as the sampler needs them: which side of a
// connection a blocked thread is on (a client of ours, or an upstream we called), and whether an
// event loop has requests out or data queued.
//
// Cost: a sock_diag dump of anything but listeners walks the kernel's whole established hash
// table (2.5 ms here), so sockets are read one by one through SocketInspector (pidfd_getfd +
// TCP_INFO, a few µs each). Where that is refused, a full dump is taken at most once a second.
//
// Thread-safety: used by the sampler thread only.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "collect/netlink/sock_diag.h"
#include "collect/procfs/proc_fs.h"

namespace chokepoint::collect::sampler {

class SocketTracker {
 public:
  explicit SocketTracker(const procfs::ProcFs& proc) : proc_(proc) {}

  // The TCP socket behind fd of pid, as fresh as the method allows; nullopt when it is not TCP
  // or cannot be read.
  std::optional<netlink::TcpSocket> socket_for_fd(int pid, int fd, std::uint64_t inode,
                                                  std::int64_t now_ns);

  // True when the socket's local port is a listening port of the namespace: it was accepted,
  // so its peer is a client of ours.
  bool is_server_side(int pid, const netlink::TcpSocket& s, std::int64_t now_ns);

  // Every TCP socket the process has open now. The fds that are TCP sockets are remembered with
  // their inodes: while the process's fd count (stat of /proc/PID/fd, Linux 6.2+) stays the same
  // and each remembered fd still holds its socket, the fd table is not read again (no readlink
  // per fd). A swap of one fd for another that keeps the count goes unseen until the count moves
  // or a remembered socket closes.
  std::vector<netlink::TcpSocket> sockets_of(int pid, std::int64_t now_ns);

  // Times sockets_of read a process's fd table (a readdir and a readlink per fd).
  std::uint64_t fd_table_reads() const { return fd_table_reads_; }

  // Why socket evidence is missing or degraded, empty when all is well.
  std::string problem() const { return problem_; }

 private:
  struct Namespace {
    std::optional<netlink::SockDiag> diag;
    std::set<std::uint16_t> listen_ports;
    std::int64_t listeners_at_ns = -1;
    std::unordered_map<std::uint64_t, netlink::TcpSocket> dump_by_inode;  // fallback only
    std::int64_t dumped_at_ns = -1;
    bool failed = false;
  };
  struct Process {
    std::uint64_t netns = 0;
    std::optional<netlink::SocketInspector> inspector;
    bool inspector_failed = false;
    // sockets_of's memory: the fd count it saw, and the TCP sockets' (fd, inode) then.
    std::optional<std::uint64_t> fd_count;
    std::vector<std::pair<int, std::uint64_t>> tcp_fds;
  };

  Process& process(int pid);
  Namespace& ns_of(int pid, Process& p);
  void refresh_listeners(int pid, Namespace& ns, std::int64_t now_ns);
  void refresh_full_dump(Namespace& ns, std::int64_t now_ns);

  const procfs::ProcFs& proc_;
  std::map<int, Process> processes_;
  std::map<std::uint64_t, Namespace> namespaces_;
  std::string problem_;
  std::uint64_t fd_table_reads_ = 0;
};

}  // namespace chokepoint::collect::sampler
