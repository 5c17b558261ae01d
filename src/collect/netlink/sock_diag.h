#pragma once
// TCP sockets and their tcp_info, from the kernel's sock_diag netlink interface (what `ss -ti`
// shows). The sampler uses it to tell what a thread blocked on a socket, or an event loop in
// epoll_wait, is waiting for: a client with nothing to say (idle), an upstream reply or a full send
// buffer (network).

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/tcp_table.h"
#include "util/result.h"
#include "util/scoped_fd.h"

namespace chokepoint::collect::netlink {

// TCP states as in include/net/tcp_states.h (one enum for the whole project: model's).
using TcpState = model::TcpState;

// One TCP socket as sock_diag reports it. tcp_info fields are zero when the kernel did not send
// them (has_info false: TIME_WAIT and request sockets carry none).
struct TcpSocket {
  std::uint64_t inode = 0;  // matches "socket:[inode]" in /proc/PID/fd; 0 for TIME_WAIT
  TcpState state = TcpState::kClose;
  int family = 0;  // AF_INET or AF_INET6
  std::string local_addr;
  std::string remote_addr;
  std::uint16_t local_port = 0;
  std::uint16_t remote_port = 0;
  // For LISTEN sockets: recv_queue is the accept queue length, send_queue its limit (backlog).
  std::uint32_t recv_queue_bytes = 0;
  std::uint32_t send_queue_bytes = 0;

  bool has_info = false;
  std::uint32_t rtt_us = 0;
  std::uint32_t rttvar_us = 0;
  std::uint32_t unacked_segments = 0;
  std::uint32_t lost_segments = 0;
  std::uint32_t retrans_segments = 0;   // currently retransmitted, unacked
  std::uint32_t total_retrans = 0;      // over the connection's life
  std::uint32_t last_data_sent_ms = 0;  // ms since we last sent data
  std::uint32_t last_data_recv_ms = 0;  // ms since we last received data
  std::uint32_t last_ack_recv_ms = 0;
  std::uint32_t notsent_bytes = 0;  // written by the app, not yet sent
  std::uint32_t snd_cwnd_segments = 0;
  std::uint64_t bytes_acked = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t delivery_rate_bytes_per_s = 0;
  std::uint64_t busy_time_us = 0;
  std::uint64_t rwnd_limited_us = 0;    // time limited by the peer's receive window
  std::uint64_t sndbuf_limited_us = 0;  // time limited by our send buffer
};

// A sock_diag netlink socket bound to one network namespace. Move-only.
// Thread-safety: one thread at a time per object.
class SockDiag {
 public:
  // A socket in the caller's network namespace.
  static util::Result<SockDiag> open();
  // A socket in the network namespace of process pid (needs CAP_SYS_ADMIN when that namespace is
  // not ours). Returns the same as open() when pid shares our namespace.
  static util::Result<SockDiag> open_in_netns_of(pid_t pid);

  // TCP sockets, IPv4 and IPv6, with tcp_info where the kernel has it. state_mask is a set of
  // (1 << TcpState) bits. A dump of LISTEN sockets only is cheap; any other state makes the kernel
  // walk its whole established hash table (2.5 ms here with 262,144 buckets, however few sockets
  // exist; one walk serves both families), so the sampler inspects single sockets with
  // SocketInspector instead.
  util::Result<std::vector<TcpSocket>> dump_tcp(std::uint32_t state_mask = kAllStates);
  // The same dump, each socket handed to `each` as it is decoded instead of kept: a host's dump
  // can hold tens of thousands of TIME_WAIT sockets (other programs' load tests), 190 bytes each
  // as a TcpSocket, and a caller that only counts or groups them need not hold them all at once.
  // On an error, `each` may have seen part of the dump.
  using SocketVisitor = std::function<void(TcpSocket&&)>;
  util::Result<void> dump_tcp_each(std::uint32_t state_mask, const SocketVisitor& each);

  static constexpr std::uint32_t kAllStates = 0xFFFu;
  static constexpr std::uint32_t kListenOnly = 1u << static_cast<unsigned>(TcpState::kListen);

  // The inode of the namespace this object dumps (as /proc/PID/ns/net shows it).
  std::uint64_t netns_inode() const { return netns_inode_; }

 private:
  SockDiag(util::ScopedFd fd, std::uint64_t netns_inode)
      : fd_(std::move(fd)), netns_inode_(netns_inode) {}
  util::Result<void> dump_family(int family, std::uint32_t state_mask, const SocketVisitor& each);
  // Sends `request` and hands the answers of type answer_type to `each` until NLMSG_DONE. family:
  // the request's (AF_UNSPEC for both), for the error a kernel without IPv6 gives.
  util::Result<void> run_dump(const void* request, std::size_t request_bytes,
                              std::uint16_t answer_type, int family, const SocketVisitor& each);

  util::ScopedFd fd_;
  std::uint64_t netns_inode_ = 0;
  std::uint32_t seq_ = 1;
  bool compat_refused_ = false;  // the kernel refused the one-walk request (dump_tcp)
};

// Reads one socket of another process directly: pidfd_getfd() borrows the fd (Linux 5.6+, needs
// ptrace-attach rights: root, or the owner with yama ptrace_scope 0), then getsockopt(TCP_INFO),
// getsockname/getpeername and the queue ioctls answer for that socket alone, in a few µs. The
// borrowed fd is closed at once; the target's own fd is untouched.
// Thread-safety: one thread at a time per object. Move-only.
class SocketInspector {
 public:
  static util::Result<SocketInspector> open(pid_t pid);
  // The socket behind the target's fd, or an error (closed meanwhile, not TCP, not permitted).
  // Fills the same fields as a sock_diag dump.
  util::Result<TcpSocket> inspect(int target_fd) const;

 private:
  explicit SocketInspector(util::ScopedFd pidfd) : pidfd_(std::move(pidfd)) {}
  util::ScopedFd pidfd_;
};

// The inode of process pid's network namespace, or nullopt-like error when unreadable.
util::Result<std::uint64_t> netns_inode_of(pid_t pid, const std::string& proc_root = "/proc");

}  // namespace chokepoint::collect::netlink
