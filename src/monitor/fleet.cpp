#include "monitor/fleet.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>

#include "analysis/diagnosis.h"
#include "collect/probes/proxy_probes.h"
#include "util/escape.h"

namespace chokepoint::monitor {
namespace {

constexpr std::size_t kMaxAnswerBytes = 32 << 20;

struct Series {
  std::map<std::string, std::string> labels;
  double value = 0;
};

util::Result<std::vector<Series>> instant_query(const FleetOptions& o, const std::string& promql) {
  std::string base = o.prometheus_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  const std::string url = base + "/api/v1/query?query=" + url_encode(promql);
  auto body = collect::probes::http_get_small(url, o.timeout_ns, kMaxAnswerBytes);
  if (!body) {
    return util::Error{
        fmt::format("cannot query Prometheus at {}: {}", o.prometheus_url, body.error().message),
        "pass --prometheus the server's base URL (e.g. http://127.0.0.1:9090) and "
        "check that it runs (curl URL/-/ready)",
        ECONNREFUSED};
  }
  const auto j = nlohmann::json::parse(*body, nullptr, false);
  const auto garbage = [&](const std::string& why) {
    return util::Error{
        fmt::format("{} did not answer like Prometheus's HTTP API ({})", o.prometheus_url, why),
        "pass --prometheus the base URL of a Prometheus server, not of an agent or a "
        "dashboard; /api/v1/query must answer",
        EPROTO};
  };
  if (j.is_discarded() || !j.is_object()) return garbage("not JSON");
  if (j.value("status", "") != "success") {
    return garbage("status " + util::terminal_text(j.value("status", "missing")) + ": " +
                   util::terminal_text(j.value("error", "")));
  }
  const auto data = j.find("data");
  if (data == j.end() || !data->is_object() || !data->contains("result") ||
      !(*data)["result"].is_array() || data->value("resultType", "") != "vector") {
    return garbage("no instant vector in data.result");
  }
  std::vector<Series> out;
  for (const auto& s : (*data)["result"]) {
    if (!s.is_object() || !s.contains("metric") || !s["metric"].is_object() ||
        !s.contains("value") || !s["value"].is_array() || s["value"].size() != 2 ||
        !s["value"][1].is_string()) {
      return garbage("a series without metric and value");
    }
    Series series;
    for (const auto& [k, v] : s["metric"].items()) {
      if (v.is_string()) series.labels[k] = v.get<std::string>();
    }
    const std::string text = s["value"][1].get<std::string>();
    char* end = nullptr;
    series.value = std::strtod(text.c_str(), &end);
    if (end == text.c_str()) return garbage("a value that is not a number");
    out.push_back(std::move(series));
  }
  return out;
}

std::string label(const Series& s, const std::string& name) {
  auto it = s.labels.find(name);
  return it == s.labels.end() ? std::string() : it->second;
}

bool valid_range(const std::string& r) {
  // A PromQL duration: digits and units (ms, s, m, h, d, w, y), e.g. 10m or 1h30m.
  if (r.empty() || r.size() > 32) return false;
  return std::all_of(r.begin(), r.end(),
                     [](char c) {
                       return (c >= '0' && c <= '9') || c == 'm' || c == 's' || c == 'h' ||
                              c == 'd' || c == 'w' || c == 'y';
                     }) &&
         r.front() >= '0' && r.front() <= '9';
}

}  // namespace

std::string url_encode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

util::Result<FleetReport> query_fleet(const FleetOptions& o) {
  if (!o.range.empty() && !valid_range(o.range)) {
    return util::Error{
        fmt::format("--range '{}' is not a PromQL duration", util::terminal_text(o.range)),
        "pass e.g. --range 10m or --range 1h", EINVAL};
  }
  const std::string verdicts_query = o.range.empty()
                                         ? "chokepoint_verdict"
                                         : "count_over_time(chokepoint_verdict[" + o.range + "])";
  auto verdicts = instant_query(o, verdicts_query);
  if (!verdicts) return verdicts.error();
  if (verdicts->empty()) {
    return util::Error{
        fmt::format("Prometheus at {} has no chokepoint_verdict series{}", o.prometheus_url,
                    o.range.empty() ? "" : " in the range"),
        "add the agents to its scrape_configs (deploy/ and docs/agent.md show one), and wait one "
        "window (10 s by default)",
        ENOENT};
  }
  auto shares = instant_query(o, "chokepoint_bottleneck_share");
  if (!shares) return shares.error();
  auto up = instant_query(o, "up");
  if (!up) return up.error();

  // One entry per (tier, instance, target): the verdict series with the most scrapes (the only
  // one, now).
  std::map<std::tuple<std::string, std::string, std::string>, FleetTarget> chosen;
  for (const auto& s : *verdicts) {
    FleetTarget t;
    t.tier = label(s, o.tier_label);
    t.instance = label(s, "instance");
    t.target = label(s, "target");
    t.resource = label(s, "resource");
    t.kind = label(s, "kind");
    t.windows = s.value;
    auto key = std::make_tuple(t.tier, t.instance, t.target);
    auto it = chosen.find(key);
    if (it == chosen.end() || t.windows > it->second.windows) chosen[key] = t;
  }
  for (const auto& s : *shares) {
    auto it = chosen.find({label(s, o.tier_label), label(s, "instance"), label(s, "target")});
    if (it != chosen.end() && it->second.resource == label(s, "resource") &&
        it->second.kind == label(s, "kind")) {
      it->second.share = s.value;
    }
  }
  std::map<std::string, FleetTier> tiers;
  std::map<std::string, std::set<std::string>> instances;
  for (auto& [key, t] : chosen) {
    FleetTier& tier = tiers[t.tier];
    tier.name = t.tier;
    instances[t.tier].insert(t.instance);
    if (t.resource != "none") ++tier.bound_by[t.resource];
    tier.targets.push_back(t);
  }
  for (const auto& s : *up) {
    auto it = tiers.find(label(s, o.tier_label));
    if (it != tiers.end() && s.value == 0) ++it->second.instances_down;
  }
  FleetReport r;
  for (auto& [name, tier] : tiers) {
    tier.instances = static_cast<int>(instances[name].size());
    std::stable_sort(tier.targets.begin(), tier.targets.end(),
                     [](const FleetTarget& a, const FleetTarget& b) {
                       if ((a.resource == "none") != (b.resource == "none"))
                         return b.resource == "none";
                       return a.share > b.share;
                     });
    r.tiers.push_back(std::move(tier));
  }
  return r;
}

std::string capacity_text(const TierCapacity& c, int instances_up) {
  const loadgen::UslModel& m = c.fit.model;
  const double x_max = m.x_max();
  std::string out = fmt::format("  capacity (USL of one instance from {}, R² {:.3f}): ",
                                util::terminal_text(c.source), c.fit.r2);
  if (std::isinf(x_max)) {
    return out +
           "linear scaling over the measured range (sigma = kappa = 0): no ceiling in "
           "sight, so no instance count follows; sweep higher concurrency\n";
  }
  if (std::isinf(m.n_star())) {
    out += fmt::format("ceiling {:.0f} req/s (no retrograde region)\n", x_max);
  } else {
    out += fmt::format("peak {:.0f} req/s at concurrency {:.1f}\n", x_max, m.n_star());
  }
  auto plan = loadgen::instances_needed(c.target_rate, m, c.max_utilization);
  if (!plan) return out + "    no plan: " + util::terminal_text(plan.error().message) + "\n";
  out += fmt::format(
      "    {:.0f} req/s needs {} instance(s) at {:.0f} req/s each (at most {:.0f}% of the peak); "
      "{} reporting now: ",
      c.target_rate, plan->instances, plan->rate_per_instance, 100 * c.max_utilization,
      instances_up);
  const long gap = plan->instances - instances_up;
  if (gap > 0) return out + fmt::format("add {}\n", gap);
  if (gap < 0) return out + fmt::format("{} more than needed\n", -gap);
  return out + "enough, with no spare\n";
}

std::string fleet_text(const FleetReport& report, const FleetOptions& o) {
  std::string out = fmt::format(
      "chokepoint fleet: {} ({}), tiers by label {}\n", util::terminal_text(o.prometheus_url),
      o.range.empty() ? "now" : "most frequent verdict over the last " + o.range,
      util::terminal_text(o.tier_label));
  int targets = 0;
  std::map<std::string, int> bound;
  for (const auto& tier : report.tiers) {
    int tier_bound = 0;
    for (const auto& [resource, n] : tier.bound_by) {
      tier_bound += n;
      bound[resource] += n;
    }
    targets += static_cast<int>(tier.targets.size());
    out += fmt::format(
        "\ntier {}: {} instance(s){}, {} target(s), {} bound\n",
        util::terminal_text(tier.name.empty() ? "(no label)" : tier.name), tier.instances,
        tier.instances_down > 0 ? fmt::format(" ({} down)", tier.instances_down) : "",
        tier.targets.size(), tier_bound);
    for (const auto& [resource, n] : tier.bound_by) {
      out += fmt::format("  {}-bound: {} target(s)\n", resource, n);
    }
    for (const auto& t : tier.targets) {
      out += fmt::format("    {:<22} {:<40} {}", util::terminal_text(t.instance),
                         util::terminal_text(t.target), util::terminal_text(t.resource));
      if (t.resource != "none") {
        const auto kind = analysis::kind_from_name(t.kind);
        out += fmt::format(" ({}, {})", util::terminal_text(t.kind),
                           kind ? analysis::share_text(*kind, t.share)
                                : fmt::format("{:.0f}% of busy time", 100 * t.share));
      }
      out += '\n';
    }
    if (auto c = o.capacity.find(tier.name); c != o.capacity.end()) {
      out += capacity_text(c->second, tier.instances);
    }
  }
  int total_bound = 0;
  std::string parts;
  for (const auto& [resource, n] : bound) {
    total_bound += n;
    parts += fmt::format("{}{} {}", parts.empty() ? "" : ", ", n, resource);
  }
  out += fmt::format("\nFleet verdict: {} of {} target(s) bound{}{}\n", total_bound, targets,
                     parts.empty() ? "" : ": ", parts);
  for (const auto& entry : o.capacity) {
    const std::string& name = entry.first;
    const bool known = std::any_of(report.tiers.begin(), report.tiers.end(),
                                   [&name](const FleetTier& t) { return t.name == name; });
    if (known) continue;
    out += fmt::format("\ntier {} (--usl): no instance reports to Prometheus\n",
                       util::terminal_text(name));
    out += capacity_text(entry.second, 0);
  }
  return out;
}

}  // namespace chokepoint::monitor
