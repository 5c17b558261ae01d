#include "collect/netlink/proc_connector.h"

#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>

namespace chokepoint::collect::netlink {
namespace {

// One datagram is one netlink message of one event here (cn_netlink_send_mult): 16 + 20 + 40
// bytes. A larger buffer leaves room for the kernel's padding and a newer, longer event.
constexpr std::size_t kDatagramBytes = 256;
constexpr std::size_t kBatch = 64;  // datagrams per recvmmsg
constexpr int kAckWaitMs = 500;

// Layout (include/uapi/linux/cn_proc.h, unchanged since 2.6.15 but for new union members):
// what (u32), cpu (u32), timestamp_ns (u64), then the event's union at offset 16.
constexpr std::size_t kEventDataOffset = 16;

template <typename T>
T load(const std::uint8_t* p) {
  T v{};
  std::memcpy(&v, p, sizeof v);
  return v;
}

// nlmsghdr + cn_msg{CN_IDX_PROC, CN_VAL_PROC} + the operation (an int: every event, no filter,
// which is also the form kernels before 6.6 know).
util::Result<void> send_op(int fd, proc_cn_mcast_op op, std::uint32_t ack) {
  std::array<std::uint8_t, NLMSG_SPACE(sizeof(cn_msg) + sizeof(int))> msg{};
  nlmsghdr h{};
  h.nlmsg_len = static_cast<std::uint32_t>(msg.size());
  h.nlmsg_type = NLMSG_DONE;
  h.nlmsg_pid = 0;  // the kernel fills in the port id bound to
  cn_msg c{};
  c.id.idx = CN_IDX_PROC;
  c.id.val = CN_VAL_PROC;
  c.ack = ack;
  c.len = sizeof(int);
  const int value = op;
  std::memcpy(msg.data(), &h, sizeof h);
  std::memcpy(msg.data() + NLMSG_HDRLEN, &c, sizeof c);
  std::memcpy(msg.data() + NLMSG_HDRLEN + sizeof c, &value, sizeof value);
  if (::send(fd, msg.data(), msg.size(), 0) < 0) return util::errno_error("proc connector: send");
  return {};
}

// A number the kernel echoes (plus one) in its acknowledgement, distinct between the sockets of
// this process and of others subscribing at the same time (acknowledgements go to every listener).
std::uint32_t next_ack() {
  static std::atomic<std::uint32_t> counter{0};
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint32_t>(::getpid()) * 2654435761u ^
         static_cast<std::uint32_t>(ts.tv_nsec) ^ (counter.fetch_add(1) << 20);
}

}  // namespace

void parse_proc_events(std::span<const std::uint8_t> datagram, std::vector<ProcEvent>& out) {
  const std::uint8_t* p = datagram.data();
  std::size_t left = datagram.size();
  while (left >= NLMSG_HDRLEN) {
    const auto h = load<nlmsghdr>(p);
    if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > left) return;
    const std::uint8_t* payload = p + NLMSG_HDRLEN;
    const std::size_t payload_len = h.nlmsg_len - NLMSG_HDRLEN;
    const std::size_t step = std::min<std::size_t>(NLMSG_ALIGN(h.nlmsg_len), left);
    p += step;
    left -= step;
    if (h.nlmsg_type == NLMSG_ERROR || h.nlmsg_type == NLMSG_NOOP) continue;
    if (payload_len < sizeof(cn_msg)) continue;
    const auto c = load<cn_msg>(payload);
    if (c.id.idx != CN_IDX_PROC || c.id.val != CN_VAL_PROC) continue;
    const std::size_t data_len = std::min<std::size_t>(c.len, payload_len - sizeof(cn_msg));
    const std::uint8_t* ev = payload + sizeof(cn_msg);
    if (data_len < kEventDataOffset) continue;
    const auto what = load<std::uint32_t>(ev);
    const std::uint8_t* d = ev + kEventDataOffset;
    const std::size_t d_len = data_len - kEventDataOffset;
    ProcEvent e;
    // The union's members are pids (__kernel_pid_t, 32 bits) in the order below, then comm.
    auto pid_at = [&](std::size_t i) { return load<std::int32_t>(d + i * sizeof(std::int32_t)); };
    switch (what) {
      case proc_event::PROC_EVENT_FORK:  // parent_pid, parent_tgid, child_pid, child_tgid
        if (d_len < 4 * sizeof(std::int32_t)) continue;
        e.kind = ProcEvent::Kind::kFork;
        e.parent_pid = pid_at(0);
        e.parent_tgid = pid_at(1);
        e.pid = pid_at(2);
        e.tgid = pid_at(3);
        break;
      case proc_event::PROC_EVENT_EXEC:  // process_pid, process_tgid
        if (d_len < 2 * sizeof(std::int32_t)) continue;
        e.kind = ProcEvent::Kind::kExec;
        e.pid = pid_at(0);
        e.tgid = pid_at(1);
        break;
      case proc_event::PROC_EVENT_COMM:  // process_pid, process_tgid, comm[16]
        if (d_len < 2 * sizeof(std::int32_t) + e.comm.size()) continue;
        e.kind = ProcEvent::Kind::kComm;
        e.pid = pid_at(0);
        e.tgid = pid_at(1);
        std::memcpy(e.comm.data(), d + 2 * sizeof(std::int32_t), e.comm.size());
        e.comm.back() = '\0';
        break;
      case proc_event::PROC_EVENT_EXIT:
        // process_pid, process_tgid, exit_code, exit_signal, (4.18+) parent_pid, parent_tgid:
        // the first two only, so a shorter or longer event of another kernel reads the same.
        if (d_len < 2 * sizeof(std::int32_t)) continue;
        e.kind = ProcEvent::Kind::kExit;
        e.pid = pid_at(0);
        e.tgid = pid_at(1);
        break;
      default:
        continue;
    }
    if (e.pid <= 0 || e.tgid <= 0) continue;
    out.push_back(e);
  }
}

