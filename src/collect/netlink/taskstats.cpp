#include "collect/netlink/taskstats.h"

#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/taskstats.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace chokepoint::collect::netlink {
namespace {

constexpr std::size_t kBufferBytes = 16384;

// Appends a netlink attribute (type, payload), padded to NLA_ALIGNTO.
void put_attr(std::string& msg, std::uint16_t type, const void* data, std::size_t len) {
  nlattr a{};
  a.nla_len = static_cast<std::uint16_t>(NLA_HDRLEN + len);
  a.nla_type = type;
  msg.append(reinterpret_cast<const char*>(&a), sizeof a);
  msg.append(static_cast<const char*>(data), len);
  msg.append(NLA_ALIGN(len) - len, '\0');
}

// Builds nlmsghdr + genlmsghdr + attributes.
std::string build(std::uint16_t type, std::uint8_t cmd, std::uint32_t seq,
                  const std::string& attrs) {
  std::string msg(NLMSG_HDRLEN + GENL_HDRLEN, '\0');
  msg += attrs;
  auto* h = reinterpret_cast<nlmsghdr*>(msg.data());
  h->nlmsg_len = static_cast<std::uint32_t>(msg.size());
  h->nlmsg_type = type;
  h->nlmsg_flags = NLM_F_REQUEST;
  h->nlmsg_seq = seq;
  auto* g = reinterpret_cast<genlmsghdr*>(msg.data() + NLMSG_HDRLEN);
  g->cmd = cmd;
  g->version = 1;
  return msg;
}

// Walks the attributes in [p, end); calls f(type, payload, payload_len) for each well-formed one.
template <typename F>
void for_each_attr(const std::uint8_t* p, const std::uint8_t* end, F&& f) {
  while (end - p >= static_cast<std::ptrdiff_t>(NLA_HDRLEN)) {
    nlattr a;
    std::memcpy(&a, p, sizeof a);
    if (a.nla_len < NLA_HDRLEN || a.nla_len > end - p) return;
    f(static_cast<std::uint16_t>(a.nla_type & NLA_TYPE_MASK), p + NLA_HDRLEN,
      static_cast<std::size_t>(a.nla_len - NLA_HDRLEN));
    const std::size_t step = NLA_ALIGN(a.nla_len);
    if (step > static_cast<std::size_t>(end - p)) return;
    p += step;
  }
}

util::Result<std::vector<std::uint8_t>> exchange(int fd, const std::string& request) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd, request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof kernel) < 0) {
    return util::errno_error("taskstats: sendto");
  }
  std::vector<std::uint8_t> buf(kBufferBytes);
  ssize_t n;
  do {
    n = ::recv(fd, buf.data(), buf.size(), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return util::errno_error("taskstats: recv");
  buf.resize(static_cast<std::size_t>(n));
  return buf;
}

// The netlink error in `message`, if it is one.
std::optional<int> netlink_error(std::span<const std::uint8_t> message) {
  if (message.size() < NLMSG_HDRLEN) return EPROTO;
  nlmsghdr h;
  std::memcpy(&h, message.data(), sizeof h);
  if (h.nlmsg_type != NLMSG_ERROR) return std::nullopt;
  if (message.size() < NLMSG_HDRLEN + sizeof(nlmsgerr)) return EPROTO;
  nlmsgerr e;
  std::memcpy(&e, message.data() + NLMSG_HDRLEN, sizeof e);
  return -e.error;
}

}  // namespace

