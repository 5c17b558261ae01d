#pragma once
// Two multi-tier recordings side by side (diagnose --pid A --pid B --record, before and after a
// change): each tier's verdict before and after, the limiting tier before and after, then each
// tier's own diagnosis_diff. Tiers are paired by their place in the report (the order of --pid,
// or a cgroup's services by pid): a restarted service has a new pid. Reads the model only.

#include <nlohmann/json.hpp>
#include <string>

#include "render/tiers_report.h"

namespace chokepoint::render {

struct TiersDiffSide {
  std::string label;  // the recording's path, as the user named it
  TiersView tiers;
};

// REQUIRES: both sides have the same number of tiers.
std::string tiers_diff_text(const TiersDiffSide& before, const TiersDiffSide& after);

// {"schema": 1, "before": {"recording"}, "after": {"recording"}, "tiers": [{"tier": 1-based,
// "before": {"root_pid", "name", "verdict", "kind", "share"}, "after": {...}, "diff":
// diagnosis_diff_json of the tier}], "limiting_tier": {"before": {"tier": number or null,
// "verdict", "reason"}, "after": {...}, "changed": whether the tier or its verdict changed}}.
// kind and share are null for the verdict none. REQUIRES as tiers_diff_text.
nlohmann::json tiers_diff_json(const TiersDiffSide& before, const TiersDiffSide& after);

}  // namespace chokepoint::render
