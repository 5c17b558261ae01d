#include "collect/probes/stats_text.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace chokepoint::collect::probes {
namespace {

// Calls f(line) for each line of text, without its "\r\n" or "\n".
template <typename F>
void for_each_line(std::string_view text, F&& f) {
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    f(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    const std::size_t at = s.find(sep);
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) break;
    s.remove_prefix(at + 1);
  }
  return out;
}

// "calls=2,usec=10,usec_per_call=5.00" -> the named counts.
RedisInfo::CommandStat parse_command_stat(std::string_view value) {
  RedisInfo::CommandStat c;
  for (std::string_view kv : split(value, ',')) {
    const std::size_t eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view k = kv.substr(0, eq);
    const auto v = parse_count(kv.substr(eq + 1));
    if (!v) continue;
    if (k == "calls") c.calls = *v;
    if (k == "usec") c.usec = *v;
    if (k == "rejected_calls") c.rejected_calls = *v;
    if (k == "failed_calls") c.failed_calls = *v;
  }
  return c;
}

}  // namespace

std::optional<std::uint64_t> parse_count(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<std::string> RedisInfo::text(std::string_view name) const {
  auto it = fields.find(name);
  if (it == fields.end()) return std::nullopt;
  return it->second;
}

std::optional<std::uint64_t> RedisInfo::count(std::string_view name) const {
  auto it = fields.find(name);
  if (it == fields.end()) return std::nullopt;
  return parse_count(it->second);
}

std::optional<double> RedisInfo::number(std::string_view name) const {
  auto it = fields.find(name);
  if (it == fields.end() || it->second.empty() || it->second.size() > 64) return std::nullopt;
  // Redis prints plain decimals ("1.23"); strtod takes no hex or inf here because we check.
  for (char c : it->second) {
    if (!((c >= '0' && c <= '9') || c == '.' || c == '-')) return std::nullopt;
  }
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  if (errno != 0 || end != it->second.c_str() + it->second.size() || !std::isfinite(v)) {
    return std::nullopt;
  }
  return v;
}

RedisInfo parse_redis_info(std::string_view reply) {
  RedisInfo info;
  for_each_line(reply, [&](std::string_view line) {
    if (line.empty() || line.front() == '#') return;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = line.substr(colon + 1);
    if (name.substr(0, 8) == "cmdstat_") {
      if (info.commands.size() < kMaxFields) {
        info.commands.insert_or_assign(std::string(name.substr(8)), parse_command_stat(value));
      }
      return;
    }
    if (info.fields.size() < kMaxFields) {
      info.fields.insert_or_assign(std::string(name), std::string(value));
    }
  });
  return info;
}

util::Result<NginxStatus> parse_nginx_status(std::string_view page) {
  NginxStatus s;
  bool have_active = false, have_counts = false, have_states = false, counts_next = false;
  for_each_line(page, [&](std::string_view raw) {
    const std::string_view line = trim(raw);
    if (line.substr(0, 19) == "Active connections:") {
      if (auto v = parse_count(trim(line.substr(19)))) {
        s.active = *v;
        have_active = true;
      }
      return;
    }
    if (line == "server accepts handled requests") {
      counts_next = true;
      return;
    }
    if (counts_next) {
      counts_next = false;
      std::vector<std::uint64_t> v;
      for (std::string_view part : split(line, ' ')) {
        if (part.empty()) continue;
        auto n = parse_count(part);
        if (!n) return;
        v.push_back(*n);
      }
      if (v.size() == 3) {
        s.accepts = v[0];
        s.handled = v[1];
        s.requests = v[2];
        have_counts = true;
      }
      return;
    }
    if (line.substr(0, 8) == "Reading:") {
      // "Reading: 6 Writing: 179 Waiting: 106"
      std::vector<std::string_view> parts;
      for (std::string_view part : split(line, ' ')) {
        if (!part.empty()) parts.push_back(part);
      }
      if (parts.size() != 6 || parts[2] != "Writing:" || parts[4] != "Waiting:") return;
      auto r = parse_count(parts[1]), w = parse_count(parts[3]), q = parse_count(parts[5]);
      if (!r || !w || !q) return;
      s.reading = *r;
      s.writing = *w;
      s.waiting = *q;
      have_states = true;
    }
  });
  if (!have_active || !have_counts || !have_states) {
    return util::Error{"the page is not nginx's stub_status output",
                       "point --nginx-status at a location with `stub_status;` in nginx.conf, "
                       "e.g. http://127.0.0.1/nginx_status"};
  }
  return s;
}

// The count columns chokepoint reads, by their names in the header.
constexpr std::pair<std::string_view, std::uint64_t HaproxyRow::*> kCountColumns[] = {
    {"qcur", &HaproxyRow::queue_current},    {"qmax", &HaproxyRow::queue_max},
    {"scur", &HaproxyRow::sessions_current}, {"slim", &HaproxyRow::sessions_limit},
    {"stot", &HaproxyRow::sessions_total},   {"req_tot", &HaproxyRow::requests_total},
    {"dreq", &HaproxyRow::denied_requests},  {"econ", &HaproxyRow::errors_connect},
    {"eresp", &HaproxyRow::errors_response}, {"wretr", &HaproxyRow::retries},
    {"hrsp_5xx", &HaproxyRow::http_5xx},     {"qtime", &HaproxyRow::queue_time_ms},
    {"ctime", &HaproxyRow::connect_time_ms}, {"rtime", &HaproxyRow::response_time_ms},
    {"ttime", &HaproxyRow::total_time_ms}};

util::Result<std::vector<HaproxyRow>> parse_haproxy_csv(std::string_view csv) {
  std::vector<std::string_view> header;
  std::vector<HaproxyRow> rows;
  bool bad_header = false;
  for_each_line(csv, [&](std::string_view line) {
    if (bad_header || line.empty()) return;
    if (header.empty()) {
      if (line.substr(0, 2) != "# ") {
        bad_header = true;
        return;
      }
      line.remove_prefix(2);
      header = split(line, ',');
      if (header.size() < 2 || header[0] != "pxname" || header[1] != "svname") bad_header = true;
      return;
    }
    if (rows.size() >= kMaxRows) return;
    const auto cells = split(line, ',');
    HaproxyRow row;
    const std::size_t n = std::min(cells.size(), header.size());
    for (std::size_t i = 0; i < n; ++i) {
      const std::string_view col = header[i];
      const std::string_view cell = cells[i];
      if (col == "pxname") {
        row.proxy = std::string(cell);
        continue;
      }
      if (col == "svname") {
        row.service = std::string(cell);
        continue;
      }
      if (col == "status") {
        row.status = std::string(cell);
        continue;
      }
      for (const auto& [name, member] : kCountColumns) {
        if (col == name) {
          row.*member = parse_count(cell).value_or(0);
          break;
        }
      }
    }
    if (!row.proxy.empty()) rows.push_back(std::move(row));
  });
  if (bad_header || header.empty()) {
    return util::Error{"the reply is not HAProxy's `show stat` CSV (no \"# pxname,svname\" header)",
                       "point --haproxy-stats at the stats socket (`stats socket` in "
                       "haproxy.cfg) or at the stats page with ;csv"};
  }
  return rows;
}

}  // namespace chokepoint::collect::probes
