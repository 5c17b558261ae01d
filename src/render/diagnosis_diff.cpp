#include "render/diagnosis_diff.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <utility>

#include "analysis/rules/rule.h"
#include "util/escape.h"

namespace chokepoint::render {
namespace {

using model::Resource;

// Observed text (paths, names in evidence) on a terminal.
std::string term(std::string_view s) {
  return util::terminal_text(s);
}

// The verdict in a table cell: "disk (fsync) 55%" (of busy time, as the header says), "network
// (backlog) 61% dropped", "memory (leak) runs out in 20 min". A cell as wide as its column or
// wider ends with a space, so that the next one never runs into it.
std::string verdict_text(const analysis::Diagnosis& d) {
  if (d.verdict == analysis::Verdict::kNone || d.bottlenecks.empty()) return "none";
  const auto& b = d.bottlenecks.front();
  std::string weight;
  switch (analysis::share_basis(b.kind)) {
    case analysis::ShareBasis::kBusyTime:
      weight = analysis::rules::percent(b.share);
      break;
    case analysis::ShareBasis::kConnectionAttempts:
      weight = analysis::rules::percent(b.share) + " dropped";
      break;
    case analysis::ShareBasis::kFreeMemoryPerHour:
      weight = b.limit_in_s ? "runs out in " + analysis::rules::duration(*b.limit_in_s)
                            : analysis::rules::percent(b.share) + " of free memory/h";
      break;
  }
  std::string out = fmt::format("{} ({}) {}", analysis::verdict_name(b.resource),
                                analysis::kind_name(b.kind), weight);
  if (out.size() >= 24) out += ' ';
  return out;
}

double busy_share(const model::TimeSplit& s, Resource r) {
  const auto busy = static_cast<double>(s.busy_ns());
  return busy > 0 ? static_cast<double>(s[r]) / busy : 0;
}

std::string points(double change) {
  const double pts = change * 100;
  if (std::fabs(pts) < 0.5) return "=";
  return fmt::format("{:+.0f} pts", pts);
}

// A bottleneck's (resource, kind) names, the key both sides are matched by.
std::pair<std::string, std::string> names(const analysis::Bottleneck& x) {
  return {std::string(analysis::verdict_name(x.resource)),
          std::string(analysis::kind_name(x.kind))};
}

// Bottlenecks of both sides by (resource, kind): the share before and after (0 when absent).
std::map<std::pair<std::string, std::string>,
         std::pair<const analysis::Bottleneck*, const analysis::Bottleneck*>>
match_bottlenecks(const analysis::Diagnosis& a, const analysis::Diagnosis& b) {
  std::map<std::pair<std::string, std::string>,
           std::pair<const analysis::Bottleneck*, const analysis::Bottleneck*>>
      out;
  for (const auto& x : a.bottlenecks) out[names(x)].first = &x;
  for (const auto& x : b.bottlenecks) out[names(x)].second = &x;
  return out;
}

std::uint64_t bytes_sent_per_s(const model::Observation& obs) {
  std::uint64_t sum = 0;
  for (const auto& p : obs.processes) sum += p.bytes_sent_per_s;
  return sum;
}

// The number at doc[key] or doc[key][sub] ("latency_ms", "p99"), when there is one.
std::optional<double> number_at(const nlohmann::json* doc, const char* key, const char* sub) {
  const nlohmann::json* at = doc;
  for (const char* k : {key, sub}) {
    if (!k) break;
    if (!at || !at->is_object()) return std::nullopt;
    auto it = at->find(k);
    if (it == at->end()) return std::nullopt;
    at = &*it;
  }
  if (!at || !at->is_number()) return std::nullopt;
  return at->get<double>();
}

// A number both sides' runs may have: from the load report (load) or the knee report (knee).
struct RunRow {
  const char* label;
  const char* json_name;
  const nlohmann::json* DiffSide::*doc;
  const char* key;
  const char* sub;
};
constexpr RunRow kLoadRows[] = {
    {"throughput (req/s)", "rps", &DiffSide::load, "rps", nullptr},
    {"latency p50 (ms)", "latency_p50_ms", &DiffSide::load, "latency_ms", "p50"},
    {"latency p99 (ms)", "latency_p99_ms", &DiffSide::load, "latency_ms", "p99"}};
constexpr RunRow kKneeRows[] = {
    {"knee (req/s)", "knee_rps", &DiffSide::knee, "knee", "rate"},
    {"USL peak (req/s)", "usl_peak_rps", &DiffSide::knee, "usl", "x_max"},
    {"USL peak at (connections)", "usl_peak_concurrency", &DiffSide::knee, "usl", "n_star"}};

std::string run_rows_text(const DiffSide& before, const DiffSide& after) {
  std::string out;
  for (std::span<const RunRow> rows :
       {std::span<const RunRow>(kLoadRows), std::span<const RunRow>(kKneeRows)}) {
    for (const auto& row : rows) {
      const auto x = number_at(before.*row.doc, row.key, row.sub);
      const auto y = number_at(after.*row.doc, row.key, row.sub);
      if (!x || !y) continue;
      auto num = [](double v) {
        return v >= 1000 ? fmt::format("{:.0f}", v) : fmt::format("{:.3g}", v);
      };
      out += fmt::format("  {:<26}{:<24}{:<24}{}\n", row.label, num(*x), num(*y),
                         *x > 0 ? fmt::format("x{:.3g}", *y / *x) : "");
    }
  }
  return out;
}

nlohmann::json run_rows_json(const DiffSide& before, const DiffSide& after,
                             std::span<const RunRow> rows) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& row : rows) {
    const auto x = number_at(before.*row.doc, row.key, row.sub);
    const auto y = number_at(after.*row.doc, row.key, row.sub);
    if (!x || !y) continue;
    out[row.json_name] = {{"before", *x},
                          {"after", *y},
                          {"ratio", *x > 0 ? nlohmann::json(*y / *x) : nlohmann::json(nullptr)}};
  }
  return out;
}

