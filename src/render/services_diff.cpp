#include "render/services_diff.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "util/escape.h"

namespace chokepoint::render {
namespace {

struct ServicePair {
  const model::ServiceObservation* before;
  const model::ServiceObservation* after;
};

// Each service of `before` with its match in `after`: the same kind and endpoint, or the same
// kind when each side has exactly one of it (a server moved to another port between the runs).
std::vector<ServicePair> pair_services(const std::vector<model::ServiceObservation>& before,
                                       const std::vector<model::ServiceObservation>& after) {
  std::vector<ServicePair> out;
  auto count_kind = [](const std::vector<model::ServiceObservation>& v, model::ServiceKind k) {
    return std::count_if(v.begin(), v.end(), [k](const auto& s) { return s.kind == k; });
  };
  for (const auto& b : before) {
    if (b.samples_ok == 0) continue;
    const model::ServiceObservation* match = nullptr;
    for (const auto& a : after) {
      if (a.samples_ok > 0 && a.kind == b.kind && a.endpoint == b.endpoint) match = &a;
    }
    if (!match && count_kind(before, b.kind) == 1 && count_kind(after, b.kind) == 1) {
      for (const auto& a : after) {
        if (a.samples_ok > 0 && a.kind == b.kind) match = &a;
      }
    }
    if (match) out.push_back({&b, match});
  }
  return out;
}

struct MovedRow {
  std::string name;
  double before = 0, after = 0;
};

// The counters on both sides with a rate on either, largest rate first.
std::vector<MovedRow> counter_rows(const ServicePair& p) {
  std::vector<MovedRow> rows;
  for (const auto& [name, v] : p.before->counters_last) {
    if (!p.after->counters_last.count(name)) continue;
    const double x = p.before->rate_per_s(name), y = p.after->rate_per_s(name);
    if (x > 0 || y > 0) rows.push_back({name, x, y});
  }
  std::stable_sort(rows.begin(), rows.end(), [](const MovedRow& a, const MovedRow& b) {
    return std::max(a.before, a.after) > std::max(b.before, b.after);
  });
  if (rows.size() > kServiceDiffCounters) rows.resize(kServiceDiffCounters);
  return rows;
}

// The gauges on both sides whose mean moved, the largest relative move first.
std::vector<MovedRow> gauge_rows(const ServicePair& p) {
  std::vector<std::pair<double, MovedRow>> moved;
  for (const auto& [name, g] : p.before->gauges) {
    auto it = p.after->gauges.find(name);
    if (it == p.after->gauges.end() || g.mean == it->second.mean) continue;
    const double scale = std::max(std::fabs(g.mean), std::fabs(it->second.mean));
    moved.push_back({std::fabs(it->second.mean - g.mean) / scale, {name, g.mean, it->second.mean}});
  }
  std::stable_sort(moved.begin(), moved.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<MovedRow> rows;
  for (auto& [share, row] : moved) {
    if (rows.size() >= kServiceDiffGauges) break;
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string service_number(double v) {
  return std::fabs(v) >= 1000 ? fmt::format("{:.0f}", v) : fmt::format("{:.3g}", v);
}

// A row: the name in a column of 32 that always ends with a space, then before, after, move.
std::string service_row(const std::string& name, double before, double after,
                        const std::string& moved) {
  std::string cell = util::terminal_text(name);
  if (cell.size() >= 32) cell += ' ';
  return fmt::format("    {:<32}{:<20}{:<20}{}\n", cell, service_number(before),
                     service_number(after), moved);
}

std::string service_label(const ServicePair& p) {
  std::string label = model::service_kind_name(p.before->kind);
  label += " " + util::terminal_text(p.before->endpoint);
  if (p.after->endpoint != p.before->endpoint) {
    label += " -> " + util::terminal_text(p.after->endpoint);
  }
  return label;
}

}  // namespace

std::string services_diff_text(const std::vector<model::ServiceObservation>& before,
                               const std::vector<model::ServiceObservation>& after) {
  const auto pairs = pair_services(before, after);
  if (pairs.empty()) return {};
  std::string out = fmt::format(
      "\nServices (their own statistics; counters per second, gauges' means)\n    {:<32}{:<20}"
      "{:<20}\n",
      "", "before", "after");
  for (const auto& p : pairs) {
    out += "  " + service_label(p) + "\n";
    for (const auto& r : counter_rows(p)) {
      out += service_row(r.name + "/s", r.before, r.after,
                         r.before > 0 ? fmt::format("x{:.3g}", r.after / r.before) : "new");
    }
    for (const auto& r : gauge_rows(p)) {
      out += service_row(
          r.name, r.before, r.after,
          (r.after >= r.before ? "+" : "-") + service_number(std::fabs(r.after - r.before)));
    }
  }
  return out;
}

nlohmann::json services_diff_json(const std::vector<model::ServiceObservation>& before,
                                  const std::vector<model::ServiceObservation>& after) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : pair_services(before, after)) {
    nlohmann::json counters = nlohmann::json::object();
    for (const auto& r : counter_rows(p)) {
      counters[r.name] = {
          {"before", r.before},
          {"after", r.after},
          {"ratio", r.before > 0 ? nlohmann::json(r.after / r.before) : nlohmann::json(nullptr)}};
    }
    nlohmann::json gauges = nlohmann::json::object();
    for (const auto& r : gauge_rows(p)) {
      gauges[r.name] = {{"before", r.before}, {"after", r.after}, {"change", r.after - r.before}};
    }
    out.push_back({{"kind", model::service_kind_name(p.before->kind)},
                   {"endpoint_before", p.before->endpoint},
                   {"endpoint_after", p.after->endpoint},
                   {"counters", std::move(counters)},
                   {"gauges", std::move(gauges)}});
  }
  return out;
}

}  // namespace chokepoint::render
