#include "render/tiers_diff.h"

#include <fmt/format.h>

#include <cassert>

#include "render/diagnosis_diff.h"
#include "util/escape.h"

namespace chokepoint::render {
namespace {

using util::terminal_text;

std::string limiting_text(const TiersView& v) {
  if (!v.limiting.tier) return "none found";
  return fmt::format("{}: {}", analysis::tier_label(v.tiers, *v.limiting.tier),
                     verdict_words(v.tiers[*v.limiting.tier].diagnosis));
}

DiffSide tier_side(const TiersDiffSide& s, std::size_t i) {
  return {fmt::format("{} {}", s.label, analysis::tier_label(s.tiers.tiers, i)),
          &s.tiers.observations[i], &s.tiers.tiers[i].diagnosis, nullptr, nullptr};
}

nlohmann::json tier_json(const analysis::TierDiagnosis& t) {
  const auto& d = t.diagnosis;
  const bool none = d.verdict == analysis::Verdict::kNone || d.bottlenecks.empty();
  return {{"root_pid", t.root_pid},
          {"name", t.name},
          {"verdict", analysis::verdict_name(d.verdict)},
          {"kind", none ? nlohmann::json(nullptr)
                        : nlohmann::json(analysis::kind_name(d.bottlenecks.front().kind))},
          {"share", none ? nlohmann::json(nullptr) : nlohmann::json(d.bottlenecks.front().share)}};
}

nlohmann::json limiting_json(const TiersView& v) {
  const auto& l = v.limiting;
  return {{"tier", l.tier ? nlohmann::json(*l.tier + 1) : nlohmann::json(nullptr)},
          {"verdict",
           l.tier ? nlohmann::json(analysis::verdict_name(v.tiers[*l.tier].diagnosis.verdict))
                  : nlohmann::json(nullptr)},
          {"reason", l.reason}};
}

bool limiting_changed(const TiersView& a, const TiersView& b) {
  if (a.limiting.tier != b.limiting.tier) return true;
  if (!a.limiting.tier) return false;
  const auto& x = a.tiers[*a.limiting.tier].diagnosis;
  const auto& y = b.tiers[*b.limiting.tier].diagnosis;
  if (x.verdict != y.verdict) return true;
  return !x.bottlenecks.empty() && !y.bottlenecks.empty() &&
         x.bottlenecks.front().kind != y.bottlenecks.front().kind;
}

}  // namespace

std::string tiers_diff_text(const TiersDiffSide& before, const TiersDiffSide& after) {
  const auto& x = before.tiers;
  const auto& y = after.tiers;
  assert(x.tiers.size() == y.tiers.size());
  std::string out =
      fmt::format("chokepoint diff: {} tiers, paired by their place\n", x.tiers.size());
  out += fmt::format("  before: {}\n  after:  {}\n\n", terminal_text(before.label),
                     terminal_text(after.label));
  out += fmt::format("LIMITING TIER: {} -> {}{}\n", terminal_text(limiting_text(x)),
                     terminal_text(limiting_text(y)), limiting_changed(x, y) ? "" : " (unchanged)");
  out += fmt::format("  before: {}\n  after:  {}\n\nTiers:\n", terminal_text(x.limiting.reason),
                     terminal_text(y.limiting.reason));
  for (std::size_t i = 0; i < x.tiers.size(); ++i) {
    out += fmt::format(
        "  tier {}: {} -> {}\n", i + 1,
        terminal_text(fmt::format("pid {} ({})", x.tiers[i].root_pid, x.tiers[i].name)),
        terminal_text(fmt::format("pid {} ({})", y.tiers[i].root_pid, y.tiers[i].name)));
    out += fmt::format("    {} -> {}\n", verdict_words(x.tiers[i].diagnosis),
                       verdict_words(y.tiers[i].diagnosis));
  }
  for (std::size_t i = 0; i < x.tiers.size(); ++i) {
    out += fmt::format("\n=== tier {} ===\n", i + 1);
    out += diagnosis_diff_text(tier_side(before, i), tier_side(after, i));
  }
  return out;
}

nlohmann::json tiers_diff_json(const TiersDiffSide& before, const TiersDiffSide& after) {
  const auto& x = before.tiers;
  const auto& y = after.tiers;
  assert(x.tiers.size() == y.tiers.size());
  nlohmann::json tiers = nlohmann::json::array();
  for (std::size_t i = 0; i < x.tiers.size(); ++i) {
    tiers.push_back({{"tier", i + 1},
                     {"before", tier_json(x.tiers[i])},
                     {"after", tier_json(y.tiers[i])},
                     {"diff", diagnosis_diff_json(tier_side(before, i), tier_side(after, i))}});
  }
  return {{"schema", 1},
          {"before", {{"recording", before.label}}},
          {"after", {{"recording", after.label}}},
          {"tiers", tiers},
          {"limiting_tier",
           {{"before", limiting_json(x)},
            {"after", limiting_json(y)},
            {"changed", limiting_changed(x, y)}}}};
}

}  // namespace chokepoint::render
