#pragma once
// Renders a diagnosis: the terminal report for people, and the JSON contract (schema 1) for
// programs. Reads the model and the analysis only; collects nothing.

#include <nlohmann/json.hpp>
#include <string>

#include "analysis/diagnosis.h"
#include "model/observation.h"

namespace chokepoint::render {

// The time split as a bar of exactly `width` characters, one glyph per resource (# on_cpu,
// w cpu_wait, D disk, N network, L lock, M memory, s sleep, . idle), largest-remainder rounded;
// blanks when the split is empty.
std::string split_bar(const model::TimeSplit& split, int width);

// The report a person reads: the verdict first, then the time split as a bar, the evidence, the
// fixes, other findings, and the sources with what is missing and why.
std::string diagnosis_text(const model::Observation& obs, const analysis::Diagnosis& d);

// The JSON contract documented in docs/diagnose.md: schema, target, duration_s, time_split,
// verdict, bottlenecks, findings, sources, overhead (and more fields, never renamed).
nlohmann::json diagnosis_json(const model::Observation& obs, const analysis::Diagnosis& d);

}  // namespace chokepoint::render
