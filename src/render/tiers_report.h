#pragma once
// The report of a multi-tier diagnosis (diagnose --pid A --pid B): each tier's verdict, the calls
// between tiers, and the tier that limits the whole with the reason (analysis/tiers.h); then each
// tier's own report. Reads the model and the analysis only.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/tiers.h"
#include "model/observation.h"
#include "model/tiers.h"

namespace chokepoint::render {

struct TiersView {
  const std::vector<analysis::TierDiagnosis>& tiers;
  const std::vector<model::Observation>& observations;  // one per tier, in the same order
  const std::vector<model::TierLink>& links;
  const analysis::LimitingTier& limiting;
};

// A tier's verdict in a line: "cpu (serial) - 100% of busy time", or "none".
std::string verdict_words(const analysis::Diagnosis& d);

// The summary (tiers, calls, the limiting tier and why), then each tier's diagnosis_text.
std::string tiers_text(const TiersView& v);

// {"schema": 1, "verdict": the limiting tier's verdict (null without one), "tiers": [{"tier":
// 1-based number, "root_pid", "name", "pids", "calls": [{"tier", "address", "connections"}],
// "verdict", "diagnosis": diagnosis_json}], "limiting_tier": {"tier": number or null, "path":
// [numbers], "reason"}}.
nlohmann::json tiers_json(const TiersView& v);

}  // namespace chokepoint::render