// "load" and "knee" of the diff's JSON, each when both sides have its numbers.
void add_run_rows_json(const DiffSide& before, const DiffSide& after, nlohmann::json& j) {
  if (auto load = run_rows_json(before, after, kLoadRows); !load.empty()) {
    j["load"] = std::move(load);
  }
  if (auto knee = run_rows_json(before, after, kKneeRows); !knee.empty()) {
    j["knee"] = std::move(knee);
  }
}

bool sampled(const DiffSide& s) {
  return s.observation != nullptr && s.diagnosis != nullptr;
}

// What a side that was not sampled holds: "knee" (a knee run) or "load" (a load run).
const char* run_kind(const DiffSide& s) {
  return s.knee != nullptr && !s.knee->is_null() ? "knee" : "load";
}

// Two sides of which one or both hold a load run alone (chokepoint load --record): only the
// loads compare.
std::string load_only_diff_text(const DiffSide& before, const DiffSide& after) {
  std::string out =
      fmt::format("chokepoint diff: {} -> {}\n\n", term(before.label), term(after.label));
  out += fmt::format("  {:<26}{:<24}{:<24}\n", "", "before", "after");
  auto what = [](const DiffSide& s) {
    return sampled(s) ? std::string(analysis::verdict_name(s.diagnosis->verdict))
                      : std::string(run_kind(s)) + " run alone";
  };
  out += fmt::format("  {:<26}{:<24}{:<24}\n", "recording", what(before), what(after));
  const std::string rows = run_rows_text(before, after);
  out += rows;
  out += "\n";
  for (const DiffSide* s : {&before, &after}) {
    if (!sampled(*s)) {
      out += fmt::format(
          "{} holds a {} run alone (chokepoint {} --record): no target was sampled, so only the "
          "runs are compared.\n",
          term(s->label), run_kind(*s), run_kind(*s));
    }
  }
  if (rows.empty()) {
    out +=
        "The two recordings have no numbers in common to compare (a load run against a knee "
        "run?).\n";
  }
  out +=
      "To compare verdicts and time splits too, record both runs with `chokepoint diagnose "
      "TARGET --load URL --record FILE`.\n";
  return out;
}

nlohmann::json side_json(const DiffSide& s) {
  if (!sampled(s)) return {{"recording", s.label}, {"sampled", false}, {"run", run_kind(s)}};
  const auto& obs = *s.observation;
  const auto& d = *s.diagnosis;
  nlohmann::json j{{"recording", s.label},
                   {"sampled", true},
                   {"target", obs.target.kind + " " + obs.target.spec},
                   {"duration_s", static_cast<double>(obs.duration_ns) / 1e9},
                   {"threads", obs.threads.size()},
                   {"verdict", analysis::verdict_name(d.verdict)},
                   {"bytes_sent_per_s", bytes_sent_per_s(obs)}};
  if (!d.bottlenecks.empty() && d.verdict != analysis::Verdict::kNone) {
    const auto& b = d.bottlenecks.front();
    j["primary"] = {{"resource", analysis::verdict_name(b.resource)},
                    {"kind", analysis::kind_name(b.kind)},
                    {"share", b.share},
                    {"share_of", analysis::share_basis_name(analysis::share_basis(b.kind))}};
  }
  return j;
}

}  // namespace

