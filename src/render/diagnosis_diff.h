#pragma once
// Two diagnoses side by side, before and after a change: the verdicts, the time split (share of
// wall time and of busy time) with what moved and by how much, each bottleneck's share and
// evidence, and what the target sent. Reads the model; never collects.

#include <nlohmann/json.hpp>
#include <string>

#include "analysis/diagnosis.h"
#include "model/observation.h"

namespace chokepoint::render {

struct DiffSide {
  std::string label;  // the recording's path, as the user named it
  // Both null for a load run alone (chokepoint load --record): then only the loads compare.
  const model::Observation* observation = nullptr;
  const analysis::Diagnosis* diagnosis = nullptr;
  // The load that drove the target (chokepoint load's JSON: rps, latency_ms.p50/p99), or null.
  const nlohmann::json* load = nullptr;
  // A knee run alone (chokepoint knee --record's JSON: knee.rate, usl.x_max, usl.n_star), or null.
  const nlohmann::json* knee = nullptr;
};

std::string diagnosis_diff_text(const DiffSide& before, const DiffSide& after);

// {"schema": 1, "before": {...}, "after": {...}, "time_split": {resource: {before, after,
// change}}, "bottlenecks": [{resource, kind, before_share, after_share, change}], "load": {rps,
// latency_p50_ms, latency_p99_ms: {before, after, ratio}} when both sides had load, "knee":
// {knee_rps, usl_peak_rps, usl_peak_concurrency: the same} when both were knee runs}; shares are
// fractions, changes are after - before, ratios after / before. Each side says "sampled"; when one
// is not (a load run alone), only "before", "after" and "load" are present.
nlohmann::json diagnosis_diff_json(const DiffSide& before, const DiffSide& after);

}  // namespace chokepoint::render
