// Conntrack: netfilter's connection tracking table of the target's network namespace against
// net.netfilter.nf_conntrack_max. Every flow a stateful firewall, NAT or Docker's port mapping
// sees takes an entry until its timeout (5 days for an established TCP flow, 2 minutes in
// TIME_WAIT, 30 s for unreplied UDP). At the limit the kernel evicts an unreplied entry when it
// finds one (early_drop) and otherwise drops the packet that would have made a new flow
// ("nf_conntrack: table full, dropping packet" in dmesg): new connections time out while the
// service itself looks idle. A finding, not a bottleneck. See docs/verdicts/conntrack.md.
#include <fmt/format.h>

#include <algorithm>

#include "analysis/rules/rule.h"

namespace chokepoint::analysis::rules {
namespace {

// Near: this share of the table in use. Tables of healthy hosts stay far below it (sized at
// 64 KiB of entries per GiB of memory), and a burst that reaches it is a minute from dropping.
constexpr double kNearFull = 0.8;

}  // namespace

RuleResult conntrack(const Context& ctx) {
  RuleResult out;
  if (!ctx.obs.system.tcp) return out;
  using T = model::TcpTableSample;
  const auto& tcp = *ctx.obs.system.tcp;
  const auto& t = tcp.end;
  if (!t.conntrack_count || !t.conntrack_max || *t.conntrack_max == 0) return out;
  const std::uint64_t count = *t.conntrack_count;
  const std::uint64_t max = *t.conntrack_max;
  const std::uint64_t drop = tcp.growth(&T::conntrack_drop);
  const std::uint64_t early = tcp.growth(&T::conntrack_early_drop);
  const std::uint64_t failed = tcp.growth(&T::conntrack_insert_failed);
  const double fill = static_cast<double>(count) / static_cast<double>(max);
  if (fill < kNearFull && drop == 0 && early == 0) return out;
  std::string full;
  if (drop > 0 || early > 0) {
    full = fmt::format(
        "; the table was full during the window: {} packets of new flows dropped, {} unreplied "
        "entries evicted to make room (/proc/net/stat/nf_conntrack drop, early_drop{})",
        drop, early, failed > 0 ? fmt::format("; {} inserts failed", failed) : std::string());
  }
  out.findings.push_back(
      {FindingResource::kConnections, Severity::kWarning,
       fmt::format("the connection tracking table of the target's network namespace holds {} "
                   "entries of net.netfilter.nf_conntrack_max {} ({}){}",
                   count, max, percent(fill), full),
       fmt::format("raise the limit (sysctl -w net.netfilter.nf_conntrack_max={}, with "
                   "nf_conntrack_buckets), shorten the timeouts that hold most entries "
                   "(net.netfilter.nf_conntrack_tcp_timeout_time_wait, _udp_timeout), and do not "
                   "track traffic that needs no state: loopback and local flows "
                   "(nft: ... notrack, iptables -t raw ... -j NOTRACK)",
                   std::max<std::uint64_t>(max * 2, 262144))});
  return out;
}

}  // namespace chokepoint::analysis::rules
