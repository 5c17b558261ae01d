#pragma once
// The report of one finished load run (load, diagnose --load, each knee step) as text and JSON.
// Pure functions of the run; observed strings (the server's own bytes in warnings) are escaped
// for the terminal here, and left raw in JSON.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loadgen/assess.h"
#include "loadgen/histogram.h"
#include "loadgen/load.h"

namespace chokepoint::render {

// Latency in ms from the histogram's microseconds.
double to_ms(std::int64_t us);
nlohmann::json percentiles_json(const loadgen::Histogram& h);
// "p50 ... max ... ms"; "no successful requests" when the histogram is empty (JSON: nulls).
std::string percentiles_text(const loadgen::Histogram& h);

// The report of one run. `urls` are the URLs as the user gave them.
nlohmann::json load_json(const loadgen::LoadResult& r, const loadgen::LoadOptions& o,
                         const loadgen::LoadAssessment& a, const std::vector<std::string>& urls);
// A few lines: requests and rate, outcomes, latency, service time, sends, warnings. Each line
// starts with `indent`.
std::string load_text_summary(const loadgen::LoadResult& r, const loadgen::LoadOptions& o,
                              const loadgen::LoadAssessment& a, const std::string& indent);

}  // namespace chokepoint::render
