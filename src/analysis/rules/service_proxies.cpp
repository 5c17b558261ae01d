// The two proxies: nginx (stub_status) and HAProxy (show stat). A proxy whose requests queue for
// a backend server points at the upstream tier, by name; one that drops or refuses connections
// points at its own limits.
// See docs/verdicts/services.md.
#include <fmt/format.h>

#include <algorithm>

#include "analysis/rules/rule.h"
#include "analysis/services.h"

namespace chokepoint::analysis::rules {
namespace {

using model::Resource;

// Sessions against a limit, above which new ones wait or are refused.
constexpr double kNearLimit = 0.9;

struct Backend {
  std::string name;
  double queue_max = 0, queue_mean = 0, qtime_ms = 0, rtime_ms = 0, ctime_ms = 0;
  double sessions_per_s = 0, econ = 0, eresp = 0, retries = 0, http_5xx = 0;
  int servers = 0, servers_full = 0;  // servers at their maxconn at some sample
  int servers_limited = 0;            // servers with a maxconn that are not DOWN or in MAINT
};

// A server HAProxy can send new sessions to: "UP", "no check", "OPEN", "UP 1/3" and the like,
// not "DOWN", "MAINT", "DRAIN" or "NOLB" (which take no new sessions, so never queue them).
bool takes_sessions(const model::ServiceObservation& s, const std::string& server) {
  auto st = s.settings.find("server:" + server + ":status");
  if (st == s.settings.end()) return true;
  for (const char* down : {"DOWN", "MAINT", "DRAIN", "NOLB"}) {
    if (st->second.rfind(down, 0) == 0) return false;
  }
  return true;
}

}  // namespace

ServiceReport service_nginx(const model::ServiceObservation& s) {
  ServiceReport r;
  auto g = [&](const char* n) {
    auto it = s.gauges.find(n);
    return it == s.gauges.end() ? model::GaugeStats{} : it->second;
  };
  r.summary = fmt::format(
      "{} requests/s, {} connections/s; connections: {:.0f} active, {:.0f} "
      "writing, {:.0f} reading, {:.0f} idle keep-alive (max {:.0f} active)",
      count_text(s.rate_per_s("requests")), count_text(s.rate_per_s("accepts")), g("active").last,
      g("writing").last, g("reading").last, g("waiting").last, g("active").max);
  if (const double dropped = s.delta("accepts") - s.delta("handled"); dropped > 0) {
    r.findings.push_back({Resource::kNetwork, true,
                          fmt::format("dropped {:.0f} accepted connections: worker_connections "
                                      "or the fd limit was reached",
                                      dropped),
                          "raise worker_connections and worker_rlimit_nofile"});
  }
  // Writing counts requests being processed or answered: with proxy_pass, requests waiting for
  // the upstream are in it.
  if (g("writing").mean >= 1 && g("writing").mean > 2 * g("reading").mean) {
    r.findings.push_back({Resource::kNetwork, false,
                          fmt::format("on average {:.1f} requests in flight (writing): with "
                                      "proxy_pass, time waiting for the upstream shows here",
                                      g("writing").mean),
                          ""});
  }
  return r;
}

ServiceReport service_haproxy(const model::ServiceObservation& s) {
  ServiceReport r;
  std::map<std::string, Backend> backends;
  double frontend_requests = 0, frontend_sessions = 0;
  std::vector<std::string> frontends_full;
  for (const auto& [name, v] : s.counters_last) {
    if (name.rfind("frontend:", 0) != 0) continue;
    // Keep-alive clients open few sessions and send many requests: both are worth saying.
    if (name.size() > 14 && name.substr(name.size() - 5) == ":stot") {
      frontend_sessions += s.rate_per_s(name);
    }
    if (name.size() > 17 && name.substr(name.size() - 8) == ":req_tot") {
      frontend_requests += s.rate_per_s(name);
    }
  }
  for (const auto& [name, gs] : s.gauges) {
    // "backend:NAME:qcur", "server:BACKEND/SERVER:scur", "frontend:NAME:scur"
    const auto last_colon = name.rfind(':');
    if (last_colon == std::string::npos) continue;
    const std::string field = name.substr(last_colon + 1);
    const auto first_colon = name.find(':');
    const std::string kind = name.substr(0, first_colon);
    const std::string what = name.substr(first_colon + 1, last_colon - first_colon - 1);
    if (kind == "backend") {
      Backend& b = backends[what];
      b.name = what;
      const std::string k = "backend:" + what + ":";
      if (field == "qcur") {
        b.queue_max = gs.max;
        b.queue_mean = gs.mean;
      }
      if (field == "qtime") b.qtime_ms = gs.last;
      if (field == "rtime") b.rtime_ms = gs.last;
      if (field == "ctime") b.ctime_ms = gs.last;
      if (field == "qcur") {
        b.sessions_per_s = s.rate_per_s(k + "stot");
        b.econ = s.delta(k + "econ");
        b.eresp = s.delta(k + "eresp");
        b.retries = s.delta(k + "wretr");
        b.http_5xx = s.delta(k + "hrsp_5xx");
      }
    } else if (kind == "server" && field == "scur") {
      const std::string backend = what.substr(0, what.find('/'));
      Backend& b = backends[backend];
      b.name = backend;
      ++b.servers;
      auto lim = s.gauges.find("server:" + what + ":slim");
      if (lim == s.gauges.end() || lim->second.last <= 0) continue;  // no maxconn: never full
      if (takes_sessions(s, what)) ++b.servers_limited;
      if (gs.max >= lim->second.last) ++b.servers_full;
    } else if (kind == "frontend" && field == "scur") {
      auto lim = s.gauges.find("frontend:" + what + ":slim");
      if (lim != s.gauges.end() && lim->second.last > 0 &&
          gs.max >= kNearLimit * lim->second.last) {
        frontends_full.push_back(
            fmt::format("{} ({:.0f} of maxconn {:.0f})", what, gs.max, lim->second.last));
      }
    }
  }
  r.summary =
      fmt::format("{} requests/s and {} new connections/s on the frontends, {} backend(s)",
                  count_text(frontend_requests), count_text(frontend_sessions), backends.size());
  for (auto& [name, b] : backends) {
    if (b.queue_max >= 1) {
      // HAProxy queues a request in the backend only when no server can take it: at the sample
      // that saw the queue, every server that takes sessions was at its maxconn, even where no
      // sample caught its scur there: with few slots, a sample can fall between a session ending
      // and the queued request taking its slot.
      b.servers_full = std::max(b.servers_full, b.servers_limited);
      r.findings.push_back(
          {Resource::kNetwork, true,
           fmt::format("backend {}: up to {:.0f} requests queued for a server (mean {:.1f}; queue "
                       "time {:.0f} ms, response time {:.0f} ms over the last 1024 requests); {} "
                       "of {} servers at their maxconn",
                       name, b.queue_max, b.queue_mean, b.qtime_ms, b.rtime_ms, b.servers_full,
                       b.servers),
           fmt::format("the upstream tier behind backend {} is the limit: add servers to it, or "
                       "raise the servers' maxconn if they have headroom (diagnose them with "
                       "chokepoint diagnose on their host)",
                       name)});
    }
    if (b.econ + b.eresp + b.retries > 0) {
      r.findings.push_back(
          {Resource::kNetwork, true,
           fmt::format("backend {}: {:.0f} connection errors, {:.0f} response errors, {:.0f} "
                       "retries",
                       name, b.econ, b.eresp, b.retries),
           "check the backend servers' health and their listen backlog"});
    }
  }
  for (const auto& f : frontends_full) {
    r.findings.push_back({Resource::kNetwork, true,
                          fmt::format("frontend {}: sessions at the connection limit", f),
                          "raise the frontend's maxconn (and the global maxconn) if the backends "
                          "have headroom"});
  }
  return r;
}

}  // namespace chokepoint::analysis::rules
