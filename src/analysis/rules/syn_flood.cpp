// SYN_RECV: half-open connections, a SYN answered and the client's ACK not yet in. On a healthy
// service they last one round trip; hundreds at once are a SYN flood (spoofed sources never
// answer) or clients behind a lossy path, and they fill the SYN queue (tcp_max_syn_backlog), after
// which the kernel drops SYNs unless syncookies answer them. A finding, not a bottleneck.
// See docs/verdicts/syn-flood.md.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

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
  // By listener: a flood from spoofed sources spreads over as many client addresses as it has
  // SYNs (one group each), which a list of groups would not show.
  struct Listener {
    std::uint64_t count = 0, sources = 0, top = 0;
    std::string top_source;
  };
  std::map<std::string, Listener> by_listener;
  for (const auto* g : target_groups(t, model::TcpState::kSynRecv)) {
    auto& l = by_listener[endpoint(g->local_addr, g->local_port)];
    l.count += g->count;
    ++l.sources;
    if (g->count > l.top) {
      l.top = g->count;
      l.top_source = g->remote_addr;
    }
  }
  std::vector<std::pair<std::string, Listener>> listeners(by_listener.begin(), by_listener.end());
  std::stable_sort(listeners.begin(), listeners.end(),
                   [](const auto& a, const auto& b) { return a.second.count > b.second.count; });
  std::string where;
  bool one_source = false;
  for (std::size_t i = 0; i < listeners.size() && i < 3; ++i) {
    const auto& [at, l] = listeners[i];
    where += fmt::format("{}{} on {} from {} client address{} (the most from one: {} from {})",
                         i == 0 ? "" : ", ", l.count, at, l.sources, l.sources == 1 ? "" : "es",
                         l.top, l.top_source);
    one_source = one_source || l.top * 2 >= l.count;
  }
  if (listeners.size() > 3) where += fmt::format(" and {} more listeners", listeners.size() - 3);
  const bool cookies = t.syncookies.value_or(0) != 0;
  out.findings.push_back(
      {FindingResource::kConnections, Severity::kWarning,
       fmt::format("{} half-open connections (SYN_RECV): {}; net.ipv4.tcp_max_syn_backlog is {}, "
                   "tcp_syncookies {}",
                   n, where, queue > 0 ? std::to_string(queue) : "unknown",
                   t.syncookies ? std::to_string(*t.syncookies) : "unknown"),
       std::string(cookies ? "" : "turn on SYN cookies (sysctl -w net.ipv4.tcp_syncookies=1); ") +
           "raise net.ipv4.tcp_max_syn_backlog; " +
           (one_source ? "one source holds most of them: filter it before the host (firewall, "
                         "load balancer)"
                       : "spread over as many sources as SYNs is a flood from spoofed "
                         "addresses: SYN cookies answer it, and filtering belongs upstream "
                         "(the provider's or load balancer's SYN proxy)")});
  return out;
}

}  // namespace chokepoint::analysis::rules
