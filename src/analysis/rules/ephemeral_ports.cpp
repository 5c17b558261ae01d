// Ephemeral ports: every outbound connection to one destination (address and port) needs its own
// local port from net.ipv4.ip_local_port_range, and keeps it through TIME_WAIT (60 s on Linux)
// after the side that closed first is done with it. A service that opens a connection per request
// runs out: connect() fails with EADDRNOTAVAIL. A finding, not a bottleneck.
// See docs/verdicts/ephemeral-ports.md.
#include <fmt/format.h>

#include <map>
#include <tuple>

#include "analysis/rules/rule.h"

namespace chokepoint::analysis::rules {
namespace {

// Warn at half the range: connect() slows down well before the last port (it searches the range
// for a free one), and the load that used half will use the rest at its next peak.
constexpr double kPortsUsedFraction = 0.5;
// TIME_WAIT's length (TCP_TIMEWAIT_LEN in include/net/tcp.h), not a sysctl.
constexpr double kTimeWaitS = 60;

struct Destination {
  std::uint64_t used = 0;
  std::uint64_t time_wait = 0;
  bool target = false;
};

}  // namespace

RuleResult ephemeral_ports(const Context& ctx) {
  RuleResult out;
  if (!ctx.obs.system.tcp) return out;
  const auto& t = ctx.obs.system.tcp->end;
  const std::uint64_t range = t.port_range_size();
  if (range == 0) return out;

  // (local address, destination address, destination port): the kernel's connect() needs a
  // unique 4-tuple, so each such triple has the whole range to itself.
  std::map<std::tuple<std::string, std::string, std::uint16_t>, Destination> dests;
  for (const auto& g : t.groups) {
    if (g.server_side) continue;
    auto& d = dests[{g.local_addr, g.remote_addr, g.remote_port}];
    d.used += g.count;
    if (g.state == model::TcpState::kTimeWait) d.time_wait += g.count;
    d.target = d.target || g.target;
  }
  for (const auto& [key, d] : dests) {
    const double used = static_cast<double>(d.used) / static_cast<double>(range);
    if (!d.target || used < kPortsUsedFraction) continue;
    const auto& [local, addr, port] = key;
    const std::string reuse = t.tw_reuse ? fmt::format(" (now {})", *t.tw_reuse) : std::string();
    out.findings.push_back(
        {FindingResource::kConnections, Severity::kWarning,
         fmt::format(
             "{} local ports of {} are taken by connections to {} ({} in TIME_WAIT): {} "
             "of the {} ephemeral ports of net.ipv4.ip_local_port_range {}-{}; above {:.0f} "
             "new connections/s to it (the range over TIME_WAIT's 60 s) connect() fails "
             "with EADDRNOTAVAIL",
             d.used, local, endpoint(addr, port), d.time_wait, percent(used), range,
             *t.port_range_low, *t.port_range_high, static_cast<double>(range) / kTimeWaitS),
         fmt::format("reuse connections to {}: HTTP keep-alive or a connection pool; widen the "
                     "range (sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\"); "
                     "net.ipv4.tcp_tw_reuse=1{} lets connect() take ports in TIME_WAIT",
                     endpoint(addr, port), reuse)});
  }
  return out;
}

}  // namespace chokepoint::analysis::rules
