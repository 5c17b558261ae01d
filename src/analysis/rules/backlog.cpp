// Backlog: connection attempts the kernel dropped because the listen queue was full
// (ListenOverflows, ListenDrops). A bottleneck of resource network, kind "backlog", measured by the
// share of attempts dropped, not by time. See docs/verdicts/network.md.
#include <fmt/format.h>

#include <algorithm>

#include "analysis/rules/rule.h"

namespace chokepoint::analysis::rules {

RuleResult backlog(const Context& ctx) {
  const auto& sys = ctx.obs.system;
  RuleResult out;
  if (sys.listen_overflows == 0 && sys.listen_drops == 0) return out;
  const double attempts = static_cast<double>(sys.listen_overflows + sys.passive_opens);
  const double dropped = attempts > 0 ? static_cast<double>(sys.listen_overflows) / attempts : 0.0;

  Bottleneck b;
  b.resource = Verdict::kNetwork;
  b.kind = BottleneckKind::kBacklog;
  b.share = dropped;
  b.significant = sys.listen_overflows >= 10 && dropped >= 0.01;
  b.evidence.push_back(fmt::format(
      "the kernel dropped connection attempts: ListenOverflows +{} and ListenDrops +{} in {} "
      "(/proc/net/netstat), against {} accepted (PassiveOpens): {} of attempts",
      sys.listen_overflows, sys.listen_drops, duration(ctx.duration_s), sys.passive_opens,
      percent(dropped)));
  for (const auto& p : ctx.obs.processes) {
    for (const auto& l : p.listen_sockets) {
      b.evidence.push_back(fmt::format("pid {} listens on {}", p.pid, l));
    }
  }
  b.fixes = {
      "raise the listen backlog: listen(fd, 4096), and net.core.somaxconn to match",
      "accept faster: a dedicated acceptor thread, or SO_REUSEPORT with one listener per thread",
      "clients then see fewer SYN retries (1 s, 3 s, 7 s stalls) and connect timeouts"};
  b.confidence = b.significant ? std::min(1.0, 0.7 + dropped) : 0.0;
  out.bottleneck = std::move(b);
  return out;
}

}  // namespace chokepoint::analysis::rules
