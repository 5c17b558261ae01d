#include "render/knee_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "render/diagnosis_report.h"
#include "render/load_report.h"
#include "util/escape.h"

namespace chokepoint::render {
namespace {

using loadgen::KneeStep;

std::string verdict_text(const KneeStep& s) {
  if (!s.diagnosis) return s.diagnosis_error.empty() ? "" : "(no diagnosis)";
  return s.diagnosis->verdict;
}

std::string percentile_cell(const KneeStep& s, double p) {
  if (s.load.latency.count() == 0) return "-";  // no response: no latency (not 0.000)
  return fmt::format("{:.3f}", to_ms(s.load.latency.percentile_us(p)));
}

std::string url_text(const KneeContext& c) {
  return c.urls.size() == 1 ? util::terminal_text(c.urls[0])
                            : fmt::format("{} URLs", c.urls.size());
}

nlohmann::json step_json(const KneeStep& s, bool search) {
  nlohmann::json j;
  j["offered_rate"] =
      s.offered_rate_per_s > 0 ? nlohmann::json(s.offered_rate_per_s) : nlohmann::json(nullptr);
  j["achieved_rps"] = s.assessment.rps;
  j["connections"] = s.connections;
  j["requests"] = s.load.requests;
  j["duration_s"] = s.load.duration_s;
  j["error_ratio"] = loadgen::error_ratio(s.load);
  j["latency_ms"] = percentiles_json(s.load.latency);
  j["service_time_ms"] = percentiles_json(s.load.service);
  j["late_sends"] = s.load.late_sends;
  j["dropped_sends"] = s.load.dropped_sends;
  j["warnings"] = s.assessment.warnings;
  if (search) {
    j["pass"] = s.judgement.pass;
    j["reason"] = s.judgement.reason;
  }
  if (s.diagnosis) j["diagnosis"] = s.diagnosis->summary;
  if (!s.diagnosis_error.empty()) j["diagnosis_error"] = s.diagnosis_error;
  return j;
}

std::string curve_and_knee_text(const loadgen::KneeRun& run, const KneeContext& c) {
  const auto& knee = *run.knee;
  const KneeStep* at_knee = run.at_knee();
  const KneeStep* above_knee = run.above_knee();
  std::string out =
      "\nThroughput/latency curve (by offered rate; # is p99, ':' marks the SLO limit)\n";
  const std::int64_t limit_us = std::max<std::int64_t>(c.slo_limit_us, 1);
  constexpr int kLimitColumn = 20;
  for (const KneeStep* s : run.curve()) {
    const double p99 = static_cast<double>(s->load.latency.percentile_us(99));
    const int bar = static_cast<int>(std::min(
        2.0 * kLimitColumn, std::round(kLimitColumn * p99 / static_cast<double>(limit_us))));
    std::string cells(std::size_t{2} * kLimitColumn, ' ');
    for (int i = 0; i < 2 * kLimitColumn; ++i) cells[i] = i < bar ? '#' : ' ';
    if (bar <= kLimitColumn) cells[kLimitColumn] = ':';
    out += fmt::format("  {:>10.4g}/s  served {:>10.1f}/s  p99 {:>9} ms  |{}|\n",
                       s->offered_rate_per_s, s->assessment.rps, percentile_cell(*s, 99), cells);
  }
  out += "\n";
  if (run.interrupted) out += "Interrupted: the result covers the steps that finished.\n";
  switch (knee.state()) {
    case loadgen::KneeSearch::State::kConverged:
    case loadgen::KneeSearch::State::kMaxSteps:
    case loadgen::KneeSearch::State::kSearching:
      if (knee.knee()) {
        out += fmt::format("KNEE: {:.4g} req/s meets {}", *knee.knee(), util::terminal_text(c.slo));
        if (above_knee) {
          out += fmt::format(" ({:.4g} req/s fails: {})", above_knee->offered_rate_per_s,
                             util::terminal_text(above_knee->judgement.reason));
        }
        out += fmt::format("; {} after {} steps\n",
                           knee.state() == loadgen::KneeSearch::State::kConverged
                               ? fmt::format("known within {:g}%", c.tolerance * 100)
                               : std::string("not converged"),
                           knee.steps());
      } else {
        out += "KNEE: not found: no step passed yet\n";
      }
      break;
    case loadgen::KneeSearch::State::kMaxRate:
      out += fmt::format(
          "KNEE: at or above {:.0f} req/s (--max-rate passed the SLO; raise it to search "
          "higher)\n",
          *knee.knee());
      break;
    case loadgen::KneeSearch::State::kNothingPassed:
      out += fmt::format(
          "KNEE: none: even {:g} req/s misses the SLO; the service is already past its "
          "knee at the lowest rate\n",
          *knee.first_failing());
      break;
  }
  if (above_knee && above_knee->diagnosis) {
    const auto& d = *above_knee->diagnosis;
    out += fmt::format("Saturated above the knee ({:.4g} req/s): {}\n",
                       above_knee->offered_rate_per_s, verdict_text(*above_knee));
    for (const auto& e : d.evidence) out += "  - " + util::terminal_text(e) + "\n";
    if (!d.first_fix.empty()) out += "  Fix first: " + util::terminal_text(d.first_fix) + "\n";
  }
  if (at_knee && at_knee->diagnosis) {
    out += fmt::format("At the knee ({:.4g} req/s) the target's verdict: {}\n",
                       at_knee->offered_rate_per_s, verdict_text(*at_knee));
  }
  // The steps that decide the result carry their warnings in full; the rest are counted.
  std::size_t other_warned = 0;
  for (const auto& s : run.steps) {
    if (&s != at_knee && &s != above_knee && !s.assessment.warnings.empty()) ++other_warned;
  }
  for (const KneeStep* s : {at_knee, above_knee}) {
    if (!s) continue;
    for (const auto& w : s->assessment.warnings) {
      out += fmt::format("warning at {:.4g} req/s: {}\n", s->offered_rate_per_s,
                         util::terminal_text(w));
    }
  }
  if (other_warned > 0) {
    out += fmt::format("warning: {} other step(s) have load warnings; --json lists them per step\n",
                       other_warned);
  }
  return out;
}

std::string usl_text(const loadgen::KneeRun& run, const KneeContext& c) {
  std::string out = "\n";
  if (!run.fit) return out + "USL fit: " + util::terminal_text(run.fit_error) + "\n";
  const auto& m = run.fit->model;
  out += fmt::format(
      "USL fit over {} levels: lambda {:.4g} req/s per unit of concurrency, sigma {:.4g} "
      "(contention), kappa {:.4g} (coherency), R^2 {:.4f}\n",
      run.fit->points, m.lambda, m.sigma, m.kappa, run.fit->r2);
  if (std::isfinite(m.n_star())) {
    out += fmt::format(
        "  peak at N* = {:.1f} concurrent requests: {:.0f} req/s "
        "(more concurrency lowers throughput)\n",
        m.n_star(), m.x_max());
  } else if (std::isfinite(m.x_max())) {
    out += fmt::format("  no retrograde region (kappa = 0): ceiling {:.0f} req/s\n", m.x_max());
  } else {
    out +=
        "  linear scaling over the measured range (sigma = kappa = 0): no ceiling "
        "in sight; sweep higher with --max-concurrency\n";
  }
  if (run.plan) {
    const auto& plan = *run.plan;
    out += fmt::format(
        "  for {:.0f} req/s: {} instance(s) at {:.0f} req/s each (about {:.1f} concurrent "
        "requests each), planning each at <= {:.0f}% of its USL peak\n",
        c.target_rate_per_s, plan.instances, plan.rate_per_instance, plan.concurrency_per_instance,
        c.max_utilization * 100);
    if (run.knee_instances) {
      out += fmt::format("  by the SLO knee ({:.4g} req/s per instance): {} instance(s)\n",
                         *run.knee->knee(), *run.knee_instances);
    }
    out +=
        "  assumes: a load balancer spreads load evenly, instances share nothing "
        "(no common database or lock), and each behaves like the one measured\n";
  }
  return out;
}

}  // namespace

loadgen::StepDiagnosis step_diagnosis(const model::Observation& observation,
                                      const analysis::Diagnosis& diagnosis) {
  loadgen::StepDiagnosis out;
  const auto& d = diagnosis;
  if (d.bottlenecks.empty() || d.verdict == analysis::Verdict::kNone) {
    out.verdict = std::string(analysis::verdict_name(analysis::Verdict::kNone));
  } else {
    const auto& b = d.bottlenecks.front();
    out.verdict = fmt::format("{} ({}) {}", analysis::verdict_name(b.resource),
                              analysis::kind_name(b.kind), analysis::share_text(b));
  }
  out.saturated = std::string(analysis::verdict_name(d.verdict));
  if (!d.bottlenecks.empty()) {
    out.evidence = d.bottlenecks.front().evidence;
    if (!d.bottlenecks.front().fixes.empty()) out.first_fix = d.bottlenecks.front().fixes.front();
  }
  // The diagnose JSON contract's verdict part (schema 1), without the per-thread detail.
  const nlohmann::json full = diagnosis_json(observation, diagnosis);
  out.summary = nlohmann::json::object();
  for (const char* key : {"verdict", "time_split", "bottlenecks", "findings", "headroom"}) {
    if (full.contains(key)) out.summary[key] = full[key];
  }
  return out;
}

std::string knee_search_header(const KneeContext& c) {
  const bool target = !c.target.empty();
  std::string out = fmt::format(
      "chokepoint knee {}: SLO {}, errors <= {:g}%, {:g} s steps after {:g} s warmup{}\n",
      url_text(c), util::terminal_text(c.slo), c.max_error_ratio * 100, c.step_s, c.warmup_s,
      target ? ", diagnosing " + util::terminal_text(c.target) : "");
  out += fmt::format("  {:>4}  {:>10}  {:>10}  {:>9}  {:>9}  {:>7}  {:>5}  {:<24}  {}\n", "step",
                     "offered/s", "served/s", "p50 ms", "p99 ms", "errors", "conns",
                     target ? "target verdict" : "", "result");
  return out;
}

std::string knee_step_line(const KneeStep& s, std::size_t number) {
  return fmt::format(
      "  {:>4}  {:>10.4g}  {:>10.1f}  {:>9}  {:>9}  {:>6.2f}%  {:>5}  {:<24}  {}{}\n", number,
      s.offered_rate_per_s, s.assessment.rps, percentile_cell(s, 50), percentile_cell(s, 99),
      loadgen::error_ratio(s.load) * 100, s.connections, verdict_text(s),
      s.judgement.pass ? "pass: " : "FAIL: ", util::terminal_text(s.judgement.reason));
}

std::string usl_sweep_header(const KneeContext& c) {
  return fmt::format(
      "\nUSL sweep: closed loop, {:g} s per concurrency level after {:g} s warmup\n"
      "  {:>11}  {:>10}  {:>9}  {:>9}  {}\n",
      c.step_s, c.warmup_s, "concurrency", "served/s", "p50 ms", "p99 ms",
      c.target.empty() ? "" : "target verdict");
}

std::string usl_step_line(const KneeStep& s) {
  return fmt::format("  {:>11}  {:>10.1f}  {:>9}  {:>9}  {}\n", s.connections, s.assessment.rps,
                     percentile_cell(s, 50), percentile_cell(s, 99), verdict_text(s));
}

std::string knee_summary_text(const loadgen::KneeRun& run, const KneeContext& c) {
  std::string out;
  if (run.knee) out += curve_and_knee_text(run, c);
  if (c.usl) out += usl_text(run, c);
  return out;
}

nlohmann::json knee_json(const loadgen::KneeRun& run, const KneeContext& c) {
  nlohmann::json out;
  out["urls"] = c.urls;
  out["step_s"] = c.step_s;
  out["warmup_s"] = c.warmup_s;
  if (!c.target.empty()) out["target"] = c.target;
  if (run.knee) {
    const auto& knee = *run.knee;
    out["slo"] = c.slo;
    out["slo_limit_ms"] = to_ms(c.slo_limit_us);
    out["max_error_ratio"] = c.max_error_ratio;
    out["steps"] = nlohmann::json::array();
    for (const auto& s : run.steps) out["steps"].push_back(step_json(s, true));
    out["curve"] = nlohmann::json::array();
    for (const KneeStep* s : run.curve()) {
      out["curve"].push_back({{"offered_rate", s->offered_rate_per_s},
                              {"achieved_rps", s->assessment.rps},
                              {"p50_ms", to_ms(s->load.latency.percentile_us(50))},
                              {"p99_ms", to_ms(s->load.latency.percentile_us(99))},
                              {"pass", s->judgement.pass}});
    }
    nlohmann::json k;
    k["state"] = run.interrupted ? "interrupted" : loadgen::state_name(knee.state());
    k["rate"] = knee.knee() ? nlohmann::json(*knee.knee()) : nlohmann::json(nullptr);
    k["first_failing_rate"] =
        knee.first_failing() ? nlohmann::json(*knee.first_failing()) : nlohmann::json(nullptr);
    k["steps"] = knee.steps();
    const KneeStep* at_knee = run.at_knee();
    const KneeStep* above_knee = run.above_knee();
    if (at_knee && at_knee->diagnosis) k["diagnosis_at_knee"] = at_knee->diagnosis->summary;
    if (above_knee && above_knee->diagnosis) {
      k["diagnosis_above_knee"] = above_knee->diagnosis->summary;
      k["saturated"] = above_knee->diagnosis->saturated;
    }
    out["knee"] = k;
  }
  if (c.usl) {
    nlohmann::json u;
    u["points"] = nlohmann::json::array();
    for (const auto& s : run.sweep) {
      nlohmann::json p = {{"concurrency", s.connections},
                          {"throughput", s.assessment.rps},
                          {"p99_ms", to_ms(s.load.latency.percentile_us(99))}};
      if (s.diagnosis) p["diagnosis"] = s.diagnosis->summary;
      u["points"].push_back(p);
    }
    if (run.fit) {
      add_usl_fit_json(u, *run.fit);
      if (c.target_rate_per_s > 0) {
        if (run.plan) {
          u["instances"] = {{"target_rate", c.target_rate_per_s},
                            {"max_utilization", c.max_utilization},
                            {"instances", run.plan->instances},
                            {"rate_per_instance", run.plan->rate_per_instance},
                            {"concurrency_per_instance", run.plan->concurrency_per_instance}};
        } else {
          u["instances_error"] = run.plan_error;
        }
        if (run.knee_instances) u["instances_at_slo_knee"] = *run.knee_instances;
      }
    } else {
      u["error"] = run.fit_error;
    }
    out["usl"] = u;
  }
  return out;
}

void add_usl_fit_json(nlohmann::json& out, const loadgen::UslFit& fit) {
  const auto& m = fit.model;
  out["lambda"] = m.lambda;
  out["sigma"] = m.sigma;
  out["kappa"] = m.kappa;
  out["r2"] = fit.r2;
  out["n_star"] = std::isfinite(m.n_star()) ? nlohmann::json(m.n_star()) : nlohmann::json(nullptr);
  out["x_max"] = std::isfinite(m.x_max()) ? nlohmann::json(m.x_max()) : nlohmann::json(nullptr);
}

std::string usl_csv(const loadgen::KneeRun& run) {
  std::string csv = "concurrency,throughput\n";
  for (const auto& s : run.sweep)
    csv += fmt::format("{},{:.3f}\n", s.connections, s.assessment.rps);
  return csv;
}

}  // namespace chokepoint::render
