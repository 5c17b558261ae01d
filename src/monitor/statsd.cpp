#include "monitor/statsd.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "analysis/verdict.h"
#include "monitor/threshold.h"
#include "render/prometheus_text.h"

namespace chokepoint::monitor {

std::string statsd_name(std::string_view raw) {
  std::string out;
  for (char c : raw.substr(0, 64)) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    out += ok ? c : '_';
  }
  return out.empty() ? "_" : out;
}

std::vector<std::string> pack_datagrams(const std::vector<std::string>& lines,
                                        std::size_t max_bytes, std::uint64_t* too_long) {
  std::vector<std::string> out;
  std::string current;
  for (const auto& line : lines) {
    if (line.size() > max_bytes) {
      if (too_long) ++*too_long;
      continue;
    }
    const std::size_t grown = current.empty() ? line.size() : current.size() + 1 + line.size();
    if (grown > max_bytes) {
      out.push_back(std::move(current));
      current.clear();
    }
    if (!current.empty()) current += '\n';
    current += line;
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

std::vector<std::string> statsd_lines(const TargetState& state, const model::TimeSplit& window) {
  const std::string prefix = "chokepoint." + statsd_name(state.label) + ".";
  std::vector<std::string> lines;
  lines.push_back(fmt::format("{}up:{}|g", prefix, state.up ? 1 : 0));
  if (!state.up) return lines;
  for (std::size_t r = 0; r < model::kResourceCount; ++r) {
    lines.push_back(fmt::format(
        "{}thread_seconds.{}:{}|c", prefix, model::resource_name(static_cast<model::Resource>(r)),
        render::prometheus_number(static_cast<double>(window.ns[r]) / 1e9)));
  }
  const StateShares shares = state_shares(window);
  for (std::size_t i = 0; i < kShareCount; ++i) {
    lines.push_back(fmt::format("{}share.{}:{}|g", prefix, share_name(i),
                                render::prometheus_number(shares.value[i])));
  }
  for (const auto& b : state.diagnosis.bottlenecks) {
    lines.push_back(
        fmt::format("{}bottleneck.{}.{}:{}|g", prefix, analysis::verdict_name(b.resource),
                    statsd_name(analysis::kind_name(b.kind)), render::prometheus_number(b.share)));
  }
  lines.push_back(
      fmt::format("{}verdict.{}:1|g", prefix, analysis::verdict_name(state.diagnosis.verdict)));
  return lines;
}

util::Result<std::unique_ptr<StatsdPusher>> StatsdPusher::open(const ListenAddress& address) {
  util::ScopedFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return util::errno_error("socket for --statsd");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(address.port);
  inet_pton(AF_INET, address.host.c_str(), &sa.sin_addr);
  // Connected, so that a refused datagram (nothing listens) comes back as ECONNREFUSED: a drop.
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    return util::errno_error(fmt::format("--statsd {}:{}", address.host, address.port),
                             "pass --statsd HOST:PORT of a StatsD server, e.g. 127.0.0.1:8125");
  }
  return std::unique_ptr<StatsdPusher>(new StatsdPusher(std::move(fd)));
}

void StatsdPusher::push(const TargetState& state, const model::TimeSplit& window) {
  std::uint64_t too_long = 0;
  const auto datagrams = pack_datagrams(statsd_lines(state, window), kMaxDatagramBytes, &too_long);
  dropped_.fetch_add(too_long);
  std::lock_guard lock(mu_);
  for (const auto& d : datagrams) {
    if (::send(fd_.get(), d.data(), d.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(d.size())) {
      sent_.fetch_add(1);
    } else {
      dropped_.fetch_add(1);
    }
  }
}

std::string StatsdPusher::exposition() const {
  render::ExpositionWriter w;
  w.family("chokepoint_agent_statsd_datagrams_total", "counter", "StatsD datagrams sent");
  w.sample("chokepoint_agent_statsd_datagrams_total", {}, static_cast<double>(sent_.load()));
  w.family("chokepoint_agent_statsd_dropped_total", "counter",
           "StatsD datagrams (or lines too long for one) that could not be sent");
  w.sample("chokepoint_agent_statsd_dropped_total", {}, static_cast<double>(dropped_.load()));
  return w.take();
}

}  // namespace chokepoint::monitor