std::string diagnosis_diff_text(const DiffSide& before, const DiffSide& after) {
  if (!sampled(before) || !sampled(after)) return load_only_diff_text(before, after);
  const auto& a = *before.diagnosis;
  const auto& b = *after.diagnosis;
  std::string out =
      fmt::format("chokepoint diff: {} -> {}\n\n", term(before.label), term(after.label));
  out += fmt::format("  {:<26}{:<24}{:<24}\n", "", "before", "after");
  out += fmt::format("  {:<26}{:<24}{:<24}{}\n", "VERDICT", verdict_text(a), verdict_text(b),
                     a.verdict == b.verdict ? "same" : "changed");
  out += fmt::format("  {:<26}{:<24}{:<24}\n", "window",
                     fmt::format("{:.1f} s", before.observation->duration_ns / 1e9),
                     fmt::format("{:.1f} s", after.observation->duration_ns / 1e9));
  const std::uint64_t sent_a = bytes_sent_per_s(*before.observation);
  const std::uint64_t sent_b = bytes_sent_per_s(*after.observation);
  if (sent_a > 0 || sent_b > 0) {
    auto cell = [](std::uint64_t v) { return v > 0 ? std::to_string(v) : std::string("-"); };
    out += fmt::format(
        "  {:<26}{:<24}{:<24}{}\n", "sent (bytes/s, tcp_info)", cell(sent_a), cell(sent_b),
        sent_a > 0 && sent_b > 0
            ? fmt::format("x{:.2f}", static_cast<double>(sent_b) / static_cast<double>(sent_a))
            : std::string());
  }
  out += run_rows_text(before, after);
  out += "\nTime split (share of wall time; of busy time in brackets)\n";
  for (std::size_t i = 0; i < model::kResourceCount; ++i) {
    const auto r = static_cast<Resource>(i);
    const double x = a.split.share(r), y = b.split.share(r);
    const bool busy_kind = r != Resource::kIdle && r != Resource::kSleep;
    auto cell = [&](const analysis::Diagnosis& d, double share) {
      return busy_kind ? fmt::format("{} ({})", analysis::rules::percent(share),
                                     analysis::rules::percent(busy_share(d.split, r)))
                       : analysis::rules::percent(share);
    };
    out += fmt::format(
        "  {:<26}{:<24}{:<24}{}\n", model::resource_name(r), cell(a, x), cell(b, y),
        busy_kind ? points(busy_share(b.split, r) - busy_share(a.split, r)) : points(y - x));
  }
  out += "\nBottlenecks (share of busy time; a leak's: of the free memory eaten per hour)\n";
  for (const auto& [key, pair] : match_bottlenecks(a, b)) {
    const auto* x = pair.first;
    const auto* y = pair.second;
    if ((!x || !x->significant) && (!y || !y->significant)) continue;
    const double sx = x ? x->share : 0, sy = y ? y->share : 0;
    std::string status = !x ? "new" : !y ? "gone" : points(sy - sx);
    out += fmt::format("  {:<26}{:<24}{:<24}{}\n", key.first + " (" + key.second + ")",
                       x ? analysis::rules::percent(sx) : "-",
                       y ? analysis::rules::percent(sy) : "-", status);
  }
  auto evidence = [&](const char* when, const analysis::Diagnosis& d) {
    if (d.verdict == analysis::Verdict::kNone || d.bottlenecks.empty()) {
      out += fmt::format("\nEvidence {}: nothing limits the service; {}\n", when, term(d.headroom));
      return;
    }
    const auto& p = d.bottlenecks.front();
    out += fmt::format("\nEvidence {} ({} {}):\n", when, analysis::verdict_name(p.resource),
                       analysis::kind_name(p.kind));
    for (const auto& e : p.evidence) out += "  - " + term(e) + "\n";
  };
  evidence("before", a);
  evidence("after", b);
  return out;
}

nlohmann::json diagnosis_diff_json(const DiffSide& before, const DiffSide& after) {
  nlohmann::json j;
  j["schema"] = 1;
  j["before"] = side_json(before);
  j["after"] = side_json(after);
  if (!sampled(before) || !sampled(after)) {
    add_run_rows_json(before, after, j);
    return j;
  }
  const auto& a = *before.diagnosis;
  const auto& b = *after.diagnosis;
  j["verdict_changed"] = a.verdict != b.verdict;
  nlohmann::json split = nlohmann::json::object();
  for (std::size_t i = 0; i < model::kResourceCount; ++i) {
    const auto r = static_cast<Resource>(i);
    const double x = a.split.share(r), y = b.split.share(r);
    nlohmann::json e{{"before", x}, {"after", y}, {"change", y - x}};
    if (r != Resource::kIdle && r != Resource::kSleep) {
      const double bx = busy_share(a.split, r), by = busy_share(b.split, r);
      e["busy_before"] = bx;
      e["busy_after"] = by;
      e["busy_change"] = by - bx;
    }
    split[std::string(model::resource_name(r))] = std::move(e);
  }
  j["time_split"] = std::move(split);
  nlohmann::json bottlenecks = nlohmann::json::array();
  for (const auto& [key, pair] : match_bottlenecks(a, b)) {
    const auto* x = pair.first;
    const auto* y = pair.second;
    nlohmann::json e{{"resource", key.first},
                     {"kind", key.second},
                     {"before_share", x ? x->share : 0.0},
                     {"after_share", y ? y->share : 0.0},
                     {"change", (y ? y->share : 0.0) - (x ? x->share : 0.0)},
                     {"significant_before", x && x->significant},
                     {"significant_after", y && y->significant}};
    auto ev = [](const analysis::Bottleneck* bn) {
      nlohmann::json out = nlohmann::json::array();
      if (bn) {
        for (const auto& s : bn->evidence) out.push_back(s);
      }
      return out;
    };
    e["evidence_before"] = ev(x);
    e["evidence_after"] = ev(y);
    bottlenecks.push_back(std::move(e));
  }
  j["bottlenecks"] = std::move(bottlenecks);
  add_run_rows_json(before, after, j);
  return j;
}

}  // namespace chokepoint::render
