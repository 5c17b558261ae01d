#pragma once
// The kernel's process events over the netlink connector (NETLINK_CONNECTOR, CN_IDX_PROC;
// drivers/connector/cn_proc.c, include/uapi/linux/cn_proc.h): every fork (a new process or a new
// thread), exec, comm change and exit on the host, as it happens, without listing /proc.
//
// The kernel multicasts each event to every listening socket and keeps it in the socket's receive
// queue until read. When the queue is full it drops the event and the next read fails with
// ENOBUFS: events were lost and what they said must be learnt another way (a listing of /proc).
// drain() reports that as `overflowed` and carries on with the events that come after.
//
// Needs the host's pid and user namespaces (the kernel answers a listener in another one with
// silence) and, before Linux 6.6, CAP_NET_ADMIN. open() waits for the kernel's acknowledgement
// of the subscription (at most half a second), so a socket it returns does receive events.
// pids are the initial pid namespace's, as the host's /proc names them.
//
// Thread-safety: one thread at a time per ProcConnector. Move-only; the destructor unsubscribes.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "util/result.h"
#include "util/scoped_fd.h"

namespace chokepoint::collect::netlink {

struct ProcEvent {
  enum class Kind : std::uint8_t { kFork, kExec, kComm, kExit };
  Kind kind = Kind::kFork;
  // The task the event is about: for kFork the new one (a new process when pid == tgid, else a
  // new thread of tgid); for the others the one that exec'd, was renamed or exited.
  int pid = 0;
  int tgid = 0;
  int parent_pid = 0, parent_tgid = 0;  // kFork: the task that forked
  std::array<char, 16> comm{};          // kComm: the new name, NUL-terminated
};

// Appends the events of one datagram (nlmsghdr, cn_msg, struct proc_event; one or more netlink
// messages) to `out`. Events other than fork, exec, comm and exit (uid, gid, sid, ptrace,
// coredump, the subscription's acknowledgement) and malformed messages are skipped. Never reads
// past `datagram`; exposed for tests and the fuzzer.
void parse_proc_events(std::span<const std::uint8_t> datagram, std::vector<ProcEvent>& out);

class ProcConnector {
 public:
  // The receive queue asked for by default: about 6,000 events (an event's buffer takes about
  // 700 bytes of it), a second of a build's fork storm between two drains.
  static constexpr int kDefaultReceiveBytes = 4 << 20;

  // Opens the socket, binds it to the process events' group and subscribes
  // (PROC_CN_MCAST_LISTEN). receive_bytes: the receive queue (SO_RCVBUFFORCE as root, else
  // SO_RCVBUF up to net.core.rmem_max; the kernel doubles it for its bookkeeping). Errors carry
  // hints: the connector missing (CONFIG_PROC_EVENTS), refused, or no acknowledgement.
  static util::Result<ProcConnector> open(int receive_bytes = kDefaultReceiveBytes);

  ProcConnector(ProcConnector&&) noexcept = default;
  ProcConnector& operator=(ProcConnector&&) noexcept;
  ProcConnector(const ProcConnector&) = delete;
  ProcConnector& operator=(const ProcConnector&) = delete;
  ~ProcConnector();

  struct Drained {
    std::size_t events = 0;   // appended to `out`
    bool overflowed = false;  // the kernel dropped events since the last drain (ENOBUFS)
    bool more = false;        // max_messages was reached with more queued
  };
  // Appends the queued events to `out` without blocking, reading at most max_messages netlink
  // datagrams. Errors: the socket failed otherwise (the caller stops using it).
  util::Result<Drained> drain(std::vector<ProcEvent>& out, std::size_t max_messages = 16384);

  // Overflows (ENOBUFS) seen by drain since open.
  std::uint64_t overflows() const { return overflows_; }

 private:
  explicit ProcConnector(util::ScopedFd fd) : fd_(std::move(fd)) {}
  void unsubscribe();
  util::ScopedFd fd_;
  std::uint64_t overflows_ = 0;
};

}  // namespace chokepoint::collect::netlink