util::Result<ProcConnector> ProcConnector::open(int receive_bytes) {
  util::ScopedFd fd(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR));
  if (!fd.valid()) {
    return util::errno_error("proc connector: socket(NETLINK_CONNECTOR)",
                             "this kernel has no netlink connector (CONFIG_CONNECTOR)");
  }
  if (receive_bytes > 0 && ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &receive_bytes,
                                        sizeof receive_bytes) != 0) {
    // Without CAP_NET_ADMIN: as much as net.core.rmem_max allows.
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &receive_bytes, sizeof receive_bytes);
  }
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = CN_IDX_PROC;
  addr.nl_pid = 0;  // the kernel picks a unique port id
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return util::errno_error("proc connector: bind to the process events' group",
                             "run as root (CAP_NET_ADMIN) for process events; the host's /proc "
                             "is listed instead");
  }
  const std::uint32_t ack = next_ack();
  if (auto sent = send_op(fd.get(), PROC_CN_MCAST_LISTEN, ack); !sent) return sent.error();
  // The kernel acknowledges to the whole group (cn_proc_ack): ours carries ack + 1 and
  // PROC_EVENT_NONE, its err field the subscription's outcome. Events may come before it.
  timespec start{};
  clock_gettime(CLOCK_MONOTONIC, &start);
  std::array<std::uint8_t, kDatagramBytes> buf{};
  for (;;) {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    const long waited_ms =
        (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1'000'000;
    if (waited_ms >= kAckWaitMs) break;
    pollfd pfd{fd.get(), POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(kAckWaitMs - waited_ms));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    const ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ENOBUFS) continue;
      return util::errno_error("proc connector: recv");
    }
    const std::size_t len = static_cast<std::size_t>(n);
    if (len < NLMSG_HDRLEN + sizeof(cn_msg) + kEventDataOffset + sizeof(std::uint32_t)) continue;
    const auto c = load<cn_msg>(buf.data() + NLMSG_HDRLEN);
    const std::uint8_t* ev = buf.data() + NLMSG_HDRLEN + sizeof(cn_msg);
    if (c.id.idx != CN_IDX_PROC || c.ack != ack + 1 ||
        load<std::uint32_t>(ev) != proc_event::PROC_EVENT_NONE) {
      continue;  // an event, or another listener's acknowledgement
    }
    const auto err = load<std::uint32_t>(ev + kEventDataOffset);
    if (err != 0) {
      return util::errno_error("proc connector: subscribe", static_cast<int>(err),
                               "run as root (CAP_NET_ADMIN) for process events; the host's "
                               "/proc is listed instead");
    }
    return ProcConnector(std::move(fd));
  }
  return util::Error{"proc connector: the kernel did not acknowledge the subscription",
                     "process events need the host's pid and user namespaces (and root before "
                     "Linux 6.6, or CONFIG_PROC_EVENTS); the host's /proc is listed instead",
                     ETIMEDOUT};
}

ProcConnector& ProcConnector::operator=(ProcConnector&& other) noexcept {
  if (this != &other) {
    unsubscribe();
    fd_ = std::move(other.fd_);
    overflows_ = other.overflows_;
  }
  return *this;
}

ProcConnector::~ProcConnector() {
  unsubscribe();
}

void ProcConnector::unsubscribe() {
  // Kernels before 6.6 count listeners globally (proc_event_num_listeners) and send events while
  // any is counted: say we leave, or every fork on the host keeps paying for us.
  if (fd_.valid()) (void)send_op(fd_.get(), PROC_CN_MCAST_IGNORE, 0);
  fd_.reset();
}

util::Result<ProcConnector::Drained> ProcConnector::drain(std::vector<ProcEvent>& out,
                                                          std::size_t max_messages) {
  Drained d;
  const std::size_t before = out.size();
  std::array<std::array<std::uint8_t, kDatagramBytes>, kBatch> bufs{};
  std::array<iovec, kBatch> iov{};
  std::array<mmsghdr, kBatch> msgs{};
  std::size_t read = 0;
  int overflow_reports = 0;
  while (read < max_messages) {
    const std::size_t want = std::min(kBatch, max_messages - read);
    for (std::size_t i = 0; i < want; ++i) {
      iov[i] = {bufs[i].data(), bufs[i].size()};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int n =
        ::recvmmsg(fd_.get(), msgs.data(), static_cast<unsigned>(want), MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == ENOBUFS) {
        // Reported once per overflow (sk_err is cleared by this read); what is queued after the
        // drop is read on.
        d.overflowed = true;
        ++overflows_;
        if (++overflow_reports >= 8) break;  // a storm that outruns us: the caller lists anyway
        continue;
      }
      return util::errno_error("proc connector: recvmmsg");
    }
    for (int i = 0; i < n; ++i) {
      if ((msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0) continue;
      parse_proc_events({bufs[i].data(), msgs[i].msg_len}, out);
    }
    read += static_cast<std::size_t>(n);
    if (static_cast<std::size_t>(n) < want) break;
  }
  d.more = read >= max_messages;
  d.events = out.size() - before;
  return d;
}

}  // namespace chokepoint::collect::netlink
