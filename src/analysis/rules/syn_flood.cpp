// SYN_RECV: half-open connections, a SYN answered and the client's ACK not yet in. On a healthy
// service they last one round trip; hundreds at once are a SYN flood (spoofed sources never
// answer) or clients behind a lossy path, and they fill the SYN queue (tcp_max_syn_backlog), after
// which the kernel drops SYNs unless syncookies answer them. A finding, not a bottleneck.
// See docs/verdicts/syn-flood.md.
#include <fmt/format.h>

#include <algorithm>

#include "analysis/rules/rule.h"

namespace chokepoint::analysis::rules {
namespace {

// Loopback and LAN clients finish a handshake in well under a millisecond: a dump catches a
// handful at most. Fire at a quarter of the SYN queue, and never below this many.
constexpr std::uint64_t kSynRecvMin = 64;

}  // namespace

RuleResult syn_flood(const Context& ctx) {
  RuleResult out;
  if (!ctx.obs.system.tcp) return out;
  const auto& t = ctx.obs.system.tcp->end;
  const std::uint64_t n = t.count(model::TcpState::kSynRecv);
  const std::uint64_t queue = t.max_syn_backlog.value_or(0);
  if (n < std::max(kSynRecvMin, queue / 4)) return out;
  const auto groups = target_groups(t, model::TcpState::kSynRecv);
  const bool cookies = t.syncookies.value_or(0) != 0;
  out.findings.push_back(
      {FindingResource::kConnections, Severity::kWarning,
       fmt::format("{} half-open connections (SYN_RECV): {}; net.ipv4.tcp_max_syn_backlog is {}, "
                   "tcp_syncookies {}",
                   n, groups_text(groups, 3), queue > 0 ? std::to_string(queue) : "unknown",
                   t.syncookies ? std::to_string(*t.syncookies) : "unknown"),
       std::string(cookies ? "" : "turn on SYN cookies (sysctl -w net.ipv4.tcp_syncookies=1); ") +
           "raise net.ipv4.tcp_max_syn_backlog; when one source dominates it is a flood: filter "
           "it before the host (firewall, load balancer)"});
  return out;
}

}  // namespace chokepoint::analysis::rules
