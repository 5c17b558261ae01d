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
// Cost: one task-storage lookup on every socket send and receive in the system that moved data
// (whether the caller's process is a target is decided once per task and change of the target
// set); for the target's TCP sockets a hash lookup and two stores. lookup() is one bpf(2) call.
// The sampler starts it only for an event loop with a connection it opened (wait_observer.h).
//
// One set of loaded programs per process: every tracer alive shares them (shared_object.h: a
// load parses the kernel's BTF and creates the 65,536-entry LRU map), with the union of their
// processes as the kernel's target set. What a tracer reports is unchanged by the others: it
// looks up the sockets of its own processes, which only those processes' calls stamp (a socket
// whose fd another target's process shares is stamped by both, as the kernel sees one socket).
//
// Thread-safety: one thread uses a tracer; tracers on several threads are independent.

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
  // Loads and attaches the programs, unless another tracer of the process holds them. Errors: no
  // BPF in the build, no BTF, not root, a kernel without the sock tracepoints (before 6.3); each
  // with a hint.
  static util::Result<std::unique_ptr<SocketOrderTracer>> create();
  ~SocketOrderTracer();
  SocketOrderTracer(const SocketOrderTracer&) = delete;
  SocketOrderTracer& operator=(const SocketOrderTracer&) = delete;

  // How many times the process loaded the programs (0 without BPF): a test's check that tracers
  // alive at once share them.
  static std::uint64_t loads();
  // The kernel's id of the loaded send program (bpf_prog_info.id; 0 when it cannot be read).
  std::uint32_t program_id() const;

  // Starts stamping the sockets of process tgid, until this tracer is destroyed (and no other
  // watches it). Errors: the target table (4,096 processes over every tracer) is full.
  util::Result<void> watch(int tgid);
  // The socket's stamps; nullopt when it moved no data since it was watched.
  std::optional<SocketOrder> lookup(std::uint64_t inode) const;

 private:
  struct Impl;
  explicit SocketOrderTracer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace chokepoint::collect::bpf
