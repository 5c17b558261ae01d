// CLOSE_WAIT: connections whose peer closed (a FIN arrived) while the service still holds the
// socket open. The kernel never times CLOSE_WAIT out: only close() ends it, so sockets piling up
// in it are a connection leak (a missing close on EOF, or a pool that keeps dead connections), and
// each holds a file descriptor. A finding, not a bottleneck. See docs/verdicts/close-wait.md.
#include <fmt/format.h>

#include "analysis/rules/rule.h"

namespace chokepoint::analysis::rules {
namespace {

// A busy server has a few sockets between the peer's FIN and its own close(); dozens that stay
// are a leak. The lab's conn-leak scenario reaches hundreds within seconds; its healthy
// scenarios show 0-2 at the window's end.
constexpr std::uint64_t kCloseWaitMin = 32;

}  // namespace

RuleResult close_wait(const Context& ctx) {
  RuleResult out;
  if (!ctx.obs.system.tcp) return out;
  const auto& tcp = *ctx.obs.system.tcp;
  const std::uint64_t now = tcp.end.count(model::TcpState::kCloseWait);
  if (now < kCloseWaitMin) return out;

  std::string growth;
  if (tcp.start && tcp.span_s > 0) {
    const std::uint64_t before = tcp.start->count(model::TcpState::kCloseWait);
    growth =
        now > before
            ? fmt::format(", up from {} {} earlier (+{:.0f}/s)", before, duration(tcp.span_s),
                          static_cast<double>(now - before) / tcp.span_s)
            : fmt::format(" ({} {} earlier: they do not go away)", before, duration(tcp.span_s));
  }
  std::string fds;
  for (const auto& p : ctx.obs.processes) {
    if (p.fd_soft_limit == 0 || p.open_fds == 0) continue;
    fds = fmt::format("; pid {} has {} of {} file descriptors open", p.pid, p.open_fds,
                      p.fd_soft_limit);
    break;
  }
  const auto groups = target_groups(tcp.end, model::TcpState::kCloseWait);
  bool server = false, client = false;
  for (const auto* g : groups) (g->server_side ? server : client) = true;
  std::string fix;
  if (server) {
    fix =
        "close the connection when read() returns 0 (the client closed it), and give idle "
        "connections a timeout";
  }
  if (client) {
    fix += std::string(fix.empty() ? "" : "; ") +
           "drop pooled connections the upstream closed (check them before reuse, or an idle "
           "timeout below the upstream's)";
  }
  out.findings.push_back(
      {FindingResource::kConnections, Severity::kWarning,
       fmt::format("{} connections in CLOSE_WAIT: the peer closed and the service never did (a "
                   "connection leak){}: {}{}",
                   now, growth, groups_text(groups, 3), fds),
       fix + "; each one holds a file descriptor until the process closes it"});
  return out;
}

}  // namespace chokepoint::analysis::rules
