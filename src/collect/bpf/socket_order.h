#pragma once
// The exact order of a TCP socket's last send and last receive, for the target's processes, from
// the kernel's sock_send_length/sock_recv_length tracepoints (kernel 6.3+, tp_btf).
//
// Why: tcp_info's last-send and last-receive times count jiffies (4 ms at HZ=250). An event loop
// that writes the next request on a kept-alive upstream connection right after the previous
// reply arrived shows both in the same jiffy, which reads as "answered" while the request waits.
// Here each call that moved data stamps the socket with the monotonic time in nanoseconds, so
// "sent after the last receive" (a request out) is exact.
//
// Cost: one BPF hash lookup on every socket send and receive in the system (the caller's tgid);
// for the target's TCP sockets two more map operations. lookup() is one bpf(2) call.
//
// Thread-safety: one thread uses a tracer.

#include <cstdint>
#include <memory>
#include <optional>

#include "util/result.h"

namespace chokepoint::collect::bpf {

struct SocketOrder {
  std::int64_t last_send_ns = 0;  // CLOCK_MONOTONIC; 0: no send seen since the tracer started
  std::int64_t last_recv_ns = 0;  // 0: no receive seen
  std::uint64_t sends = 0;        // calls that moved data, since the tracer started
  std::uint64_t recvs = 0;
  // A request out: the socket sent after its last receive (or sent and never received).
  bool sent_after_recv() const { return last_send_ns > last_recv_ns; }
  // The other side's request read and not answered yet.
  bool recv_after_send() const { return last_recv_ns > last_send_ns; }
};

class SocketOrderTracer {
 public:
  // Loads and attaches the programs. Errors: no BPF in the build, no BTF, not root, a kernel
  // without the sock tracepoints (before 6.3); each with a hint.
  static util::Result<std::unique_ptr<SocketOrderTracer>> create();
  ~SocketOrderTracer();
  SocketOrderTracer(const SocketOrderTracer&) = delete;
  SocketOrderTracer& operator=(const SocketOrderTracer&) = delete;

  // Starts stamping the sockets of process tgid. Errors: the target table (4,096) is full.
  util::Result<void> watch(int tgid);
  // The socket's stamps; nullopt when it moved no data since it was watched.
  std::optional<SocketOrder> lookup(std::uint64_t inode) const;

 private:
  struct Impl;
  explicit SocketOrderTracer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace chokepoint::collect::bpf
