#include "report/connection_rtt.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace chokepoint::report {
namespace {

// Milliseconds with three decimals (µs): a loopback RTT is tens of µs.
double ms_of(std::uint32_t us) {
  return std::round(static_cast<double>(us)) / 1000;
}

}  // namespace

void ConnectionRtt::add(const model::Tick& tick, int column) {
  for (const model::SocketSample& s : tick.sockets) {
    if (s.state != model::SocketState::kEstablished || s.inode == 0 || s.remote_port == 0) {
      continue;
    }
    Connection& c = connections_[{s.pid, s.inode}];
    if (!c.seen) {
      c.pid = s.pid;
      c.local_port = s.local_port;
      c.peer = fmt::format("{}:{}", s.remote_addr, s.remote_port);
      c.server_side = s.server_side;
      c.last_total_retrans = s.total_retrans;
      c.seen = true;
    }
    // A counter of the connection's life: it only grows (a smaller one is a reused inode's).
    const std::uint32_t grew =
        s.total_retrans >= c.last_total_retrans ? s.total_retrans - c.last_total_retrans : 0;
    c.last_total_retrans = s.total_retrans;
    c.total_retransmits += grew;
    Point& p = c.columns[column];
    p.retransmits += grew;
    if (s.rtt_us >= p.srtt_us) {
      p.srtt_us = s.rtt_us;
      p.rttvar_us = s.rttvar_us;
    }
    c.max_srtt_us = std::max(c.max_srtt_us, s.rtt_us);
  }
}

nlohmann::json ConnectionRtt::finish(int columns) const {
  if (connections_.empty()) return nullptr;
  std::vector<const Connection*> ranked;
  ranked.reserve(connections_.size());
  for (const auto& [key, c] : connections_) ranked.push_back(&c);
  std::stable_sort(ranked.begin(), ranked.end(), [](const Connection* a, const Connection* b) {
    return a->max_srtt_us > b->max_srtt_us;
  });
  const auto n = static_cast<std::size_t>(std::max(columns, 0));
  nlohmann::json shown = nlohmann::json::array();
  for (std::size_t i = 0; i < ranked.size() && i < shown_; ++i) {
    const Connection& c = *ranked[i];
    std::vector<nlohmann::json> srtt(n, nullptr), rttvar(n, nullptr), retrans(n, nullptr);
    for (const auto& [col, p] : c.columns) {
      if (col < 0 || static_cast<std::size_t>(col) >= n) continue;
      const auto k = static_cast<std::size_t>(col);
      srtt[k] = ms_of(p.srtt_us);
      rttvar[k] = ms_of(p.rttvar_us);
      retrans[k] = p.retransmits;
    }
    shown.push_back({{"pid", c.pid},
                     {"local_port", c.local_port},
                     {"peer", c.peer},
                     {"side", c.server_side ? "client" : "upstream"},
                     {"srtt_ms", srtt},
                     {"rttvar_ms", rttvar},
                     {"retransmits", retrans},
                     {"max_srtt_ms", ms_of(c.max_srtt_us)},
                     {"total_retransmits", c.total_retransmits}});
  }
  nlohmann::json rest = nullptr;
  if (ranked.size() > shown_) {
    std::vector<std::vector<std::uint32_t>> by_column(n);
    for (std::size_t i = shown_; i < ranked.size(); ++i) {
      for (const auto& [col, p] : ranked[i]->columns) {
        if (col >= 0 && static_cast<std::size_t>(col) < n) {
          by_column[static_cast<std::size_t>(col)].push_back(p.srtt_us);
        }
      }
    }
    std::vector<nlohmann::json> max_ms(n, nullptr), median_ms(n, nullptr);
    for (std::size_t k = 0; k < n; ++k) {
      auto& v = by_column[k];
      if (v.empty()) continue;
      std::sort(v.begin(), v.end());
      max_ms[k] = ms_of(v.back());
      median_ms[k] = ms_of(v[v.size() / 2]);
    }
    rest = {
        {"count", ranked.size() - shown_}, {"max_srtt_ms", max_ms}, {"median_srtt_ms", median_ms}};
  }
  return {{"source",
           "tcp_info (sock_diag, TCP_INFO): tcpi_rtt (smoothed RTT), tcpi_rttvar, "
           "tcpi_total_retrans of each of the target's connections, read at each fd-table read "
           "and while a thread waits on the network"},
          {"connections", connections_.size()},
          {"shown", shown},
          {"rest", rest}};
}

}  // namespace chokepoint::report
