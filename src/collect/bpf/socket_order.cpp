#include "collect/bpf/socket_order.h"

#include <unistd.h>

#include <cerrno>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "collect/bpf/bpf_support.h"
#include "collect/bpf/shared_object.h"
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
std::uint64_t SocketOrderTracer::loads() {
  return 0;
}
std::uint32_t SocketOrderTracer::program_id() const {
  return 0;
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

// The loaded and attached programs, shared by every tracer of the process (shared_object.h).
// Their "targets" map is the union of the tracers' processes: `watchers` counts, for each tgid
// in it, the tracers that watch it, and the last one to let go removes it. The "sockets" map
// stamps the sockets of all of them; a tracer looks up only the inodes of its own processes'
// sockets.
struct Loaded {
  Skeleton skel;
  std::mutex mu;
  std::map<int, int> watchers;  // tgid -> tracers watching it (guarded by mu)
  __u32 targets_gen = 0;        // the last value given to the programs' targets_gen (mu)

  // After a change to `targets`: each task decides again whether it is a target (mu held).
  void targets_changed() {
    __atomic_store_n(&skel->bss->targets_gen, ++targets_gen, __ATOMIC_RELEASE);
  }
};

constinit SharedObject<Loaded> shared_programs;

util::Result<std::unique_ptr<Loaded>> load_programs() {
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
  auto loaded = std::make_unique<Loaded>();
  loaded->skel = std::move(skel);
  return loaded;
}

}  // namespace

struct SocketOrderTracer::Impl {
  std::shared_ptr<Loaded> programs;
  std::set<int> watched;  // this tracer's processes
};

SocketOrderTracer::SocketOrderTracer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SocketOrderTracer::~SocketOrderTracer() {
  Loaded& p = *impl_->programs;
  std::lock_guard<std::mutex> lock(p.mu);
  for (int tgid : impl_->watched) {
    auto it = p.watchers.find(tgid);
    if (it == p.watchers.end() || --it->second > 0) continue;
    p.watchers.erase(it);
    const __u32 key = static_cast<__u32>(tgid);
    bpf_map__delete_elem(p.skel->maps.targets, &key, sizeof(key), 0);
    p.targets_changed();
  }
}

util::Result<std::unique_ptr<SocketOrderTracer>> SocketOrderTracer::create() {
  auto programs = shared_programs.acquire(load_programs);
  if (!programs) return programs.error();
  auto impl = std::make_unique<Impl>();
  impl->programs = std::move(*programs);
  return std::unique_ptr<SocketOrderTracer>(new SocketOrderTracer(std::move(impl)));
}

std::uint64_t SocketOrderTracer::loads() {
  return shared_programs.loads();
}

std::uint32_t SocketOrderTracer::program_id() const {
  bpf_prog_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(bpf_program__fd(impl_->programs->skel->progs.sockorder_send), &info,
                             &len) != 0) {
    return 0;
  }
  return info.id;
}

util::Result<void> SocketOrderTracer::watch(int tgid) {
  if (impl_->watched.count(tgid) != 0) return {};
  Loaded& p = *impl_->programs;
  std::lock_guard<std::mutex> lock(p.mu);
  int& watchers = p.watchers[tgid];
  if (watchers == 0) {
    const __u32 key = static_cast<__u32>(tgid);
    const __u8 one = 1;
    if (bpf_map__update_elem(p.skel->maps.targets, &key, sizeof(key), &one, sizeof(one), BPF_ANY) !=
        0) {
      p.watchers.erase(tgid);
      return util::errno_error("cannot watch the sockets of pid " + std::to_string(tgid),
                               "too many target processes (4,096 at most, over every target)");
    }
    p.targets_changed();
  }
  ++watchers;
  impl_->watched.insert(tgid);
  return {};
}

std::optional<SocketOrder> SocketOrderTracer::lookup(std::uint64_t inode) const {
  const __u64 key = inode;
  sockorder_value v{};
  if (bpf_map__lookup_elem(impl_->programs->skel->maps.sockets, &key, sizeof(key), &v, sizeof(v),
                           0) != 0) {
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
