#include "collect/procfs/net.h"

namespace chokepoint::collect::procfs {

std::optional<std::vector<NetDevStats>> parse_net_dev(std::string_view text) {
  // "Inter-|   Receive ..." and " face |bytes packets errs drop fifo frame compressed multicast|
  // bytes packets errs drop fifo colls carrier compressed", then "  eth0: 16 values". Device names
  // cannot contain ':' (dev_valid_name), and old kernels glue "eth0:123" together, so split at ':'.
  std::vector<NetDevStats> out;
  for (auto line : split_lines(text)) {
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      if (line.find('|') != std::string_view::npos || trim(line).empty()) continue;  // headers
      return std::nullopt;
    }
    if (line.find('|') != std::string_view::npos) continue;  // a header can't have ':' but be safe
    NetDevStats d;
    d.name = std::string(trim(line.substr(0, colon)));
    if (d.name.empty()) return std::nullopt;
    const auto tokens = split_ws(line.substr(colon + 1));
    if (tokens.size() < 16) return std::nullopt;
    std::uint64_t v[16];
    for (std::size_t i = 0; i < 16; ++i) {
      auto parsed = parse_u64(tokens[i]);
      if (!parsed) return std::nullopt;
      v[i] = *parsed;
    }
    d.rx_bytes = v[0];
    d.rx_packets = v[1];
    d.rx_errs = v[2];
    d.rx_drops = v[3];
    d.tx_bytes = v[8];
    d.tx_packets = v[9];
    d.tx_errs = v[10];
    d.tx_drops = v[11];
    out.push_back(std::move(d));
  }
  return out;
}

std::optional<std::int64_t> NetCounters::get(std::string_view name) const {
  auto it = values.find(name);
  if (it == values.end()) return std::nullopt;
  return it->second;
}

std::optional<NetCounters> parse_net_counters(std::string_view text) {
  NetCounters out;
  const auto lines = split_lines(text);
  std::size_t i = 0;
  while (i < lines.size()) {
    const auto header = split_ws(lines[i]);
    if (header.empty()) {
      ++i;
      continue;
    }
    if (i + 1 >= lines.size()) return std::nullopt;
    const auto values = split_ws(lines[i + 1]);
    const auto proto = header[0];
    if (proto.size() < 2 || proto.back() != ':' || values.empty() || values[0] != proto ||
        values.size() != header.size()) {
      return std::nullopt;
    }
    const auto prefix = proto.substr(0, proto.size() - 1);
    for (std::size_t k = 1; k < header.size(); ++k) {
      std::int64_t value = 0;
      if (auto s = parse_i64(values[k])) {
        value = *s;
      } else if (auto u = parse_u64(values[k])) {
        value = static_cast<std::int64_t>(*u);  // modular, see the header
      } else {
        return std::nullopt;
      }
      std::string key;
      key.reserve(prefix.size() + 1 + header[k].size());
      key.append(prefix).append(".").append(header[k]);
      out.values.insert_or_assign(std::move(key), value);
    }
    i += 2;
  }
  if (out.values.empty()) return std::nullopt;
  return out;
}

void merge_net_counters(NetCounters& into, const NetCounters& from) {
  for (const auto& [key, value] : from.values) into.values.insert_or_assign(key, value);
}

std::optional<Sockstat> parse_sockstat(std::string_view text, const Units& units) {
  // "sockets: used 12" / "TCP: inuse 1 orphan 0 tw 0 alloc 1 mem 195" / "UDP: inuse 0 mem 0" ...
  Sockstat s;
  bool have_sockets = false, have_tcp = false;
  for (auto line : split_lines(text)) {
    const auto tokens = split_ws(line);
    if (tokens.empty()) continue;
    if (tokens.size() % 2 != 1) return std::nullopt;
    const auto proto = tokens[0];
    for (std::size_t k = 1; k + 1 < tokens.size(); k += 2) {
      const auto name = tokens[k];
      auto value = parse_u64(tokens[k + 1]);
      if (!value) return std::nullopt;
      if (proto == "sockets:" && name == "used") {
        s.sockets_used = *value;
        have_sockets = true;
      } else if (proto == "TCP:") {
        have_tcp = true;
        if (name == "inuse") s.tcp_inuse = *value;
        if (name == "orphan") s.tcp_orphan = *value;
        if (name == "tw") s.tcp_tw = *value;
        if (name == "alloc") s.tcp_alloc = *value;
        if (name == "mem") s.tcp_mem_bytes = pages_to_bytes(*value, units.page_size_bytes);
      } else if (proto == "UDP:") {
        if (name == "inuse") s.udp_inuse = *value;
        if (name == "mem") s.udp_mem_bytes = pages_to_bytes(*value, units.page_size_bytes);
      }
    }
  }
  if (!have_sockets || !have_tcp) return std::nullopt;
  return s;
}

std::optional<PortRange> parse_port_range(std::string_view text) {
  auto v = parse_u64_fields<2>(text);
  if (!v || (*v)[0] > (*v)[1] || (*v)[1] > 65535) return std::nullopt;
  return PortRange{static_cast<std::uint32_t>((*v)[0]), static_cast<std::uint32_t>((*v)[1])};
}

std::optional<ConntrackStat> parse_conntrack_stat(std::string_view text) {
  const auto lines = split_lines(text);
  if (lines.size() < 2) return std::nullopt;
  const auto names = split_ws(lines[0]);
  if (names.empty() || names[0] != "entries") return std::nullopt;
  ConntrackStat out;
  for (std::size_t row = 1; row < lines.size(); ++row) {
    const auto values = split_ws(lines[row]);
    if (values.size() != names.size()) return std::nullopt;
    for (std::size_t i = 0; i < names.size(); ++i) {
      auto v = parse_hex_u64(values[i]);
      if (!v) return std::nullopt;
      if (names[i] == "entries") out.entries = *v;
      if (names[i] == "insert_failed") out.insert_failed += *v;
      if (names[i] == "drop") out.drop += *v;
      if (names[i] == "early_drop") out.early_drop += *v;
    }
  }
  return out;
}

}  // namespace chokepoint::collect::procfs
