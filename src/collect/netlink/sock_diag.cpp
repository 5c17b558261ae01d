#include "collect/netlink/sock_diag.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace chokepoint::collect::netlink {
namespace {

constexpr std::size_t kRecvBufferBytes = std::size_t{64} * 1024;

// A dump request: the netlink header, then the request of type `type` (inet_diag_req for the
// compatibility request, inet_diag_req_v2 for a family's), asking for the sockets in state_mask
// with their tcp_info.
template <typename Req>
struct DumpRequest {
  nlmsghdr nlh;
  Req req;
};
template <typename Req>
DumpRequest<Req> dump_request(std::uint16_t type, std::uint32_t seq, const Req& req,
                              std::uint32_t state_mask) {
  DumpRequest<Req> r{};
  r.nlh.nlmsg_len = sizeof r;
  r.nlh.nlmsg_type = type;
  r.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  r.nlh.nlmsg_seq = seq;
  r.req = req;
  r.req.idiag_states = state_mask;
  r.req.idiag_ext = 1U << (INET_DIAG_INFO - 1);
  return r;
}

// NLMSG_OK and NLMSG_NEXT without their comparisons of int and unsigned: the message at `off` of
// a datagram of `total` bytes, or nullptr past its last whole message.
nlmsghdr* message_at(char* buf, std::size_t total, std::size_t off) {
  if (off + sizeof(nlmsghdr) > total) return nullptr;
  auto* h = reinterpret_cast<nlmsghdr*>(buf + off);
  if (h->nlmsg_len < sizeof(nlmsghdr) || h->nlmsg_len > total - off) return nullptr;
  return h;
}

util::Result<util::ScopedFd> make_socket() {
  util::ScopedFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!fd.valid()) {
    return util::errno_error("socket(NETLINK_SOCK_DIAG)",
                             "the kernel lacks sock_diag (CONFIG_INET_DIAG); per-connection "
                             "network evidence is unavailable");
  }
  // A dump never blocks for long, but a deadline keeps a broken kernel from hanging the sampler.
  timeval timeout{1, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  return fd;
}

std::string format_addr(int family, const __be32* addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family, addr, buf, sizeof buf);
  return buf;
}

void fill_info(const tcp_info& info, TcpSocket& s) {
  s.has_info = true;
  s.rtt_us = info.tcpi_rtt;
  s.rttvar_us = info.tcpi_rttvar;
  s.unacked_segments = info.tcpi_unacked;
  s.lost_segments = info.tcpi_lost;
  s.retrans_segments = info.tcpi_retrans;
  s.total_retrans = info.tcpi_total_retrans;
  s.last_data_sent_ms = info.tcpi_last_data_sent;
  s.last_data_recv_ms = info.tcpi_last_data_recv;
  s.last_ack_recv_ms = info.tcpi_last_ack_recv;
  s.notsent_bytes = info.tcpi_notsent_bytes;
  s.snd_cwnd_segments = info.tcpi_snd_cwnd;
  s.bytes_acked = info.tcpi_bytes_acked;
  s.bytes_received = info.tcpi_bytes_received;
  s.delivery_rate_bytes_per_s = info.tcpi_delivery_rate;
  s.busy_time_us = info.tcpi_busy_time;
  s.rwnd_limited_us = info.tcpi_rwnd_limited;
  s.sndbuf_limited_us = info.tcpi_sndbuf_limited;
}

}  // namespace

util::Result<std::uint64_t> netns_inode_of(pid_t pid, const std::string& proc_root) {
  struct stat st {};
  std::string path = proc_root + "/" + std::to_string(pid) + "/ns/net";
  if (::stat(path.c_str(), &st) != 0) return util::errno_error("stat " + path);
  return static_cast<std::uint64_t>(st.st_ino);
}

util::Result<SockDiag> SockDiag::open() {
  auto fd = make_socket();
  if (!fd) return fd.error();
  auto ino = netns_inode_of(getpid());
  return SockDiag(std::move(fd).value(), ino ? *ino : 0);
}

