#pragma once
// The TCP sockets of the target's network namespace, counted by state: the per-target table of
// states (ESTABLISHED, TIME_WAIT, CLOSE_WAIT, SYN_RECV...) and the limits they run into
// (net.ipv4.ip_local_port_range, net.core.somaxconn). The sampler reads it from one sock_diag dump
// at the window's start and one at its end (a dump walks the kernel's whole hash table, 2.5 ms
// here, so it is not taken every tick); analysis/rules/{close_wait,ephemeral_ports,accept_queue,
// syn_flood}.cpp judge it.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chokepoint::model {

// TCP states, numbered as in include/net/tcp_states.h (what sock_diag reports).
enum class TcpState : std::uint8_t {
  kEstablished = 1,
  kSynSent = 2,
  kSynRecv = 3,
  kFinWait1 = 4,
  kFinWait2 = 5,
  kTimeWait = 6,
  kClose = 7,
  kCloseWait = 8,
  kLastAck = 9,
  kListen = 10,
  kClosing = 11,
};
inline constexpr int kTcpStateMax = 11;

// "ESTABLISHED", "TIME_WAIT", ... as ss(8) and netstat print them; "UNKNOWN" outside 1..11.
std::string_view tcp_state_name(TcpState s);
// The state whose tcp_state_name is `name`; nullopt for any other text.
std::optional<TcpState> tcp_state_from_name(std::string_view name);

// Sockets of one state between one pair of endpoints. Server side (the local port is a listening
// port of the namespace, so the peers are clients): local is the listening address and port, and
// remote the client's address with port 0 (clients' ports are many and say nothing). Client side
// (we connected out): local is our address with port 0 (an ephemeral port each), remote the
// destination address and port.
struct TcpGroup {
  TcpState state = TcpState::kEstablished;
  bool server_side = false;
  // The target's: one of the sockets is an fd of a target process, or it is an orphan (TIME_WAIT,
  // SYN_RECV, FIN_WAIT...) of a target's listening port or of a destination the target connects to.
  bool target = false;
  std::string local_addr;
  std::uint16_t local_port = 0;
  std::string remote_addr;
  std::uint16_t remote_port = 0;
  std::uint64_t count = 0;
};

// A listening socket and its accept queue (sock_diag: rqueue is the queue, wqueue the backlog the
// kernel applied, already capped at net.core.somaxconn).
struct TcpListener {
  std::string local_addr;
  std::uint16_t local_port = 0;
  std::uint32_t accept_queue = 0;
  std::uint32_t backlog = 0;
  bool target = false;  // an fd of a target process
};

// One dump, and the namespace's limits read with it (each nullopt when its file was unreadable).
struct TcpTableSample {
  std::int64_t at_ns = 0;
  std::vector<TcpGroup> groups;
  std::vector<TcpListener> listeners;
  std::optional<std::uint32_t> port_range_low, port_range_high;  // net.ipv4.ip_local_port_range
  std::optional<std::uint64_t> somaxconn;                        // net.core.somaxconn
  std::optional<std::uint64_t> max_syn_backlog;                  // net.ipv4.tcp_max_syn_backlog
  std::optional<std::uint64_t> tw_reuse;                         // net.ipv4.tcp_tw_reuse (0, 1, 2)
  std::optional<std::uint64_t> syncookies;                       // net.ipv4.tcp_syncookies
  // Connection tracking (netfilter) of the same namespace, when the kernel has it: the entries
  // (net.netfilter.nf_conntrack_count, per namespace), the table's limit (nf_conntrack_max, one
  // for the host on kernels where a namespace's copy is read-only), and the cumulative "table
  // full" counters of /proc/net/stat/nf_conntrack summed over CPUs (nullopt when unreadable).
  std::optional<std::uint64_t> conntrack_count;
  std::optional<std::uint64_t> conntrack_max;
  std::optional<std::uint64_t> conntrack_drop;           // full, nothing evictable: packet dropped
  std::optional<std::uint64_t> conntrack_early_drop;     // full, an unreplied entry evicted
  std::optional<std::uint64_t> conntrack_insert_failed;  // an insert clash not resolved

  // Sockets of the target in state s (all sockets when target_only is false).
  std::uint64_t count(TcpState s, bool target_only = true) const;
  // Ephemeral ports net.ipv4.ip_local_port_range offers, 0 when unknown.
  std::uint64_t port_range_size() const;
};

// The window's table: the end's dump, with the start's target counts by state to tell growth.
struct TcpTable {
  TcpTableSample end;
  std::optional<TcpTableSample> start;
  double span_s = 0;  // between the two dumps, 0 without a start
  // How long before the window's end `end` was dumped: about 0 when the window's close dumped the
  // table, up to a few seconds when a rolling session (top) repeats its last dump at closes in
  // between (collect/sampler: a dump walks the kernel's whole established hash).
  double age_s = 0;

  // How much a cumulative counter of the table (conntrack_drop, ...) grew between the dumps: 0
  // without both readings or when it went back (a namespace recreated), never negative.
  using Counter = std::optional<std::uint64_t> TcpTableSample::*;
  std::uint64_t growth(Counter counter) const;
};

}  // namespace chokepoint::model
