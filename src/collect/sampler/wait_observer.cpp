#include "collect/sampler/wait_observer.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/futex.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include <array>
#include <cerrno>
#include <limits>
#include <tuple>

namespace chokepoint::collect::sampler {
namespace {

// write(2) and its variants: the calls whose wait an O_DSYNC file turns into a commit.
bool is_file_write(long nr) {
  return nr == SYS_write || nr == SYS_pwrite64 || nr == SYS_writev || nr == SYS_pwritev ||
         nr == SYS_pwritev2;
}

constexpr std::int64_t kNetWaitRefreshNs = 200'000'000;  // re-read a process's sockets

model::SocketSample socket_sample(int pid, const netlink::TcpSocket& s, bool server_side,
                                  std::int64_t now_ns) {
  model::SocketSample out;
  out.pid = pid;
  out.at_ns = now_ns;
  out.inode = s.inode;
  out.state = s.state == netlink::TcpState::kListen        ? model::SocketState::kListen
              : s.state == netlink::TcpState::kEstablished ? model::SocketState::kEstablished
                                                           : model::SocketState::kOther;
  out.server_side = server_side;
  out.local_addr = s.local_addr;
  out.local_port = s.local_port;
  out.remote_addr = s.remote_addr;
  out.remote_port = s.remote_port;
  out.recv_queue_bytes = s.recv_queue_bytes;
  out.send_queue_bytes = s.send_queue_bytes;
  out.notsent_bytes = s.notsent_bytes;
  out.rtt_us = s.rtt_us;
  out.rttvar_us = s.rttvar_us;
  out.total_retrans = s.total_retrans;
  out.unacked_segments = s.unacked_segments;
  out.bytes_acked = s.bytes_acked;
  out.sndbuf_limited_us = s.sndbuf_limited_us;
  out.rwnd_limited_us = s.rwnd_limited_us;
  return out;
}

}  // namespace

WaitObserver::WaitObserver(const procfs::ProcFs& proc)
    : proc_(proc), sockets_(proc), futex_stacks_(proc.root()) {}

std::vector<model::SocketSample> WaitObserver::take_socket_samples() {
  std::vector<model::SocketSample> out;
  out.swap(socket_samples_);
  return out;
}

void WaitObserver::read_sockets(int pid, std::int64_t now_ns) {
  NetWait& p = net_waits_[pid];
  p.at_ns = -1;
  compute_net_wait(pid, p, now_ns);
}

// An event loop in epoll_wait waits on the network when its process has a request out on a
// connection it opened (it sent more recently than it received), or data queued to a slow peer.
void WaitObserver::compute_net_wait(int pid, NetWait& p, std::int64_t now_ns) {
  // A socket costs a readlink and a pidfd_getfd + TCP_INFO (a few µs): a process with many
  // connections is re-read less often, 200 ms per 256 sockets (at most 1,280 sockets read a
  // second). One with fewer is re-read at each tick, not once per two: what one look finds (a
  // request out in the 10 µs before its reply) stands for the interval of the read that made it,
  // not for those of every read of the next 200 ms (a loop 0.1% of the time on the network read
  // as 15% from one look, three reads' intervals).
  const std::int64_t refresh_ns =
      kNetWaitRefreshNs * static_cast<std::int64_t>(p.socket_count) / 256;
  if (p.at_ns >= 0 && now_ns - p.at_ns < refresh_ns) return;
  p.at_ns = now_ns;
  p.waits = false;
  p.detail.clear();
  int outstanding = 0, queued = 0;
  std::string peer;
  const auto all = sockets_.sockets_of(pid, now_ns);
  p.socket_count = all.size();
  for (const auto& s : all) {
    const bool established = s.state == netlink::TcpState::kEstablished;
    const bool server_side = established && sockets_.is_server_side(pid, s, now_ns);
    socket_samples_.push_back(socket_sample(pid, s, server_side, now_ns));
    if (!established) continue;
    if (!server_side && p.event_loop && !order_watched_.contains(pid)) {
      // Before the first look: until its programs stamp a socket, request_out uses tcp_info.
      watch_socket_order(pid);
    }
    if (!server_side && request_out(s)) {
      ++outstanding;
      peer = fmt::format("{}:{}", s.remote_addr, s.remote_port);
    }
    if (s.notsent_bytes > 0 || (server_side && s.send_queue_bytes > 64 * 1024)) ++queued;
  }
  if (outstanding > 0) {
    p.waits = true;
    // Stable text (no counts), so evidence sums over samples: "upstream 10.0.0.5:5432".
    p.detail = "upstream " + peer;
  } else if (queued > 0) {
    p.waits = true;
    p.detail = "send buffer full";
  }
}

void WaitObserver::watch_socket_order(int pid) {
  if (!order_tried_) {
    order_tried_ = true;
    auto tracer = bpf::SocketOrderTracer::create();
    if (tracer) {
      order_ = std::move(*tracer);
    } else {
      order_problem_ = tracer.error().message;
    }
  }
  if (order_ == nullptr || !order_watched_.insert(pid).second) return;
  if (auto ok = order_->watch(pid); !ok) order_problem_ = ok.error().message;
}

bool WaitObserver::request_out(const netlink::TcpSocket& s) const {
  if (order_ != nullptr && s.inode != 0) {
    if (auto o = order_->lookup(s.inode)) return o->sent_after_recv();
  }
  // Jiffy resolution: a request written in the same jiffy as the last reply arrived is missed.
  return s.last_data_sent_ms < s.last_data_recv_ms;
}

std::pair<model::FdRole, std::string> WaitObserver::classify_fd(int pid, int fd,
                                                                std::int64_t now_ns) {
  model::FdRole role = model::FdRole::kUnknown;
  std::string detail;
  auto target = proc_.read_fd_target(pid, fd);  // fails quietly when the fd closed meanwhile
  if (!target) return {role, detail};
  using K = procfs::FdTarget::Kind;
  switch (target->kind) {
    case K::kRegularFile:
      role = model::FdRole::kRegularFile;
      detail = target->path;
      break;
    case K::kPipe:
      role = model::FdRole::kPipe;
      detail = "pipe";
      break;
    case K::kEventfd:
      role = model::FdRole::kEventfd;
      detail = "eventfd";
      break;
    case K::kEpoll:
      role = model::FdRole::kEpoll;
      break;
    case K::kTimerfd:
      role = model::FdRole::kTimerfd;
      detail = "timerfd";
      break;
    case K::kSignalfd:
      role = model::FdRole::kSignalfd;
      detail = "signalfd";
      break;
    case K::kDevice:
      role = model::FdRole::kCharDevice;
      detail = target->path;
      break;
    case K::kSocket: {
      role = model::FdRole::kSocketOther;
      auto sock = sockets_.socket_for_fd(pid, fd, target->inode, now_ns);
      if (sock) {
        std::string peer = fmt::format("{}:{}", sock->remote_addr, sock->remote_port);
        if (sock->state == netlink::TcpState::kListen) {
          role = model::FdRole::kSocketListen;
        } else if (sockets_.is_server_side(pid, *sock, now_ns)) {
          role = model::FdRole::kSocketServer;
          // The client's address without its (ephemeral) port, so evidence sums over
          // connections.
          detail = "client " + sock->remote_addr + " (send buffer full)";
        } else {
          role = model::FdRole::kSocketClient;
          detail = "upstream " + peer;
        }
      }
      break;
    }
    default:
      role = model::FdRole::kOther;
      break;
  }
  return {role, detail};
}

std::optional<std::pair<bool, std::string>> WaitObserver::poll_waits_on_network(
    int pid, const model::WaitObservation& obs, std::int64_t now_ns) {
  // A thread polling a handful of fds names them; past this it is an event loop in disguise and
  // the process-wide view (compute_net_wait) is the better guess.
  constexpr std::uint64_t kMaxPollFds = 16;
  const std::uint64_t nfds = obs.args[1];
  if (poll_read_denied_ || nfds == 0 || nfds > kMaxPollFds) return std::nullopt;
  std::array<pollfd, kMaxPollFds> fds{};
  iovec local{fds.data(), nfds * sizeof(pollfd)};
  iovec remote{reinterpret_cast<void*>(obs.args[0]), nfds * sizeof(pollfd)};
  // process_vm_readv(2) needs ptrace read access (PTRACE_MODE_ATTACH_REALCREDS): root, or the
  // same user where yama's ptrace_scope allows it.
  const ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
  if (n != static_cast<ssize_t>(nfds * sizeof(pollfd))) {
    if (n < 0 && errno == EPERM) poll_read_denied_ = true;
    return std::nullopt;
  }
  for (std::uint64_t i = 0; i < nfds; ++i) {
    if (fds[i].fd < 0) continue;
    auto [role, detail] = classify_fd(pid, fds[i].fd, now_ns);
    // Waiting to read a connection it opened: an upstream's reply. Waiting to write anywhere: a
    // full send buffer (a slow peer or a full link).
    if (role == model::FdRole::kSocketClient && (fds[i].events & (POLLIN | POLLOUT))) {
      return std::make_pair(true, detail);
    }
    if (role == model::FdRole::kSocketServer && (fds[i].events & POLLOUT)) {
      return std::make_pair(true, detail);
    }
  }
  return std::make_pair(false, std::string());
}

std::pair<model::FdRole, std::string> WaitObserver::fd_in_call(int pid, long nr,
                                                               std::uint64_t fd_arg,
                                                               std::int64_t now_ns) {
  if (fd_arg > static_cast<std::uint64_t>(std::numeric_limits<int>::max())) return {};
  const auto fd = static_cast<int>(fd_arg);
  auto out = classify_fd(pid, fd, now_ns);
  // A file opened O_DSYNC or O_SYNC syncs inside every write: "O_DSYNC /path" tells the disk
  // rule the write is a commit (paths from readlink start with '/', so no path reads as the
  // flag). fdinfo is read for a write only: the flag means nothing to the other calls.
  if (out.first == model::FdRole::kRegularFile && is_file_write(nr)) {
    if (auto flags = proc_.read_fd_flags(pid, fd); flags && (*flags & O_DSYNC) != 0)
      out.second = ((*flags & O_SYNC) == O_SYNC ? "O_SYNC " : "O_DSYNC ") + out.second;
  }
  return out;
}

model::WaitObservation WaitObserver::observe(int pid, const procfs::SyscallState& sc, char state,
                                             std::int64_t now_ns) {
  model::WaitObservation obs;
  obs.state = state;
  switch (sc.kind) {
    case procfs::SyscallState::Kind::kRunning:
      obs.where = model::SyscallWhere::kRunning;
      return obs;
    case procfs::SyscallState::Kind::kNotInSyscall:
      obs.where = model::SyscallWhere::kNotInSyscall;
      return obs;
    case procfs::SyscallState::Kind::kInSyscall:
      break;
  }
  obs.where = model::SyscallWhere::kInSyscall;
  obs.syscall_nr = static_cast<long>(sc.nr);
  obs.args = sc.args;
  int fd_arg = model::fd_argument_index(obs.syscall_nr);
  if (fd_arg >= 0) {
    std::tie(obs.fd_role, obs.fd_detail) =
        fd_in_call(pid, obs.syscall_nr, obs.args[static_cast<std::size_t>(fd_arg)], now_ns);
  }
  const long nr = obs.syscall_nr;
  bool event_wait =
      nr == SYS_epoll_pwait || nr == SYS_epoll_pwait2 || nr == SYS_ppoll || nr == SYS_pselect6;
#ifdef SYS_epoll_wait
  event_wait = event_wait || nr == SYS_epoll_wait;
#endif
#ifdef SYS_poll
  event_wait = event_wait || nr == SYS_poll;
#endif
#ifdef SYS_select
  event_wait = event_wait || nr == SYS_select;
#endif
  bool poll_call = nr == SYS_ppoll;
#ifdef SYS_poll
  poll_call = poll_call || nr == SYS_poll;
#endif
  std::optional<std::pair<bool, std::string>> polled;
  if (poll_call) polled = poll_waits_on_network(pid, obs, now_ns);
  if (polled) {
    // The exact fd set beats the process-wide guess: a thread polling an upstream connection
    // waits on the network even when, at jiffy resolution, its socket's last send and receive
    // look simultaneous.
    obs.process_waits_on_network = polled->first;
    obs.fd_detail = polled->second;
  } else if (event_wait) {
    NetWait& p = net_waits_[pid];
    p.event_loop = true;
    compute_net_wait(pid, p, now_ns);
    obs.process_waits_on_network = p.waits;
    obs.fd_detail = p.detail;
  }
  if (nr == SYS_futex && (obs.args[1] & FUTEX_CMD_MASK) == FUTEX_WAIT_BITSET) {
    obs.futex_caller = futex_stacks_.caller(pid, obs.args[0], sc.sp, sc.pc, now_ns);
  }
  return obs;
}

}  // namespace chokepoint::collect::sampler