util::Result<SockDiag> SockDiag::open_in_netns_of(pid_t pid) {
  auto target_ns = netns_inode_of(pid);
  if (!target_ns) return target_ns.error();
  auto own_ns = netns_inode_of(getpid());
  if (own_ns && *own_ns == *target_ns) return open();

  // setns() changes only the calling thread's namespace, and a socket stays bound to the namespace
  // it was created in: so create it on a short-lived thread that entered the target's namespace.
  std::string ns_path = "/proc/" + std::to_string(pid) + "/ns/net";
  util::ScopedFd ns_fd(::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns_fd.valid()) {
    return util::errno_error("open " + ns_path,
                             "run as root to see the sockets of a process in another network "
                             "namespace");
  }
  util::Result<util::ScopedFd> made = util::Error{"not run", "", 0};
  std::thread worker([&] {
    if (::setns(ns_fd.get(), CLONE_NEWNET) != 0) {
      made = util::errno_error("setns into the network namespace of pid " + std::to_string(pid),
                               "run as root (CAP_SYS_ADMIN) to see sockets in other namespaces");
      return;
    }
    made = make_socket();
  });
  worker.join();
  if (!made) return made.error();
  return SockDiag(std::move(made).value(), *target_ns);
}

util::Result<std::vector<TcpSocket>> SockDiag::dump_tcp(std::uint32_t state_mask) {
  std::vector<TcpSocket> out;
  auto r = dump_tcp_each(state_mask, [&out](TcpSocket&& s) { out.push_back(std::move(s)); });
  if (!r) return r.error();
  return out;
}

util::Result<void> SockDiag::dump_tcp_each(std::uint32_t state_mask, const SocketVisitor& each) {
  // One walk for both families: the compatibility request (TCPDIAG_GETSOCK) dumps with family
  // AF_UNSPEC (inet_diag_dump_compat in net/ipv4/inet_diag.c), and inet_diag_dump_icsk walks the
  // listening and established hashes once for IPv4 and IPv6 sockets together, where a request per
  // family walks them twice (the established hash has 262,144 buckets here, however few sockets
  // exist: half of the dump's cost). A kernel that refuses it gets a request per family (it
  // refuses the request itself, in the first answer, before any socket).
  if (!compat_refused_) {
    inet_diag_req req{};
    req.idiag_family = AF_INET;  // not read for a dump: both families come
    const auto request = dump_request(TCPDIAG_GETSOCK, ++seq_, req, state_mask);
    auto r = run_dump(&request, sizeof request, TCPDIAG_GETSOCK, AF_UNSPEC, each);
    if (r) return {};
    if (r.error().errno_value != EINVAL && r.error().errno_value != EOPNOTSUPP &&
        r.error().errno_value != ENOENT) {
      return r.error();
    }
    compat_refused_ = true;
  }
  for (int family : {AF_INET, AF_INET6}) {
    auto r = dump_family(family, state_mask, each);
    if (!r) return r.error();
  }
  return {};
}

util::Result<void> SockDiag::dump_family(int family, std::uint32_t state_mask,
                                         const SocketVisitor& each) {
  inet_diag_req_v2 req{};
  req.sdiag_family = static_cast<__u8>(family);
  req.sdiag_protocol = IPPROTO_TCP;
  const auto request = dump_request(SOCK_DIAG_BY_FAMILY, ++seq_, req, state_mask);
  return run_dump(&request, sizeof request, SOCK_DIAG_BY_FAMILY, family, each);
}

