// Network: threads (or event loops) waiting on a peer. Kinds: "upstream" (replies from services we
// call), "bandwidth" (full send buffers towards clients), "connect". See docs/verdicts/network.md.
#include <fmt/format.h>

#include <algorithm>

#include "analysis/rules/rule.h"
#include "model/account.h"

namespace chokepoint::analysis::rules {

using model::Resource;

RuleResult network(const Context& ctx) {
  const auto& obs = ctx.obs;
  const double net_ns = static_cast<double>(ctx.split[Resource::kNetwork]);
  const double load = ctx.load(Resource::kNetwork);

  Bottleneck b;
  b.resource = Verdict::kNetwork;
  b.share = ctx.busy_share(Resource::kNetwork);
  b.significant = load >= kSignificantLoadThreads && b.share >= kSignificantBusyShare;

  double upstream_ns = 0, send_ns = 0, connect_ns = 0;
  auto all = model::top_details(obs.threads, Resource::kNetwork, 1000);
  for (const auto& [detail, ns] : all) {
    if (detail.find("upstream") != std::string::npos) upstream_ns += static_cast<double>(ns);
    if (detail.find("send buffer") != std::string::npos) send_ns += static_cast<double>(ns);
    if (detail.rfind("connect", 0) == 0) connect_ns += static_cast<double>(ns);
  }
  if (connect_ns >= upstream_ns && connect_ns >= send_ns && connect_ns > 0) {
    b.kind = BottleneckKind::kConnect;
  } else if (send_ns > upstream_ns) {
    b.kind = BottleneckKind::kBandwidth;
  } else {
    b.kind = BottleneckKind::kUpstream;
  }

  b.evidence.push_back(
      fmt::format("on average {:.2f} threads were waiting on the network ({} of busy time)", load,
                  percent(b.share)));
  for (std::size_t i = 0; i < all.size() && i < 3; ++i) {
    b.evidence.push_back(fmt::format("{} of network time in {}",
                                     percent(net_ns > 0 ? all[i].second / net_ns : 0),
                                     all[i].first));
  }
  for (const auto& p : obs.processes) {
    if (b.kind == BottleneckKind::kUpstream && p.client_connections > 0) {
      std::string peers;
      const auto upstreams = p.upstream_peers();
      for (std::size_t i = 0; i < upstreams.size() && i < 3; ++i) {
        peers += (i ? ", " : "") + upstreams[i];
      }
      b.evidence.push_back(
          fmt::format("pid {} has {} upstream connections (to {}); max RTT {:.2f} ms", p.pid,
                      p.client_connections, peers, p.upstream_rtt_us_max / 1000.0));
    }
    if (b.kind == BottleneckKind::kBandwidth &&
        (p.sndbuf_limited_us > 0 || p.notsent_bytes > 0 || p.bytes_sent_per_s > 0)) {
      std::string text =
          fmt::format("pid {} sent {}/s to {} clients; {} written but not yet sent", p.pid,
                      bytes(static_cast<double>(p.bytes_sent_per_s)), p.server_connections,
                      bytes(static_cast<double>(p.notsent_bytes)));
      if (p.sndbuf_limited_us > 0 || p.rwnd_limited_us > 0) {
        text += fmt::format("; limited by the send buffer for {} and by receivers' windows for {}",
                            duration(p.sndbuf_limited_us / 1e6), duration(p.rwnd_limited_us / 1e6));
      }
      b.evidence.push_back(text + " (tcp_info)");
    }
  }
  if (obs.system.tcp_retrans_per_s > 1) {
    b.evidence.push_back(fmt::format("TCP retransmits: {:.1f}/s", obs.system.tcp_retrans_per_s));
  }

  if (b.kind == BottleneckKind::kUpstream) {
    b.fixes = {"batch upstream calls: one round trip for many items",
               "cache upstream replies that repeat",
               "make independent upstream calls concurrently instead of one after another",
               "then diagnose the upstream itself: its latency is your latency"};
  } else if (b.kind == BottleneckKind::kBandwidth) {
    b.fixes = {"send fewer bytes: compress responses, paginate, trim payloads",
               "serve large static content from a cache or CDN close to clients",
               "add link capacity, or spread instances over more links"};
  } else {
    b.fixes = {
        "reuse connections (keep-alive, a connection pool) instead of connecting per request",
        "check the peer's listen backlog and accept rate"};
  }
  b.confidence = b.significant ? std::min(1.0, 0.6 + 0.4 * b.share) : 0.0;
  RuleResult out;
  out.bottleneck = std::move(b);
  return out;
}

}  // namespace chokepoint::analysis::rules
