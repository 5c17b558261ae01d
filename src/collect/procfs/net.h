#pragma once
// Parsers for the network files: /proc/net/dev, /proc/net/snmp, /proc/net/netstat and
// /proc/net/sockstat. Pure functions of the file's text: no I/O, never throw, safe on any input,
// callable from any thread. These files describe the reader's network namespace.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "collect/procfs/text.h"

namespace chokepoint::collect::procfs {

// One interface of /proc/net/dev (net/core/net-procfs.c dev_seq_printf_stats).
struct NetDevStats {
  std::string name;
  std::uint64_t rx_bytes = 0;
  std::uint64_t rx_packets = 0;
  std::uint64_t rx_errs = 0;
  std::uint64_t rx_drops = 0;
  std::uint64_t tx_bytes = 0;
  std::uint64_t tx_packets = 0;
  std::uint64_t tx_errs = 0;
  std::uint64_t tx_drops = 0;
};
// Skips the two header lines; each interface line needs 16 values after "name:".
std::optional<std::vector<NetDevStats>> parse_net_dev(std::string_view text);

// /proc/net/snmp and /proc/net/netstat: pairs of "Proto: Name1 Name2 ..." / "Proto: v1 v2 ..."
// lines, flattened to "Tcp.RetransSegs", "TcpExt.ListenOverflows", "TcpExt.ListenDrops", ...
// Values are signed because the kernel prints a few as such (Tcp.MaxConn is -1); a counter above
// INT64_MAX wraps to negative, which a modular delta (uint64 subtraction) still handles.
struct NetCounters {
  std::map<std::string, std::int64_t, std::less<>> values;
  std::optional<std::int64_t> get(std::string_view name) const;
};
// A header line without its value line, or counts that differ, makes it nullopt.
std::optional<NetCounters> parse_net_counters(std::string_view text);
// Both files describe one namespace and never share a key, so a sampler can merge them.
void merge_net_counters(NetCounters& into, const NetCounters& from);

// /proc/net/sockstat (net/ipv4/proc.c sockstat_seq_show).
struct Sockstat {
  std::uint64_t sockets_used = 0;  // "sockets: used"
  std::uint64_t tcp_inuse = 0;     // TCP sockets open (not TIME_WAIT)
  std::uint64_t tcp_orphan = 0;    // no longer attached to a process
  std::uint64_t tcp_tw = 0;        // in TIME_WAIT
  std::uint64_t tcp_alloc = 0;
  std::uint64_t tcp_mem_bytes = 0;  // "mem" is in pages
  std::uint64_t udp_inuse = 0;
  std::uint64_t udp_mem_bytes = 0;
};
// Requires the "sockets:" and "TCP:" lines.
std::optional<Sockstat> parse_sockstat(std::string_view text, const Units& units);

// /proc/sys/net/ipv4/ip_local_port_range: "low<TAB>high", the ephemeral ports connect() picks
// from (net/ipv4/sysctl_net_ipv4.c ipv4_local_port_range). nullopt unless exactly two ports with
// low <= high <= 65535.
struct PortRange {
  std::uint32_t low = 0;
  std::uint32_t high = 0;
  std::uint32_t size() const { return high - low + 1; }
};
std::optional<PortRange> parse_port_range(std::string_view text);

// /proc/PID/net/stat/nf_conntrack: a header line, then one row of hex counters per possible CPU
// (net/netfilter/nf_conntrack_standalone.c ct_cpu_seq_show). "entries" is the namespace's
// nf_conntrack_count on every row; the others are per CPU and summed here. Columns are found by
// the header's names (older kernels have fewer). nullopt without the header or a row.
struct ConntrackStat {
  std::uint64_t entries = 0;
  std::uint64_t insert_failed = 0;  // a clash on insert the kernel could not resolve
  std::uint64_t drop = 0;           // the table was full and nothing could be evicted
  std::uint64_t early_drop = 0;     // the table was full and an unreplied entry was evicted
};
std::optional<ConntrackStat> parse_conntrack_stat(std::string_view text);

}  // namespace chokepoint::collect::procfs
