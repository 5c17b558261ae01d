#include "analysis/tiers.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <string_view>

namespace chokepoint::analysis {
namespace {

// "network (upstream)", "cpu (serial)", "none".
std::string verdict_text(const Diagnosis& d) {
  if (d.verdict == Verdict::kNone || d.bottlenecks.empty()) {
    return std::string(verdict_name(d.verdict));
  }
  return fmt::format("{} ({})", verdict_name(d.verdict), kind_name(d.bottlenecks.front().kind));
}

double primary_share(const Diagnosis& d) {
  return d.bottlenecks.empty() ? 0.0 : d.bottlenecks.front().share;
}

}  // namespace

std::string tier_label(const std::vector<TierDiagnosis>& tiers, std::size_t tier) {
  const TierDiagnosis& t = tiers.at(tier);
  return t.name.empty() ? fmt::format("tier {} (pid {})", tier + 1, t.root_pid)
                        : fmt::format("tier {} (pid {}, {})", tier + 1, t.root_pid, t.name);
}

LimitingTier limiting_tier(const std::vector<TierDiagnosis>& tiers,
                           const std::vector<model::TierLink>& links) {
  LimitingTier out;
  if (tiers.empty()) return out;
  std::set<std::size_t> called;
  for (const auto& l : links) called.insert(l.to);
  const auto calls_others = [&](std::size_t t) {
    return std::any_of(links.begin(), links.end(),
                       [&](const model::TierLink& l) { return l.from == t; });
  };
  std::optional<std::size_t> front;
  for (std::size_t t = 0; t < tiers.size() && !front; ++t) {
    if (!called.count(t) && calls_others(t)) front = t;
  }
  if (!front) {
    // Nobody calls anybody, or every tier is called (a cycle): no front to follow from.
    out.reason = links.empty()
                     ? "no tier calls another (no connection from one tier to an address another "
                       "listens on): each tier's verdict stands alone"
                     : "every tier is called by another (a cycle): no front tier to follow the "
                       "request path from; each tier's verdict stands alone";
    return out;
  }
  std::size_t cur = *front;
  out.path = {cur};
  std::string hops;  // "tier 1 (...) waits on the network for tier 2 (...) at ADDR, which ..."
  while (true) {
    const Diagnosis& d = tiers[cur].diagnosis;
    if (d.verdict != Verdict::kNetwork) break;
    // The callees not on the path yet, the busiest (by primary share) first.
    const model::TierLink* next = nullptr;
    for (const auto& l : links) {
      if (l.from != cur || std::find(out.path.begin(), out.path.end(), l.to) != out.path.end()) {
        continue;
      }
      if (!next) {
        next = &l;
        continue;
      }
      const Diagnosis& a = tiers[l.to].diagnosis;
      const Diagnosis& b = tiers[next->to].diagnosis;
      const bool a_has = a.verdict != Verdict::kNone, b_has = b.verdict != Verdict::kNone;
      if (a_has != b_has ? a_has : primary_share(a) > primary_share(b)) next = &l;
    }
    if (!next) break;
    const Diagnosis& callee = tiers[next->to].diagnosis;
    hops += fmt::format(
        "{} waits on the network ({}) for {} at {}, ", tier_label(tiers, cur),
        d.bottlenecks.empty() ? std::string_view{} : kind_name(d.bottlenecks.front().kind),
        tier_label(tiers, next->to), next->address);
    if (callee.verdict == Verdict::kNone) {
      out.tier = cur;
      out.reason = hops + fmt::format(
                              "which has headroom (none): the time is in the round trips to it "
                              "and in its own waits, not in its capacity; the fixes are {}'s",
                              tier_label(tiers, cur));
      return out;
    }
    cur = next->to;
    out.path.push_back(cur);
  }
  out.tier = cur;
  const std::string limit = verdict_text(tiers[cur].diagnosis);
  if (out.path.size() == 1) {
    out.reason = fmt::format(
        "{} is the front tier (no other tier calls it) and is limited by {}, not by "
        "the tiers it calls",
        tier_label(tiers, cur), limit);
  } else {
    out.reason = hops + fmt::format("which is limited by {}: the whole is limited by {}'s {}",
                                    limit, tier_label(tiers, cur), limit);
  }
  return out;
}

}  // namespace chokepoint::analysis