util::Result<void> SockDiag::run_dump(const void* request, std::size_t request_bytes,
                                      std::uint16_t answer_type, int family,
                                      const SocketVisitor& each) {
  const std::uint32_t seq = static_cast<const nlmsghdr*>(request)->nlmsg_seq;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd_.get(), request, request_bytes, 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof kernel) < 0) {
    return util::errno_error("sock_diag request");
  }

  // Aligned for nlmsghdr; the kernel sends one dump as several datagrams ending in NLMSG_DONE.
  alignas(nlmsghdr) static thread_local char buf[kRecvBufferBytes];
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return util::errno_error("sock_diag receive");
    }
    if (n == 0) return util::Error{"sock_diag: the kernel closed the dump early", "", 0};
    const auto total = static_cast<std::size_t>(n);
    for (std::size_t off = 0; nlmsghdr* h = message_at(buf, total, off);
         off += NLMSG_ALIGN(h->nlmsg_len)) {
      if (h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type == NLMSG_DONE) return {};
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto* err = static_cast<nlmsgerr*>(NLMSG_DATA(h));
        // IPv6 may be compiled out: an empty answer for that family, not a failure.
        if (family == AF_INET6 && (err->error == -ENOENT || err->error == -EAFNOSUPPORT)) return {};
        return util::errno_error("sock_diag dump", -err->error);
      }
      if (h->nlmsg_type != answer_type) continue;
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) continue;
      const auto* msg = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
      TcpSocket s;
      s.inode = msg->idiag_inode;
      s.state = static_cast<TcpState>(msg->idiag_state);
      s.family = msg->idiag_family;
      s.local_addr = format_addr(msg->idiag_family, msg->id.idiag_src);
      s.remote_addr = format_addr(msg->idiag_family, msg->id.idiag_dst);
      s.local_port = ntohs(msg->id.idiag_sport);
      s.remote_port = ntohs(msg->id.idiag_dport);
      s.recv_queue_bytes = msg->idiag_rqueue;
      s.send_queue_bytes = msg->idiag_wqueue;

      int attr_len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(*msg)));
      for (auto* attr = reinterpret_cast<rtattr*>(const_cast<inet_diag_msg*>(msg) + 1);
           RTA_OK(attr, attr_len); attr = RTA_NEXT(attr, attr_len)) {
        if (attr->rta_type != INET_DIAG_INFO) continue;
        // Older kernels send a shorter tcp_info: copy what came, leave the rest zero.
        tcp_info info{};
        std::size_t payload = RTA_PAYLOAD(attr);
        std::memcpy(&info, RTA_DATA(attr), payload < sizeof info ? payload : sizeof info);
        fill_info(info, s);
      }
      each(std::move(s));
    }
  }
}

util::Result<SocketInspector> SocketInspector::open(pid_t pid) {
#ifdef SYS_pidfd_open
  util::ScopedFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) {
    return util::errno_error("pidfd_open(" + std::to_string(pid) + ")",
                             "needs Linux 5.3+; per-socket tcp_info falls back to sock_diag dumps");
  }
  return SocketInspector(std::move(pidfd));
#else
  (void)pid;
  return util::Error{"pidfd_open is not available on this platform", "", ENOSYS};
#endif
}

util::Result<TcpSocket> SocketInspector::inspect(int target_fd) const {
#ifdef SYS_pidfd_getfd
  util::ScopedFd fd(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd_.get(), target_fd, 0)));
  if (!fd.valid()) {
    return util::errno_error("pidfd_getfd",
                             "run as root (ptrace-attach rights) to read other processes' sockets");
  }
  TcpSocket s;
  struct stat st {};
  if (::fstat(fd.get(), &st) == 0) s.inode = st.st_ino;
  tcp_info info{};
  socklen_t len = sizeof info;
  if (::getsockopt(fd.get(), IPPROTO_TCP, TCP_INFO, &info, &len) != 0) {
    return util::errno_error("getsockopt(TCP_INFO)");  // not a TCP socket
  }
  fill_info(info, s);
  s.state = static_cast<TcpState>(info.tcpi_state);
  sockaddr_storage local{}, peer{};
  socklen_t local_len = sizeof local, peer_len = sizeof peer;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &local_len);
  s.family = local.ss_family;
  auto fill = [](const sockaddr_storage& a, std::string& addr, std::uint16_t& port) {
    if (a.ss_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(&a);
      addr = format_addr(AF_INET, reinterpret_cast<const __be32*>(&in->sin_addr));
      port = ntohs(in->sin_port);
    } else if (a.ss_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a);
      addr = format_addr(AF_INET6, reinterpret_cast<const __be32*>(&in6->sin6_addr));
      port = ntohs(in6->sin6_port);
    }
  };
  fill(local, s.local_addr, s.local_port);
  if (::getpeername(fd.get(), reinterpret_cast<sockaddr*>(&peer), &peer_len) == 0) {
    fill(peer, s.remote_addr, s.remote_port);
  }
  int queued = 0;
  if (s.state == TcpState::kListen) {
    // For listeners, tcp_info carries the accept queue (unacked) and the backlog (sacked).
    s.recv_queue_bytes = info.tcpi_unacked;
    s.send_queue_bytes = info.tcpi_sacked;
  } else {
    if (::ioctl(fd.get(), SIOCINQ, &queued) == 0)
      s.recv_queue_bytes = static_cast<std::uint32_t>(queued);
    if (::ioctl(fd.get(), SIOCOUTQ, &queued) == 0)
      s.send_queue_bytes = static_cast<std::uint32_t>(queued);
  }
  return s;
#else
  (void)target_fd;
  return util::Error{"pidfd_getfd is not available on this platform", "", ENOSYS};
#endif
}

}  // namespace chokepoint::collect::netlink
