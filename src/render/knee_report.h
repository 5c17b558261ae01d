#pragma once
// The report of a `knee` run (loadgen/knee_runner.h): the live table's lines, the closing text
// (the curve, the knee, what saturates, the USL fit and plan), and the JSON that --json prints
// and the HTML page (report/page.h knee_html) draws. Pure functions; observed strings (URLs, the
// SLO as given, target names, the server's bytes in reasons and warnings) are escaped for the
// terminal in text and left raw in JSON.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/diagnosis.h"
#include "loadgen/knee_runner.h"
#include "model/observation.h"

namespace chokepoint::render {

// What the run was asked to do, as the user gave it.
struct KneeContext {
  std::vector<std::string> urls;
  std::string slo;                // as given; "" without the search
  std::int64_t slo_limit_us = 0;  // the SLO's largest limit (the curve's ':' column)
  double max_error_ratio = 0;
  double tolerance = 0;
  double step_s = 0;
  double warmup_s = 0;
  std::string target;  // the diagnosed target, described ("" without one)
  bool usl = false;
  double target_rate_per_s = 0;
  double max_utilization = 0;
};

// A target's diagnosis of one step, as the knee report shows it.
loadgen::StepDiagnosis step_diagnosis(const model::Observation& observation,
                                      const analysis::Diagnosis& diagnosis);

// The search's opening line and table header; one row per search step (`number` from 1).
std::string knee_search_header(const KneeContext& c);
std::string knee_step_line(const loadgen::KneeStep& s, std::size_t number);
// The sweep's opening line and table header; one row per sweep step.
std::string usl_sweep_header(const KneeContext& c);
std::string usl_step_line(const loadgen::KneeStep& s);

// Everything after the tables: the curve, the knee, what saturates, warnings, the USL fit.
std::string knee_summary_text(const loadgen::KneeRun& run, const KneeContext& c);

// The run as JSON: urls, step_s, warmup_s, target, and with the search slo, slo_limit_ms (its
// largest limit), max_error_ratio, steps, curve and knee; with the sweep usl (points, the fit's
// parameters, the plan).
nlohmann::json knee_json(const loadgen::KneeRun& run, const KneeContext& c);

// A USL fit's parameters as the knee JSON's "usl" object and the usl page hold them: lambda,
// sigma, kappa, r2, n_star and x_max (null when unbounded: kappa = 0 or a linear fit).
void add_usl_fit_json(nlohmann::json& out, const loadgen::UslFit& fit);

// The sweep as "concurrency,throughput" rows under a header (for chokepoint usl).
std::string usl_csv(const loadgen::KneeRun& run);

}  // namespace chokepoint::render
