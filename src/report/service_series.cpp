#include "report/service_series.h"

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>

namespace chokepoint::report {
namespace {

using Match = std::function<bool(const std::string&)>;

Match exact(std::string name) {
  return [n = std::move(name)](const std::string& s) { return s == n; };
}

// Names that start with `prefix` and end with `suffix` ("cmd:" ... ":calls").
Match around(std::string prefix, std::string suffix) {
  return [p = std::move(prefix), x = std::move(suffix)](const std::string& s) {
    return s.size() >= p.size() + x.size() && s.compare(0, p.size(), p) == 0 &&
           s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
}

struct Term {
  Match match;
  double weight = 1;
};

enum class How : std::uint8_t {
  kRate,       // the counters' growth per second
  kRatio,      // the growth of `num` over the growth of `den`
  kGaugeMean,  // the gauges (summed within a poll) averaged over a column's polls
};

struct Series {
  std::string name;
  How how = How::kRate;
  std::vector<Term> num;
  std::vector<Term> den;
  double scale = 1;
};

struct Chart {
  std::string title, unit, source;
  std::vector<Series> series;
  bool only_if_nonzero = false;  // an error counter: drawn when it moved
};

// One probe's good polls, in time order, and the column of each.
struct ProbePolls {
  std::vector<const model::ServicePoll*> polls;
  std::vector<std::size_t> columns;
};

std::size_t column_of(const ColumnGrid& g, std::int64_t at_ns) {
  const auto after = std::upper_bound(g.starts_ns.begin(), g.starts_ns.end(), at_ns);
  return after == g.starts_ns.begin() ? 0
                                      : static_cast<std::size_t>(after - g.starts_ns.begin()) - 1;
}

const Term* matching(const std::vector<Term>& terms, const std::string& name) {
  for (const auto& t : terms) {
    if (t.match(name)) return &t;
  }
  return nullptr;
}

// The weighted growth of the terms' counters per column, and the seconds it grew over: between
// consecutive polls that hold any of them. A counter new since the poll before was 0 there when
// the service says so (Redis lists a command once it ran).
struct Growth {
  std::vector<double> value, seconds;
  std::vector<bool> seen;
};

Growth growth(const ProbePolls& p, const std::vector<Term>& terms, std::size_t n) {
  Growth g{std::vector<double>(n, 0), std::vector<double>(n, 0), std::vector<bool>(n, false)};
  std::map<std::string, double> last;
  std::optional<std::int64_t> last_ns;
  for (std::size_t i = 0; i < p.polls.size(); ++i) {
    const model::ServiceReading& r = p.polls[i]->reading;
    bool any = false;
    double grown = 0;
    for (const auto& [name, v] : r.counters) {
      const Term* t = matching(terms, name);
      if (t == nullptr) continue;
      any = true;
      auto it = last.find(name);
      const bool known = it != last.end() || (last_ns && r.new_counters_were_zero);
      const double before = it != last.end() ? it->second : 0;
      if (known && v >= before) grown += (v - before) * t->weight;  // down: a reset, no rate
      last[name] = v;
    }
    if (!any) continue;
    if (last_ns) {
      const std::size_t c = p.columns[i];
      g.value[c] += grown;
      g.seconds[c] += static_cast<double>(p.polls[i]->at_ns - *last_ns) / 1e9;
      g.seen[c] = true;
    }
    last_ns = p.polls[i]->at_ns;
  }
  return g;
}

nlohmann::json values(const ProbePolls& p, const Series& s, std::size_t n) {
  nlohmann::json out = nlohmann::json::array();
  if (s.how == How::kGaugeMean) {
    std::vector<double> sum(n, 0);
    std::vector<int> count(n, 0);
    for (std::size_t i = 0; i < p.polls.size(); ++i) {
      bool any = false;
      double v = 0;
      for (const auto& [name, g] : p.polls[i]->reading.gauges) {
        if (const Term* t = matching(s.num, name)) {
          any = true;
          v += g * t->weight;
        }
      }
      if (!any) continue;
      sum[p.columns[i]] += v;
      ++count[p.columns[i]];
    }
    for (std::size_t c = 0; c < n; ++c) {
      out.push_back(count[c] ? nlohmann::json(sum[c] / count[c] * s.scale) : nullptr);
    }
    return out;
  }
  const Growth num = growth(p, s.num, n);
  const Growth den = s.how == How::kRatio ? growth(p, s.den, n) : Growth{};
  for (std::size_t c = 0; c < n; ++c) {
    const double by = s.how == How::kRatio ? den.value[c] : num.seconds[c];
    if (!num.seen[c] || by <= 0) {
      out.push_back(nullptr);
    } else {
      out.push_back(std::max(0.0, num.value[c] / by * s.scale));
    }
  }
  return out;
}

Series rate(std::string name, std::vector<Term> counters, double scale = 1) {
  return {std::move(name), How::kRate, std::move(counters), {}, scale};
}
Series ratio(std::string name, std::vector<Term> num, std::vector<Term> den, double scale = 1) {
  return {std::move(name), How::kRatio, std::move(num), std::move(den), scale};
}
Series gauge(std::string name, std::vector<Term> gauges, double scale = 1) {
  return {std::move(name), How::kGaugeMean, std::move(gauges), {}, scale};
}
Term t(Match m, double weight = 1) {
  return {std::move(m), weight};
}

std::vector<Chart> redis_charts() {
  const Term hits = t(exact("keyspace_hits")), misses = t(exact("keyspace_misses"));
  return {
      {"commands",
       "/s",
       "INFO total_commands_processed",
       {rate("commands", {t(exact("total_commands_processed"))})}},
      {"keyspace hit ratio",
       "%",
       "INFO keyspace_hits, keyspace_misses",
       {ratio("hits", {hits}, {hits, misses}, 100)}},
      {"time per command",
       "\u00b5s",
       "INFO commandstats: usec over calls",
       {ratio("all commands", {t(around("cmd:", ":usec"))}, {t(around("cmd:", ":calls"))})}},
      {"keys evicted and expired",
       "/s",
       "INFO evicted_keys, expired_keys",
       {rate("evicted", {t(exact("evicted_keys"))}), rate("expired", {t(exact("expired_keys"))})}},
      {"clients",
       "",
       "INFO connected_clients, blocked_clients",
       {gauge("connected", {t(exact("connected_clients"))}),
        gauge("blocked", {t(exact("blocked_clients"))})}},
      {"memory",
       "MB",
       "INFO used_memory, maxmemory (0: no limit)",
       {gauge("used", {t(exact("used_memory"))}, 1e-6),
        gauge("maxmemory", {t(exact("maxmemory"))}, 1e-6)}},
      {"errors",
       "/s",
       "INFO rejected_connections, total_error_replies",
       {rate("rejected connections", {t(exact("rejected_connections"))}),
        rate("error replies", {t(exact("total_error_replies"))})},
       true},
  };
}

std::vector<Chart> memcached_charts() {
  const Term hits = t(exact("get_hits")), misses = t(exact("get_misses"));
  return {
      {"commands",
       "/s",
       "stats cmd_get, cmd_set",
       {rate("get", {t(exact("cmd_get"))}), rate("set", {t(exact("cmd_set"))})}},
      {"get hit ratio",
       "%",
       "stats get_hits, get_misses",
       {ratio("hits", {hits}, {hits, misses}, 100)}},
      {"evictions", "/s", "stats evictions", {rate("evictions", {t(exact("evictions"))})}},
      {"connections",
       "",
       "stats curr_connections",
       {gauge("current", {t(exact("curr_connections"))})}},
      {"memory",
       "MB",
       "stats bytes, limit_maxbytes",
       {gauge("bytes", {t(exact("bytes"))}, 1e-6),
        gauge("limit", {t(exact("limit_maxbytes"))}, 1e-6)}},
      {"connection limits",
       "/s",
       "stats listen_disabled_num, conn_yields, rejected_connections",
       {rate("listen disabled", {t(exact("listen_disabled_num"))}),
        rate("yields", {t(exact("conn_yields"))}),
        rate("rejected", {t(exact("rejected_connections"))})},
       true},
  };
}

std::vector<Chart> postgres_charts() {
  const Term hit = t(exact("blks_hit")), read = t(exact("blks_read"));
  return {
      {"transactions",
       "/s",
       "pg_stat_database xact_commit (less the probe's own), xact_rollback",
       {rate("commits", {t(exact("xact_commit")), t(exact("probe_xacts"), -1)}),
        rate("rollbacks", {t(exact("xact_rollback"))})}},
      {"buffer cache hit ratio",
       "%",
       "pg_stat_database blks_hit, blks_read",
       {ratio("hits", {hit}, {hit, read}, 100)}},
      {"time per statement",
       "ms",
       "pg_stat_statements total_exec_time over calls",
       {ratio("all statements", {t(around("stmt:", ":total_ms"))},
              {t(around("stmt:", ":calls"))})}},
      {"WAL", "MB/s", "pg_stat_wal wal_bytes", {rate("written", {t(exact("wal_bytes"))}, 1e-6)}},
      {"WAL syncs", "/s", "pg_stat_wal wal_sync", {rate("syncs", {t(exact("wal_sync"))})}},
      {"backends",
       "",
       "pg_stat_database numbackends",
       {gauge("backends", {t(exact("numbackends"))})}},
      {"problems",
       "/s",
       "pg_stat_database deadlocks, pg_stat_bgwriter checkpoints_req",
       {rate("deadlocks", {t(exact("deadlocks"))}),
        rate("requested checkpoints", {t(exact("checkpoints_req"))})},
       true},
  };
}

std::vector<Chart> nginx_charts() {
  return {
      {"requests", "/s", "stub_status requests", {rate("requests", {t(exact("requests"))})}},
      {"connections accepted",
       "/s",
       "stub_status accepts, handled",
       {rate("accepted", {t(exact("accepts"))}),
        rate("dropped", {t(exact("accepts")), t(exact("handled"), -1)})}},
      {"connections",
       "",
       "stub_status active, reading, writing, waiting",
       {gauge("active", {t(exact("active"))}), gauge("reading", {t(exact("reading"))}),
        gauge("writing", {t(exact("writing"))}), gauge("waiting", {t(exact("waiting"))})}},
  };
}

// HAProxy's backends, the most active first (sessions over the recording), at most
// kMaxServiceSeriesParts.
std::vector<std::string> haproxy_backends(const ProbePolls& p) {
  std::map<std::string, std::pair<double, double>> range;  // name: (min, max) of stot
  for (const auto* poll : p.polls) {
    for (const auto& [name, v] : poll->reading.counters) {
      static const std::string kPrefix = "backend:", kSuffix = ":stot";
      if (!around(kPrefix, kSuffix)(name)) continue;
      const std::string b =
          name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
      auto [it, added] = range.try_emplace(b, v, v);
      it->second.first = std::min(it->second.first, v);
      it->second.second = std::max(it->second.second, v);
    }
  }
  std::vector<std::pair<double, std::string>> by_activity;
  by_activity.reserve(range.size());
  for (const auto& [name, mm] : range) by_activity.emplace_back(mm.second - mm.first, name);
  std::stable_sort(by_activity.begin(), by_activity.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> out;
  for (const auto& [_, name] : by_activity) {
    if (out.size() == kMaxServiceSeriesParts) break;
    out.push_back(name);
  }
  return out;
}

std::vector<Chart> haproxy_charts(const ProbePolls& p) {
  std::vector<Chart> out = {
      {"frontend requests",
       "/s",
       "show stat: frontends' req_tot",
       {rate("requests", {t(around("frontend:", ":req_tot"))})}},
      {"frontend sessions",
       "",
       "show stat: frontends' scur",
       {gauge("current", {t(around("frontend:", ":scur"))})}},
  };
  Chart sessions{"backend sessions", "/s", "show stat: backends' stot", {}};
  Chart queue{"backend queue", "", "show stat: backends' qcur", {}};
  Chart time{"backend response time", "ms", "show stat: backends' rtime (last 1024 requests)", {}};
  Chart errors{"backend errors", "/s", "show stat: backends' econ, eresp, hrsp_5xx", {}, true};
  for (const auto& b : haproxy_backends(p)) {
    const std::string k = "backend:" + b + ":";
    sessions.series.push_back(rate(b, {t(exact(k + "stot"))}));
    queue.series.push_back(gauge(b, {t(exact(k + "qcur"))}));
    time.series.push_back(gauge(b, {t(exact(k + "rtime"))}));
    errors.series.push_back(
        rate(b, {t(exact(k + "econ")), t(exact(k + "eresp")), t(exact(k + "hrsp_5xx"))}));
  }
  for (auto* c : {&sessions, &queue, &time, &errors}) {
    if (!c->series.empty()) out.push_back(std::move(*c));
  }
  return out;
}

// PostgreSQL's backends by wait event (pg_stat_activity): the mean number of backends in each
// state over a column's polls, the busiest states apart and the rest as "other"; idle backends
// are left out (numbackends counts them).
nlohmann::json postgres_waits(const ProbePolls& p, std::size_t n) {
  std::map<std::string, double> total;
  for (const auto* poll : p.polls) {
    for (const auto& [_, state] : poll->reading.backend_states) {
      if (state != "idle") total[state] += 1;
    }
  }
  if (total.empty()) return nullptr;
  std::vector<std::pair<double, std::string>> busiest;
  busiest.reserve(total.size());
  for (const auto& [state, count] : total) busiest.emplace_back(count, state);
  std::stable_sort(busiest.begin(), busiest.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::map<std::string, std::size_t> index;
  for (const auto& [_, state] : busiest) {
    if (index.size() == kMaxServiceSeriesParts) break;
    index.emplace(state, index.size());
  }
  const bool other = busiest.size() > index.size();
  const std::size_t k = index.size() + (other ? 1 : 0);
  std::vector<std::vector<double>> sum(k, std::vector<double>(n, 0));
  std::vector<int> polls(n, 0);
  for (std::size_t i = 0; i < p.polls.size(); ++i) {
    const std::size_t c = p.columns[i];
    ++polls[c];
    for (const auto& [_, state] : p.polls[i]->reading.backend_states) {
      if (state == "idle") continue;
      auto it = index.find(state);
      sum[it != index.end() ? it->second : k - 1][c] += 1;
    }
  }
  nlohmann::json series = nlohmann::json::array();
  std::vector<std::string> names(k, "other");
  for (const auto& [state, i] : index) names[i] = state;
  for (std::size_t s = 0; s < k; ++s) {
    nlohmann::json v = nlohmann::json::array();
    for (std::size_t c = 0; c < n; ++c) {
      v.push_back(polls[c] ? nlohmann::json(sum[s][c] / polls[c]) : nullptr);
    }
    series.push_back({{"name", names[s]}, {"values", std::move(v)}});
  }
  return {{"title", "backends by wait event"},
          {"unit", "backends"},
          {"source", "pg_stat_activity wait_event_type:wait_event (active: on a CPU)"},
          {"series", std::move(series)}};
}

bool worth_drawing(const nlohmann::json& series, bool only_if_nonzero) {
  for (const auto& s : series) {
    for (const auto& v : s["values"]) {
      if (v.is_number() && (!only_if_nonzero || v.get<double>() != 0)) return true;
    }
  }
  return false;
}

}  // namespace

nlohmann::json service_series_json(const std::vector<model::ServiceProbe>& probes,
                                   const std::vector<model::ServicePoll>& polls,
                                   const ColumnGrid& grid) {
  nlohmann::json out = nlohmann::json::array();
  std::vector<ProbePolls> by_probe(probes.size());
  std::vector<int> failed(probes.size(), 0);
  std::vector<const model::ServicePoll*> last_failure(probes.size(), nullptr);
  for (const auto& poll : polls) {
    if (poll.probe >= probes.size()) continue;
    if (!poll.ok) {
      ++failed[poll.probe];
      last_failure[poll.probe] = &poll;
      continue;
    }
    by_probe[poll.probe].polls.push_back(&poll);
    by_probe[poll.probe].columns.push_back(column_of(grid, poll.at_ns));
  }
  const std::size_t n = grid.starts_ns.size();
  for (std::size_t i = 0; i < probes.size(); ++i) {
    const ProbePolls& p = by_probe[i];
    std::vector<Chart> specs;
    switch (probes[i].kind) {
      case model::ServiceKind::kRedis:
        specs = redis_charts();
        break;
      case model::ServiceKind::kMemcached:
        specs = memcached_charts();
        break;
      case model::ServiceKind::kPostgres:
        specs = postgres_charts();
        break;
      case model::ServiceKind::kNginx:
        specs = nginx_charts();
        break;
      case model::ServiceKind::kHaproxy:
        specs = haproxy_charts(p);
        break;
    }
    nlohmann::json charts = nlohmann::json::array();
    auto add = [&](nlohmann::json chart, bool only_if_nonzero) {
      if (worth_drawing(chart["series"], only_if_nonzero)) charts.push_back(std::move(chart));
    };
    for (const Chart& c : specs) {
      nlohmann::json series = nlohmann::json::array();
      for (const Series& s : c.series) {
        series.push_back({{"name", s.name}, {"values", values(p, s, n)}});
      }
      add({{"title", c.title}, {"unit", c.unit}, {"source", c.source}, {"series", series}},
          c.only_if_nonzero);
      // The wait events follow the transactions: where the backends' time went.
      if (probes[i].kind == model::ServiceKind::kPostgres && c.title == "transactions") {
        if (auto waits = postgres_waits(p, n); !waits.is_null()) add(std::move(waits), false);
      }
    }
    const model::ServicePoll* f = last_failure[i];
    out.push_back({{"kind", model::service_kind_name(probes[i].kind)},
                   {"endpoint", probes[i].endpoint},
                   {"how", probes[i].how},
                   {"polls", p.polls.size()},
                   {"failed", failed[i]},
                   {"error", f != nullptr ? f->error : ""},
                   {"hint", f != nullptr ? f->hint : ""},
                   {"charts", std::move(charts)}});
  }
  return out;
}

}  // namespace chokepoint::report
