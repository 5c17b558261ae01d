#include "collect/bpf/socket_order.h"

#include <unistd.h>

#include <cerrno>
#include <string>

#include "collect/bpf/bpf_support.h"
#include "util/owned.h"

#ifdef CHOKEPOINT_HAVE_BPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/sockorder.h"
#include "sockorder.skel.h"
#endif

namespace chokepoint::collect::bpf {

#ifndef CHOKEPOINT_HAVE_BPF

struct SocketOrderTracer::Impl {};
SocketOrderTracer::SocketOrderTracer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SocketOrderTracer::~SocketOrderTracer() = default;
util::Result<std::unique_ptr<SocketOrderTracer>> SocketOrderTracer::create() {
  return util::Error{"socket order: chokepoint was built without BPF support", kNoBpfHint, 0};
}
util::Result<void> SocketOrderTracer::watch(int) {
  return util::Error{"socket order: chokepoint was built without BPF support", kNoBpfHint, 0};
}
std::optional<SocketOrder> SocketOrderTracer::lookup(std::uint64_t) const {
  return std::nullopt;
}

#else

namespace {

using Skeleton = util::Owned<sockorder_bpf, sockorder_bpf__destroy>;

}  // namespace

struct SocketOrderTracer::Impl {
  Skeleton skel;
};

SocketOrderTracer::SocketOrderTracer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SocketOrderTracer::~SocketOrderTracer() = default;

util::Result<std::unique_ptr<SocketOrderTracer>> SocketOrderTracer::create() {
  if (auto ok = check_btf_tracing("socket order"); !ok) return ok.error();
  LogCapture log;
  Skeleton skel(sockorder_bpf__open());
  if (!skel) return util::errno_error("cannot open the socket-order BPF object", errno, kNoBpfHint);
  if (int err = sockorder_bpf__load(skel.get()); err != 0) {
    err = -err;
    if (err == EPERM) return permission_error("cannot load the socket-order BPF programs", err);
    // The tracepoints arrived in 6.3: an older kernel has no btf_trace_sock_send_length, and
    // libbpf says so while loading.
    return util::errno_error(
        "cannot load the socket-order BPF programs (tp_btf/sock_send_length)" + log.tail(4), err,
        "the sock_send_length/sock_recv_length tracepoints need Linux 6.3 or later; without them "
        "an event loop's outstanding upstream requests are judged from tcp_info at jiffy "
        "resolution");
  }
  if (int err = sockorder_bpf__attach(skel.get()); err != 0) {
    return util::errno_error("cannot attach the socket-order programs" + log.tail(4), -err,
                             "the sock tracepoints must be available (CONFIG_TRACEPOINTS)");
  }
  auto impl = std::make_unique<Impl>();
  impl->skel = std::move(skel);
  return std::unique_ptr<SocketOrderTracer>(new SocketOrderTracer(std::move(impl)));
}

util::Result<void> SocketOrderTracer::watch(int tgid) {
  const __u32 key = static_cast<__u32>(tgid);
  const __u8 one = 1;
  if (bpf_map__update_elem(impl_->skel->maps.targets, &key, sizeof(key), &one, sizeof(one),
                           BPF_ANY) != 0) {
    return util::errno_error("cannot watch the sockets of pid " + std::to_string(tgid),
                             "too many target processes (4,096 at most)");
  }
  return {};
}

std::optional<SocketOrder> SocketOrderTracer::lookup(std::uint64_t inode) const {
  const __u64 key = inode;
  sockorder_value v{};
  if (bpf_map__lookup_elem(impl_->skel->maps.sockets, &key, sizeof(key), &v, sizeof(v), 0) != 0) {
    return std::nullopt;
  }
  SocketOrder o;
  o.last_send_ns = static_cast<std::int64_t>(v.last_send_ns);
  o.last_recv_ns = static_cast<std::int64_t>(v.last_recv_ns);
  o.sends = v.sends;
  o.recvs = v.recvs;
  return o;
}

#endif

}  // namespace chokepoint::collect::bpf
