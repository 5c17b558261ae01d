// Accept queue: a listener whose queue of established connections waiting for accept() was at
// its backlog when the table was dumped. The kernel then drops the handshake's last ACK (or
// answers SYNs with nothing), which the backlog rule counts as ListenOverflows; this rule names
// the listener and says whether net.core.somaxconn or the service's own listen() set the limit.
// A finding, not a bottleneck. See docs/verdicts/accept-queue.md.
#include <fmt/format.h>

#include "analysis/rules/rule.h"

namespace chokepoint::analysis::rules {

RuleResult accept_queue(const Context& ctx) {
  RuleResult out;
  if (!ctx.obs.system.tcp) return out;
  const auto& tcp = *ctx.obs.system.tcp;
  for (const auto* table : {tcp.start ? &*tcp.start : nullptr, &tcp.end}) {
    if (table == nullptr) continue;
    for (const auto& l : table->listeners) {
      if (!l.target || l.backlog == 0 || l.accept_queue < l.backlog) continue;
      // Once per listener: the end's reading wins only when the start did not fire.
      const std::string where = endpoint(l.local_addr, l.local_port);
      bool seen = false;
      for (const auto& f : out.findings) seen = seen || f.message.find(where) != std::string::npos;
      if (seen) continue;
      const std::string cap =
          table->somaxconn && l.backlog >= *table->somaxconn
              ? fmt::format(
                    "net.core.somaxconn {} caps it: raise it (sysctl -w "
                    "net.core.somaxconn=4096) and the backlog the service asks for",
                    *table->somaxconn)
              : fmt::format(
                    "the service asked listen() for {} (net.core.somaxconn is {}): ask "
                    "for more, e.g. listen(fd, 4096) or nginx's listen ... backlog=4096",
                    l.backlog, table->somaxconn ? std::to_string(*table->somaxconn) : "unknown");
      out.findings.push_back(
          {FindingResource::kConnections, Severity::kWarning,
           fmt::format("the accept queue of {} is full: {} connections wait for accept() with a "
                       "backlog of {}; new handshakes are dropped (ListenOverflows +{} in the "
                       "window)",
                       where, l.accept_queue, l.backlog, ctx.obs.system.listen_overflows),
           cap + "; and accept faster (a dedicated acceptor, SO_REUSEPORT listeners)"});
    }
  }
  return out;
}

}  // namespace chokepoint::analysis::rules