util::Result<TaskDelays> parse_taskstats_message(std::span<const std::uint8_t> message) {
  if (auto err = netlink_error(message)) {
    return util::errno_error("taskstats", *err,
                             *err == ESRCH ? "the task exited" : "run as root (CAP_NET_ADMIN)");
  }
  nlmsghdr h;
  std::memcpy(&h, message.data(), sizeof h);
  if (h.nlmsg_len < NLMSG_HDRLEN + GENL_HDRLEN || h.nlmsg_len > message.size()) {
    return util::Error{"taskstats: truncated reply", "", EPROTO};
  }
  const std::uint8_t* p = message.data() + NLMSG_HDRLEN + GENL_HDRLEN;
  const std::uint8_t* end = message.data() + h.nlmsg_len;
  std::optional<TaskDelays> out;
  for_each_attr(p, end, [&](std::uint16_t type, const std::uint8_t* data, std::size_t len) {
    if (type != TASKSTATS_TYPE_AGGR_PID && type != TASKSTATS_TYPE_AGGR_TGID) return;
    for_each_attr(data, data + len, [&](std::uint16_t t, const std::uint8_t* d, std::size_t l) {
      if (t != TASKSTATS_TYPE_STATS || l < sizeof(std::uint16_t)) return;
      // The struct is versioned and only grows (linux/taskstats.h): copy what was sent into a
      // zeroed struct of our version; fields the kernel did not send stay 0.
      taskstats ts{};
      std::memcpy(&ts, d, std::min(l, sizeof ts));
      auto sent = [&](std::size_t offset, std::size_t size) { return offset + size <= l; };
      TaskDelays td;
      td.version = ts.version;
#define CP_FIELD(dst, field) \
  if (sent(offsetof(taskstats, field), sizeof ts.field)) td.dst = ts.field
      CP_FIELD(cpu_count, cpu_count);
      CP_FIELD(cpu_delay_ns, cpu_delay_total);
      CP_FIELD(blkio_count, blkio_count);
      CP_FIELD(blkio_delay_ns, blkio_delay_total);
      CP_FIELD(swapin_count, swapin_count);
      CP_FIELD(swapin_delay_ns, swapin_delay_total);
      CP_FIELD(freepages_count, freepages_count);
      CP_FIELD(freepages_delay_ns, freepages_delay_total);
      CP_FIELD(thrashing_count, thrashing_count);
      CP_FIELD(thrashing_delay_ns, thrashing_delay_total);
      CP_FIELD(compact_count, compact_count);
      CP_FIELD(compact_delay_ns, compact_delay_total);
#undef CP_FIELD
      out = td;
    });
  });
  if (!out) return util::Error{"taskstats: the reply holds no statistics", "", EPROTO};
  return *out;
}

util::Result<Taskstats> Taskstats::open() {
  util::ScopedFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC));
  if (!fd.valid()) return util::errno_error("socket(NETLINK_GENERIC)");
  timeval timeout{1, 0};  // a kernel that never answers must not hang the sampler
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string attrs;
  const char name[] = TASKSTATS_GENL_NAME;
  put_attr(attrs, CTRL_ATTR_FAMILY_NAME, name, sizeof name);
  auto reply = exchange(fd.get(), build(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, attrs));
  if (!reply) return reply.error();
  if (auto err = netlink_error(*reply)) {
    return util::errno_error("taskstats: no TASKSTATS netlink family", *err,
                             "this kernel was built without CONFIG_TASKSTATS");
  }
  nlmsghdr h;
  std::memcpy(&h, reply->data(), sizeof h);
  if (h.nlmsg_len < NLMSG_HDRLEN + GENL_HDRLEN || h.nlmsg_len > reply->size()) {
    return util::Error{"taskstats: truncated family reply", "", EPROTO};
  }
  std::uint16_t family = 0;
  for_each_attr(reply->data() + NLMSG_HDRLEN + GENL_HDRLEN, reply->data() + h.nlmsg_len,
                [&](std::uint16_t type, const std::uint8_t* data, std::size_t len) {
                  if (type == CTRL_ATTR_FAMILY_ID && len >= sizeof family)
                    std::memcpy(&family, data, sizeof family);
                });
  if (family == 0) return util::Error{"taskstats: the family has no id", "", EPROTO};
  return Taskstats(std::move(fd), family);
}

util::Result<TaskDelays> Taskstats::query(std::uint16_t attr, std::uint32_t id) {
  std::string attrs;
  put_attr(attrs, attr, &id, sizeof id);
  auto reply = exchange(fd_.get(), build(family_, TASKSTATS_CMD_GET, ++seq_, attrs));
  if (!reply) return reply.error();
  return parse_taskstats_message(*reply);
}

util::Result<TaskDelays> Taskstats::thread_group(int tgid) {
  return query(TASKSTATS_CMD_ATTR_TGID, static_cast<std::uint32_t>(tgid));
}

util::Result<TaskDelays> Taskstats::thread(int tid) {
  return query(TASKSTATS_CMD_ATTR_PID, static_cast<std::uint32_t>(tid));
}

}  // namespace chokepoint::collect::netlink
