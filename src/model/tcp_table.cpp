#include "model/tcp_table.h"

#include <array>

namespace chokepoint::model {
namespace {

constexpr std::array<std::string_view, kTcpStateMax + 1> kTcpStateNames = {
    "UNKNOWN",   "ESTABLISHED", "SYN_SENT",   "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
    "TIME_WAIT", "CLOSE",       "CLOSE_WAIT", "LAST_ACK", "LISTEN",    "CLOSING"};

}  // namespace

std::string_view tcp_state_name(TcpState s) {
  const auto i = static_cast<std::size_t>(s);
  return i < kTcpStateNames.size() ? kTcpStateNames[i] : kTcpStateNames[0];
}

std::optional<TcpState> tcp_state_from_name(std::string_view name) {
  for (std::size_t i = 1; i < kTcpStateNames.size(); ++i) {
    if (kTcpStateNames[i] == name) return static_cast<TcpState>(i);
  }
  return std::nullopt;
}

std::uint64_t TcpTableSample::count(TcpState s, bool target_only) const {
  std::uint64_t n = 0;
  for (const auto& g : groups) {
    if (g.state == s && (g.target || !target_only)) n += g.count;
  }
  return n;
}

std::uint64_t TcpTableSample::port_range_size() const {
  if (!port_range_low || !port_range_high || *port_range_high < *port_range_low) return 0;
  return static_cast<std::uint64_t>(*port_range_high) - *port_range_low + 1;
}

std::uint64_t TcpTable::growth(Counter counter) const {
  if (!start || !(end.*counter) || !(*start.*counter)) return 0;
  const std::uint64_t now = *(end.*counter);
  const std::uint64_t then = *(*start.*counter);
  return now > then ? now - then : 0;
}

}  // namespace chokepoint::model
