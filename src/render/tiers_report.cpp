#include "render/tiers_report.h"

#include <fmt/format.h>

#include "render/diagnosis_report.h"
#include "util/escape.h"

namespace chokepoint::render {
using util::terminal_text;

std::string verdict_words(const analysis::Diagnosis& d) {
  if (d.verdict == analysis::Verdict::kNone || d.bottlenecks.empty()) return "none";
  const auto& b = d.bottlenecks.front();
  return fmt::format("{} ({}) - {}", analysis::verdict_name(b.resource),
                     analysis::kind_name(b.kind), analysis::share_text(b));
}

std::string tiers_text(const TiersView& v) {
  std::string out = fmt::format(
      "chokepoint diagnose: {} tiers (each a process and its children), {:.1f} s\n\n",
      v.tiers.size(), v.observations.empty() ? 0.0 : v.observations.front().duration_ns / 1e9);
  out += "Tiers:\n";
  for (std::size_t i = 0; i < v.tiers.size(); ++i) {
    out += fmt::format("  {}: {}, {} process{}\n", terminal_text(analysis::tier_label(v.tiers, i)),
                       verdict_words(v.tiers[i].diagnosis), v.tiers[i].pids.size(),
                       v.tiers[i].pids.size() == 1 ? "" : "es");
    for (const auto& l : v.links) {
      if (l.from != i) continue;
      out += fmt::format("    calls {} at {} ({} connection{})\n",
                         terminal_text(analysis::tier_label(v.tiers, l.to)),
                         terminal_text(l.address), l.connections, l.connections == 1 ? "" : "s");
    }
  }
  out += "\n";
  if (v.limiting.tier) {
    out += fmt::format("LIMITING TIER: {}: {}\n",
                       terminal_text(analysis::tier_label(v.tiers, *v.limiting.tier)),
                       verdict_words(v.tiers[*v.limiting.tier].diagnosis));
  } else {
    out += "LIMITING TIER: none found\n";
  }
  out += "  " + terminal_text(v.limiting.reason) + "\n";
  for (std::size_t i = 0; i < v.tiers.size() && i < v.observations.size(); ++i) {
    out += fmt::format("\n=== {} ===\n", terminal_text(analysis::tier_label(v.tiers, i)));
    out += diagnosis_text(v.observations[i], v.tiers[i].diagnosis);
  }
  return out;
}

nlohmann::json tiers_json(const TiersView& v) {
  using nlohmann::json;
  json tiers = json::array();
  for (std::size_t i = 0; i < v.tiers.size() && i < v.observations.size(); ++i) {
    const auto& t = v.tiers[i];
    json calls = json::array();
    for (const auto& l : v.links) {
      if (l.from != i) continue;
      calls.push_back({{"tier", l.to + 1}, {"address", l.address}, {"connections", l.connections}});
    }
    tiers.push_back({{"tier", i + 1},
                     {"root_pid", t.root_pid},
                     {"name", t.name},
                     {"pids", t.pids},
                     {"calls", calls},
                     {"verdict", analysis::verdict_name(t.diagnosis.verdict)},
                     {"diagnosis", diagnosis_json(v.observations[i], t.diagnosis)}});
  }
  json path = json::array();
  for (std::size_t p : v.limiting.path) path.push_back(p + 1);
  json limiting = {{"tier", v.limiting.tier ? json(*v.limiting.tier + 1) : json(nullptr)},
                   {"path", path},
                   {"reason", v.limiting.reason}};
  json verdict = nullptr;
  if (v.limiting.tier)
    verdict = analysis::verdict_name(v.tiers[*v.limiting.tier].diagnosis.verdict);
  return {{"schema", 1}, {"verdict", verdict}, {"tiers", tiers}, {"limiting_tier", limiting}};
}

}  // namespace chokepoint::render
