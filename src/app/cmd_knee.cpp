// chokepoint knee URL --slo 'p99<50ms': the highest rate the service sustains within its SLO,
// the throughput/latency curve, what saturates at the knee (with a target), and a Universal
// Scalability Law projection from a closed-loop concurrency sweep (--usl, --target-rate).
// Over 600 lines until run_knee moves to loadgen/ as a knee runner and the report writers to
// render/ (issue 17, deferred this round).
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "app/background_load.h"
#include "app/cli_values.h"
#include "app/load_report.h"
#include "app/subcommand.h"
#include "app/target_session.h"
#include "loadgen/knee.h"
#include "loadgen/usl.h"
#include "render/diagnosis_report.h"
#include "render/json_text.h"
#include "util/atomic_file.h"
#include "util/clock.h"
#include "util/escape.h"
#include "util/fatal.h"
#include "util/stop_signal.h"

namespace chokepoint::app {
namespace {

// Set by SIGINT and SIGTERM once the run starts (util/stop_signal.h).
std::atomic<bool>& g_stop = util::stop_flag();

struct KneeArgs {
  RequestArgs request;
  TargetArgs target;
  std::string slo;
  std::string max_errors = "0.1%";
  double start_rate = 100;
  double max_rate = 1'000'000;
  std::string tolerance = "2%";
  int max_steps = 30;
  std::string step = "5s";
  std::string warmup = "1s";
  int connections = 16;
  int max_connections = 1000;
  int threads = 1;
  std::string interval = "100ms";
  bool usl = false;
  int max_concurrency = 32;
  double target_rate = 0;
  double max_utilization = 0.8;
  std::string usl_csv;
  bool json = false;
};

// What one step saw: the load and, with a target, the diagnosis of the same window.
struct Step {
  double offered = 0;  // 0: closed loop (USL sweep)
  int connections = 0;
  loadgen::LoadResult load;
  loadgen::LoadAssessment assessment;
  loadgen::StepJudgement judgement;
  std::optional<DiagnosisWindow> window;
  std::string diagnosis_error;
};

// Runs one step of load; with a target session, diagnoses the measured window at the same time.
Step run_step(loadgen::LoadOptions o, const TargetSession* session, std::int64_t interval_ns) {
  Step step;
  step.offered = o.rate_per_s;
  step.connections = o.connections;
  util::Result<loadgen::LoadResult> result = util::Error{"the step did not run", "", 0};
  if (session) {
    const std::int64_t window_ns = o.duration_ns;
    o.duration_ns += 30 * util::kNsPerSec;  // the window's end stops the load; this is a backstop
    BackgroundLoad load(o);
    load.wait_warmup(g_stop);
    auto window = session->diagnose(window_ns, interval_ns, &g_stop);
    if (window) {
      step.window = std::move(*window);
    } else {
      step.diagnosis_error = window.error().message;
    }
    result = load.finish();
    o.duration_ns = window_ns;
  } else {
    o.stop = &g_stop;
    result = loadgen::run_load(o);
  }
  if (!result) throw util::FatalError(result.error());
  step.load = std::move(*result);
  step.assessment = loadgen::assess(step.load, o);
  return step;
}

loadgen::StepMeasurement measurement(const Step& s, const loadgen::Slo& slo) {
  loadgen::StepMeasurement m;
  m.offered_rate_per_s = s.offered;
  m.achieved_rate_per_s = s.assessment.rps;
  m.error_ratio = error_ratio(s.load);
  m.requests = s.load.requests;
  for (const auto& t : slo.terms)
    m.percentile_us.push_back(s.load.latency.percentile_us(t.percentile));
  // Whole seconds only: the last bucket holds the end-of-step grace, not a full second.
  const auto& timeline = s.load.timeline;
  const std::size_t whole = timeline.size() > 1 ? timeline.size() - 1 : timeline.size();
  for (std::size_t i = 0; i < whole; ++i) {
    const auto& b = timeline[i];
    if (b.latency_count > 0) m.second_mean_us.push_back(b.latency_sum_us / b.latency_count);
  }
  return m;
}

std::string verdict_text(const Step& s) {
  if (!s.window) return s.diagnosis_error.empty() ? "" : "(no diagnosis)";
  const auto& d = s.window->diagnosis;
  if (d.bottlenecks.empty() || d.verdict == analysis::Verdict::kNone) {
    return std::string(analysis::verdict_name(analysis::Verdict::kNone));
  }
  const auto& b = d.bottlenecks.front();
  return fmt::format("{} ({}) {:.0f}%", analysis::verdict_name(b.resource),
                     analysis::kind_name(b.kind), b.share * 100);
}

// The diagnose JSON contract's verdict part (schema 1), without the per-thread detail.
nlohmann::json diagnosis_summary_json(const DiagnosisWindow& w) {
  const nlohmann::json full = render::diagnosis_json(w.observation, w.diagnosis);
  nlohmann::json j;
  for (const char* key : {"verdict", "time_split", "bottlenecks", "findings", "headroom"}) {
    if (full.contains(key)) j[key] = full[key];
  }
  return j;
}

nlohmann::json step_json(const Step& s, const loadgen::Slo* slo) {
  nlohmann::json j;
  j["offered_rate"] = s.offered > 0 ? nlohmann::json(s.offered) : nlohmann::json(nullptr);
  j["achieved_rps"] = s.assessment.rps;
  j["connections"] = s.connections;
  j["requests"] = s.load.requests;
  j["duration_s"] = s.load.duration_s;
  j["error_ratio"] = error_ratio(s.load);
  j["latency_ms"] = percentiles_json(s.load.latency);
  j["service_time_ms"] = percentiles_json(s.load.service);
  j["late_sends"] = s.load.late_sends;
  j["dropped_sends"] = s.load.dropped_sends;
  j["warnings"] = s.assessment.warnings;
  if (slo) {
    j["pass"] = s.judgement.pass;
    j["reason"] = s.judgement.reason;
  }
  if (s.window) j["diagnosis"] = diagnosis_summary_json(*s.window);
  if (!s.diagnosis_error.empty()) j["diagnosis_error"] = s.diagnosis_error;
  return j;
}

std::string percentile_cell(const Step& s, double p) {
  if (s.load.latency.count() == 0) return "-";  // no response: no latency (not 0.000)
  return fmt::format("{:.3f}", to_ms(s.load.latency.percentile_us(p)));
}

int run_knee(KneeArgs a) {
  const bool search = !a.slo.empty();
  if (a.target_rate > 0) a.usl = true;
  if (!search && !a.usl) {
    util::usage_error("give --slo (the knee search), --usl (the capacity sweep), or both",
                      "e.g. chokepoint knee http://127.0.0.1:8080/ --slo 'p99<50ms'");
  }
  std::optional<loadgen::Slo> slo;
  if (search) {
    auto parsed = loadgen::parse_slo(a.slo);
    if (!parsed) util::usage_error(parsed.error().message, parsed.error().hint);
    slo = std::move(*parsed);
  }
  auto max_errors = loadgen::parse_ratio(a.max_errors);
  if (!max_errors)
    util::usage_error("--max-errors: " + max_errors.error().message, max_errors.error().hint);
  auto tolerance = loadgen::parse_ratio(a.tolerance);
  if (!tolerance || *tolerance < 0.001 || *tolerance > 0.5) {
    util::usage_error(fmt::format("--tolerance '{}' is not between 0.1% and 50%", a.tolerance),
                      "the default 2% stops when the knee is known within 2%");
  }
  if (!(a.start_rate > 0) || !(a.max_rate >= a.start_rate)) {
    util::usage_error("--start-rate must be above 0 and at most --max-rate",
                      "e.g. --start-rate 100 --max-rate 100000");
  }
  if (a.max_connections < a.connections) {
    util::usage_error("--max-connections must be at least --connections",
                      "raise --max-connections or lower --connections");
  }
  if (!(a.max_utilization > 0 && a.max_utilization <= 1)) {
    util::usage_error("--max-utilization must be in (0, 1]",
                      "0.8 plans each instance at 80% of its peak throughput");
  }
  const std::int64_t step_ns = parse_duration_ns(a.step, "--step");
  const std::int64_t warmup_ns = parse_duration_ns(a.warmup, "--warmup");
  const std::int64_t interval_ns = parse_duration_ns(a.interval, "--interval");
  if (step_ns < 100'000'000) util::usage_error("--step must be at least 100ms", "e.g. --step 5s");
  if (interval_ns < 1'000'000 || interval_ns > step_ns) {
    util::usage_error("--interval must be at least 1ms and at most --step",
                      "e.g. --interval 100ms");
  }

  loadgen::LoadOptions base;
  apply_request_args(a.request, base);
  base.threads = a.threads;
  base.connections = a.max_connections;  // the most any step opens: checked against the fd limit
  base.warmup_ns = warmup_ns;
  base.duration_ns = step_ns;
  base.rate_per_s = a.start_rate;
  preflight(base);
  if (a.usl) {
    loadgen::LoadOptions sweep = base;
    sweep.connections = std::max(a.max_concurrency, 1);
    preflight(sweep);
  }

  const bool has_target = a.target.pid || !a.target.name.empty() || !a.target.cgroup.empty() ||
                          !a.target.command.empty();
  std::unique_ptr<TargetSession> session;
  if (has_target) session = TargetSession::open(a.target);
  util::stop_on_signals();

  // Text for the terminal: the URL, the SLO and the target as given, escaped once here.
  const std::string url_text = a.request.urls.size() == 1
                                   ? util::terminal_text(a.request.urls[0])
                                   : fmt::format("{} URLs", a.request.urls.size());
  nlohmann::json out;
  out["urls"] = a.request.urls;
  out["step_s"] = step_ns / 1e9;
  out["warmup_s"] = warmup_ns / 1e9;
  if (session) out["target"] = session->describe();

  // 1. The knee search.
  std::vector<Step> steps;
  std::optional<loadgen::KneeSearch> knee;
  if (search) {
    // Little's law: at rate R with latency at the SLO limit, R x limit requests are in flight.
    // Each step opens at least that many connections (up to --max-connections), so the
    // generator's own connection pool never adds the queueing the SLO is judged on.
    std::int64_t slowest_limit_us = 0;
    for (const auto& t : slo->terms) slowest_limit_us = std::max(slowest_limit_us, t.limit_us);
    loadgen::KneeOptions ko;
    ko.start_rate_per_s = a.start_rate;
    ko.max_rate_per_s = a.max_rate;
    ko.tolerance = *tolerance;
    ko.max_steps = a.max_steps;
    knee.emplace(ko);
    out["slo"] = a.slo;
    out["max_error_ratio"] = *max_errors;
    if (!a.json) {
      std::cout << fmt::format(
          "chokepoint knee {}: SLO {}, errors <= {:g}%, {:g} s steps after {:g} s warmup{}\n",
          url_text, util::terminal_text(a.slo), *max_errors * 100, step_ns / 1e9, warmup_ns / 1e9,
          session ? ", diagnosing " + util::terminal_text(session->describe()) : "");
      std::cout << fmt::format("  {:>4}  {:>10}  {:>10}  {:>9}  {:>9}  {:>7}  {:>5}  {:<24}  {}\n",
                               "step", "offered/s", "served/s", "p50 ms", "p99 ms", "errors",
                               "conns", session ? "target verdict" : "", "result");
      std::cout.flush();
    }
    while (auto rate = knee->next_rate()) {
      if (g_stop.load()) break;
      loadgen::LoadOptions o = base;
      o.rate_per_s = *rate;
      const double in_flight = *rate * static_cast<double>(slowest_limit_us) / 1e6;
      o.connections =
          static_cast<int>(std::clamp(std::ceil(in_flight), static_cast<double>(a.connections),
                                      static_cast<double>(a.max_connections)));
      o.threads = std::min(o.threads, o.connections);
      Step s = run_step(o, session.get(), interval_ns);
      if (g_stop.load()) break;  // an interrupted step measured nothing the search can use
      s.judgement = loadgen::judge_step(*slo, *max_errors, measurement(s, *slo));
      if (s.judgement.pass && s.assessment.too_few_connections) {
        s.assessment.warnings.push_back("raise --max-connections: this step needed more");
      }
      knee->record(*rate, s.judgement.pass);
      if (!a.json) {
        std::cout << fmt::format(
            "  {:>4}  {:>10.4g}  {:>10.1f}  {:>9}  {:>9}  {:>6.2f}%  {:>5}  {:<24}  {}{}\n",
            steps.size() + 1, s.offered, s.assessment.rps, percentile_cell(s, 50),
            percentile_cell(s, 99), error_ratio(s.load) * 100, s.connections, verdict_text(s),
            s.judgement.pass ? "pass: " : "FAIL: ", util::terminal_text(s.judgement.reason));
        std::cout.flush();
      }
      steps.push_back(std::move(s));
    }
  }

  // 2. The USL sweep.
  std::vector<Step> sweep;
  std::optional<loadgen::UslFit> fit;
  std::string fit_error;
  if (a.usl && !g_stop.load()) {
    if (!a.json) {
      std::cout << fmt::format(
          "\nUSL sweep: closed loop, {:g} s per concurrency level after {:g} s warmup\n"
          "  {:>11}  {:>10}  {:>9}  {:>9}  {}\n",
          step_ns / 1e9, warmup_ns / 1e9, "concurrency", "served/s", "p50 ms", "p99 ms",
          session ? "target verdict" : "");
      std::cout.flush();
    }
    for (int n : loadgen::usl_concurrency_levels(a.max_concurrency)) {
      if (g_stop.load()) break;
      loadgen::LoadOptions o = base;
      o.rate_per_s = 0;
      o.connections = n;
      o.threads = std::min(o.threads, n);
      Step s = run_step(o, session.get(), interval_ns);
      if (g_stop.load()) break;
      if (!a.json) {
        std::cout << fmt::format("  {:>11}  {:>10.1f}  {:>9}  {:>9}  {}\n", n, s.assessment.rps,
                                 percentile_cell(s, 50), percentile_cell(s, 99), verdict_text(s));
        std::cout.flush();
      }
      sweep.push_back(std::move(s));
    }
    std::vector<loadgen::UslPoint> points;
    std::string csv = "concurrency,throughput\n";
    for (const auto& s : sweep) {
      points.push_back({static_cast<double>(s.connections), s.assessment.rps});
      csv += fmt::format("{},{:.3f}\n", s.connections, s.assessment.rps);
    }
    if (!a.usl_csv.empty()) {
      if (auto w = util::write_file_atomically(a.usl_csv, csv); !w) {
        util::print_error(w.error());
      }
    }
    auto f = loadgen::fit_usl(points);
    if (f) {
      fit = *f;
    } else {
      fit_error = f.error().message;
    }
  }
  if (session) session->end_command();

  // 3. The report.
  std::vector<const Step*> curve;
  curve.reserve(steps.size());
  for (const auto& s : steps) curve.push_back(&s);
  std::sort(curve.begin(), curve.end(),
            [](const Step* x, const Step* y) { return x->offered < y->offered; });
  const Step* at_knee = nullptr;
  const Step* above_knee = nullptr;
  if (knee) {
    for (const Step* s : curve) {
      if (knee->knee() && s->offered == *knee->knee() && s->judgement.pass) at_knee = s;
      if (knee->first_failing() && s->offered == *knee->first_failing() && !s->judgement.pass)
        above_knee = s;
    }
  }

  if (knee) {
    out["steps"] = nlohmann::json::array();
    for (const auto& s : steps) out["steps"].push_back(step_json(s, &*slo));
    out["curve"] = nlohmann::json::array();
    for (const Step* s : curve) {
      out["curve"].push_back({{"offered_rate", s->offered},
                              {"achieved_rps", s->assessment.rps},
                              {"p50_ms", to_ms(s->load.latency.percentile_us(50))},
                              {"p99_ms", to_ms(s->load.latency.percentile_us(99))},
                              {"pass", s->judgement.pass}});
    }
    nlohmann::json k;
    k["state"] = g_stop.load() ? "interrupted" : loadgen::state_name(knee->state());
    k["rate"] = knee->knee() ? nlohmann::json(*knee->knee()) : nlohmann::json(nullptr);
    k["first_failing_rate"] =
        knee->first_failing() ? nlohmann::json(*knee->first_failing()) : nlohmann::json(nullptr);
    k["steps"] = knee->steps();
    if (at_knee && at_knee->window)
      k["diagnosis_at_knee"] = diagnosis_summary_json(*at_knee->window);
    if (above_knee && above_knee->window) {
      k["diagnosis_above_knee"] = diagnosis_summary_json(*above_knee->window);
      k["saturated"] = analysis::verdict_name(above_knee->window->diagnosis.verdict);
    }
    out["knee"] = k;
  }
  std::optional<loadgen::InstancePlan> plan;
  std::optional<long> knee_instances;
  if (a.usl) {
    nlohmann::json u;
    u["points"] = nlohmann::json::array();
    for (const auto& s : sweep) {
      nlohmann::json p = {{"concurrency", s.connections},
                          {"throughput", s.assessment.rps},
                          {"p99_ms", to_ms(s.load.latency.percentile_us(99))}};
      if (s.window) p["diagnosis"] = diagnosis_summary_json(*s.window);
      u["points"].push_back(p);
    }
    if (fit) {
      const auto& m = fit->model;
      u["lambda"] = m.lambda;
      u["sigma"] = m.sigma;
      u["kappa"] = m.kappa;
      u["r2"] = fit->r2;
      u["n_star"] =
          std::isfinite(m.n_star()) ? nlohmann::json(m.n_star()) : nlohmann::json(nullptr);
      u["x_max"] = std::isfinite(m.x_max()) ? nlohmann::json(m.x_max()) : nlohmann::json(nullptr);
      if (a.target_rate > 0) {
        auto p = loadgen::instances_needed(a.target_rate, m, a.max_utilization);
        if (p) {
          plan = *p;
          u["instances"] = {{"target_rate", a.target_rate},
                            {"max_utilization", a.max_utilization},
                            {"instances", p->instances},
                            {"rate_per_instance", p->rate_per_instance},
                            {"concurrency_per_instance", p->concurrency_per_instance}};
        } else {
          u["instances_error"] = p.error().message;
        }
        if (knee && knee->knee() && *knee->knee() > 0) {
          knee_instances = static_cast<long>(std::ceil(a.target_rate / *knee->knee()));
          u["instances_at_slo_knee"] = *knee_instances;
        }
      }
    } else {
      u["error"] = fit_error;
    }
    out["usl"] = u;
  }

  if (a.json) {
    std::cout << render::json_text(out);
  } else {
    if (knee) {
      std::cout << "\nThroughput/latency curve (by offered rate; # is p99, ':' marks the SLO "
                   "limit)\n";
      std::int64_t limit_us = 0;
      for (const auto& t : slo->terms) limit_us = std::max(limit_us, t.limit_us);
      constexpr int kLimitColumn = 20;
      for (const Step* s : curve) {
        const double p99 = static_cast<double>(s->load.latency.percentile_us(99));
        const int bar = static_cast<int>(std::min(
            2.0 * kLimitColumn, std::round(kLimitColumn * p99 / static_cast<double>(limit_us))));
        std::string cells(std::size_t{2} * kLimitColumn, ' ');
        for (int i = 0; i < 2 * kLimitColumn; ++i) cells[i] = i < bar ? '#' : ' ';
        if (bar <= kLimitColumn) cells[kLimitColumn] = ':';
        std::cout << fmt::format("  {:>10.4g}/s  served {:>10.1f}/s  p99 {:>9} ms  |{}|\n",
                                 s->offered, s->assessment.rps, percentile_cell(*s, 99), cells);
      }
      std::cout << "\n";
      if (g_stop.load()) std::cout << "Interrupted: the result covers the steps that finished.\n";
      switch (knee->state()) {
        case loadgen::KneeSearch::State::kConverged:
        case loadgen::KneeSearch::State::kMaxSteps:
        case loadgen::KneeSearch::State::kSearching:
          if (knee->knee()) {
            std::cout << fmt::format("KNEE: {:.4g} req/s meets {}", *knee->knee(),
                                     util::terminal_text(a.slo));
            if (above_knee) {
              std::cout << fmt::format(" ({:.4g} req/s fails: {})", above_knee->offered,
                                       util::terminal_text(above_knee->judgement.reason));
            }
            std::cout << fmt::format("; {} after {} steps\n",
                                     knee->state() == loadgen::KneeSearch::State::kConverged
                                         ? fmt::format("known within {:g}%", *tolerance * 100)
                                         : std::string("not converged"),
                                     knee->steps());
          } else {
            std::cout << "KNEE: not found: no step passed yet\n";
          }
          break;
        case loadgen::KneeSearch::State::kMaxRate:
          std::cout << fmt::format(
              "KNEE: at or above {:.0f} req/s (--max-rate passed the SLO; raise it to search "
              "higher)\n",
              *knee->knee());
          break;
        case loadgen::KneeSearch::State::kNothingPassed:
          std::cout << fmt::format(
              "KNEE: none: even {:g} req/s misses the SLO; the service is already past its "
              "knee at the lowest rate\n",
              *knee->first_failing());
          break;
      }
      if (above_knee && above_knee->window) {
        const auto& d = above_knee->window->diagnosis;
        std::cout << fmt::format("Saturated above the knee ({:.4g} req/s): {}\n",
                                 above_knee->offered, verdict_text(*above_knee));
        if (!d.bottlenecks.empty()) {
          for (const auto& e : d.bottlenecks.front().evidence)
            std::cout << "  - " << util::terminal_text(e) << "\n";
          if (!d.bottlenecks.front().fixes.empty()) {
            std::cout << "  Fix first: " << util::terminal_text(d.bottlenecks.front().fixes.front())
                      << "\n";
          }
        }
      }
      if (at_knee && at_knee->window) {
        std::cout << fmt::format("At the knee ({:.4g} req/s) the target's verdict: {}\n",
                                 at_knee->offered, verdict_text(*at_knee));
      }
      // The steps that decide the result carry their warnings in full; the rest are counted.
      std::size_t other_warned = 0;
      for (const auto& s : steps) {
        if (&s != at_knee && &s != above_knee && !s.assessment.warnings.empty()) ++other_warned;
      }
      for (const Step* s : {at_knee, above_knee}) {
        if (!s) continue;
        for (const auto& w : s->assessment.warnings) {
          std::cout << fmt::format("warning at {:.4g} req/s: {}\n", s->offered,
                                   util::terminal_text(w));
        }
      }
      if (other_warned > 0) {
        std::cout << fmt::format(
            "warning: {} other step(s) have load warnings; --json lists them per step\n",
            other_warned);
      }
    }
    if (a.usl) {
      std::cout << "\n";
      if (fit) {
        const auto& m = fit->model;
        std::cout << fmt::format(
            "USL fit over {} levels: lambda {:.4g} req/s per unit of concurrency, sigma {:.4g} "
            "(contention), kappa {:.4g} (coherency), R^2 {:.4f}\n",
            fit->points, m.lambda, m.sigma, m.kappa, fit->r2);
        if (std::isfinite(m.n_star())) {
          std::cout << fmt::format(
              "  peak at N* = {:.1f} concurrent requests: {:.0f} req/s "
              "(more concurrency lowers throughput)\n",
              m.n_star(), m.x_max());
        } else if (std::isfinite(m.x_max())) {
          std::cout << fmt::format("  no retrograde region (kappa = 0): ceiling {:.0f} req/s\n",
                                   m.x_max());
        } else {
          std::cout << "  linear scaling over the measured range (sigma = kappa = 0): no ceiling "
                       "in sight; sweep higher with --max-concurrency\n";
        }
        if (plan) {
          std::cout << fmt::format(
              "  for {:.0f} req/s: {} instance(s) at {:.0f} req/s each (about {:.1f} concurrent "
              "requests each), planning each at <= {:.0f}% of its USL peak\n",
              a.target_rate, plan->instances, plan->rate_per_instance,
              plan->concurrency_per_instance, a.max_utilization * 100);
          if (knee_instances) {
            std::cout << fmt::format(
                "  by the SLO knee ({:.4g} req/s per instance): {} instance(s)\n", *knee->knee(),
                *knee_instances);
          }
          std::cout << "  assumes: a load balancer spreads load evenly, instances share nothing "
                       "(no common database or lock), and each behaves like the one measured\n";
        }
      } else {
        std::cout << "USL fit: " << util::terminal_text(fit_error) << "\n";
      }
    }
  }
  std::cout.flush();
  if (g_stop.load()) return util::kExitRuntime;
  bool any_response = false;
  for (const auto& s : steps) any_response |= responses(s.load) > 0;
  for (const auto& s : sweep) any_response |= responses(s.load) > 0;
  if (!any_response) {
    // The first step's failure says what went wrong (every step failed the same way or worse).
    const Step* first = !steps.empty() ? &steps.front() : !sweep.empty() ? &sweep.front() : nullptr;
    if (!first) {
      throw util::FatalError(util::Error{"no request got a response",
                                         "check that the server is up and listening there", 0});
    }
    throw util::FatalError(
        util::Error{fmt::format("no request got a response ({})", first->load.first_error),
                    loadgen::failure_hint(first->load, base)});
  }
  return util::kExitOk;
}

}  // namespace

Subcommand make_knee_command(CLI::App& root) {
  auto args = std::make_shared<KneeArgs>();
  CLI::App* cli = root.add_subcommand(
      "knee",
      "Find the highest request rate that meets an SLO (double, then bisect), what saturates "
      "there, and project capacity with the Universal Scalability Law");
  // The URLs and a target command are both positional. Only arguments that look like URLs are
  // URLs, so `knee URL --slo .. -- ./server --port 8080` gives the rest to the command.
  CLI::Option* url = add_request_options(cli, args->request);
  url->check(CLI::Validator(
      [](std::string& text) {
        return text.find("://") == std::string::npos ? std::string("not a URL") : std::string();
      },
      "URL"));
  cli->validate_positionals();
  cli->add_option("--slo", args->slo, "latency objective, e.g. 'p99<50ms' or 'p50<5ms,p99<50ms'");
  cli->add_option("--max-errors", args->max_errors, "error bound per step, e.g. 0.1% or 0")
      ->capture_default_str();
  cli->add_option("--start-rate", args->start_rate, "first rate tried, req/s")
      ->capture_default_str();
  cli->add_option("--max-rate", args->max_rate, "highest rate tried, req/s")->capture_default_str();
  cli->add_option("--tolerance", args->tolerance, "bisect until the knee is known within this")
      ->capture_default_str();
  cli->add_option("--max-steps", args->max_steps, "give up after this many steps")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cli->add_option("--step", args->step, "measured time per step")->capture_default_str();
  cli->add_option("--warmup", args->warmup, "load before each step is measured")
      ->capture_default_str();
  cli->add_option("-c,--connections", args->connections,
                  "fewest connections per step (more when rate x SLO limit needs them)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  cli->add_option("--max-connections", args->max_connections, "most connections per step")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  cli->add_option("-t,--threads", args->threads, "generator threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  add_target_options(cli, args->target);
  cli->add_option("-i,--interval", args->interval, "with a target: thread sampling interval")
      ->capture_default_str();
  cli->add_flag("--usl", args->usl,
                "also sweep closed-loop concurrency 1, 2, 4, ... and fit the USL");
  cli->add_option("--max-concurrency", args->max_concurrency, "the USL sweep's last level")
      ->capture_default_str()
      ->check(CLI::Range(3, 100'000));
  cli->add_option("--target-rate", args->target_rate,
                  "req/s the whole service must carry: how many instances it needs (implies --usl)")
      ->check(CLI::PositiveNumber);
  cli->add_option("--max-utilization", args->max_utilization,
                  "plan each instance at most at this share of its USL peak")
      ->capture_default_str();
  cli->add_option("--usl-csv", args->usl_csv,
                  "write the sweep as concurrency,throughput (for chokepoint usl)");
  cli->add_flag("--json", args->json, "print the report as JSON");
  cli->footer(
      "Examples:\n"
      "  chokepoint knee http://127.0.0.1:8080/ --slo 'p99<50ms'\n"
      "  chokepoint knee http://127.0.0.1:8080/ --slo 'p99<20ms' --pid 1234\n"
      "  chokepoint knee http://127.0.0.1:8080/ --usl --target-rate 50000\n"
      "See docs/knee.md.");
  return {cli, [args] { return run_knee(*args); }};
}

}  // namespace chokepoint::app
