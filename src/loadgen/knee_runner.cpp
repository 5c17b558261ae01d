#include "loadgen/knee_runner.h"

#include <algorithm>
#include <cmath>

namespace chokepoint::loadgen {
namespace {

KneeStep run_one(const LoadOptions& o, const StepRunner& run_step) {
  StepRun r = run_step(o);
  KneeStep s;
  s.offered_rate_per_s = o.rate_per_s;
  s.connections = o.connections;
  s.assessment = assess(r.load, o);
  s.load = std::move(r.load);
  s.diagnosis = std::move(r.diagnosis);
  s.diagnosis_error = std::move(r.diagnosis_error);
  return s;
}

}  // namespace

StepMeasurement measurement(const KneeStep& step, const Slo& slo) {
  StepMeasurement m;
  m.offered_rate_per_s = step.offered_rate_per_s;
  m.achieved_rate_per_s = step.assessment.rps;
  m.error_ratio = error_ratio(step.load);
  m.requests = step.load.requests;
  for (const auto& t : slo.terms)
    m.percentile_us.push_back(step.load.latency.percentile_us(t.percentile));
  // Whole seconds only: the last bucket holds the end-of-step grace, not a full second.
  const auto& timeline = step.load.timeline;
  const std::size_t whole = timeline.size() > 1 ? timeline.size() - 1 : timeline.size();
  for (std::size_t i = 0; i < whole; ++i) {
    const auto& b = timeline[i];
    if (b.latency_count > 0) m.second_mean_us.push_back(b.latency_sum_us / b.latency_count);
  }
  return m;
}

KneeRun run_knee(const KneeRunOptions& options, const StepRunner& run_step,
                 const std::atomic<bool>& stop, const KneeObserver& observer) {
  KneeRun run;
  // 1. The knee search.
  if (options.slo) {
    // Little's law: at rate R with latency at the SLO limit, R x limit requests are in flight.
    // Each step opens at least that many connections (up to max_connections), so the
    // generator's own connection pool never adds the queueing the SLO is judged on.
    std::int64_t slowest_limit_us = 0;
    for (const auto& t : options.slo->terms)
      slowest_limit_us = std::max(slowest_limit_us, t.limit_us);
    run.knee.emplace(options.search);
    while (auto rate = run.knee->next_rate()) {
      if (stop.load()) break;
      LoadOptions o = options.base;
      o.rate_per_s = *rate;
      const double in_flight = *rate * static_cast<double>(slowest_limit_us) / 1e6;
      o.connections = static_cast<int>(std::clamp(std::ceil(in_flight),
                                                  static_cast<double>(options.min_connections),
                                                  static_cast<double>(options.max_connections)));
      o.threads = std::min(o.threads, o.connections);
      KneeStep s = run_one(o, run_step);
      if (stop.load()) break;  // an interrupted step measured nothing the search can use
      s.judgement = judge_step(*options.slo, options.max_error_ratio, measurement(s, *options.slo));
      if (s.judgement.pass && s.assessment.too_few_connections) {
        s.assessment.warnings.push_back("raise --max-connections: this step needed more");
      }
      run.knee->record(*rate, s.judgement.pass);
      if (observer.search_step) observer.search_step(s);
      run.steps.push_back(std::move(s));
    }
  }

  // 2. The USL sweep.
  if (options.usl && !stop.load()) {
    if (observer.sweep_start) observer.sweep_start();
    for (int n : usl_concurrency_levels(options.max_concurrency)) {
      if (stop.load()) break;
      LoadOptions o = options.base;
      o.rate_per_s = 0;
      o.connections = n;
      o.threads = std::min(o.threads, n);
      KneeStep s = run_one(o, run_step);
      if (stop.load()) break;
      if (observer.sweep_step) observer.sweep_step(s);
      run.sweep.push_back(std::move(s));
    }
    std::vector<UslPoint> points;
    for (const auto& s : run.sweep)
      points.push_back({static_cast<double>(s.connections), s.assessment.rps});
    auto f = fit_usl(points);
    if (f) {
      run.fit = *f;
    } else {
      run.fit_error = f.error().message;
    }
    if (run.fit && options.target_rate_per_s > 0) {
      auto p = instances_needed(options.target_rate_per_s, run.fit->model, options.max_utilization);
      if (p) {
        run.plan = *p;
      } else {
        run.plan_error = p.error().message;
      }
      if (run.knee && run.knee->knee() && *run.knee->knee() > 0) {
        run.knee_instances =
            static_cast<long>(std::ceil(options.target_rate_per_s / *run.knee->knee()));
      }
    }
  }
  run.interrupted = stop.load();
  return run;
}

std::vector<const KneeStep*> KneeRun::curve() const {
  std::vector<const KneeStep*> out;
  out.reserve(steps.size());
  for (const auto& s : steps) out.push_back(&s);
  std::sort(out.begin(), out.end(), [](const KneeStep* x, const KneeStep* y) {
    return x->offered_rate_per_s < y->offered_rate_per_s;
  });
  return out;
}

const KneeStep* KneeRun::at_knee() const {
  if (!knee || !knee->knee()) return nullptr;
  const KneeStep* found = nullptr;
  for (const KneeStep* s : curve()) {
    if (s->offered_rate_per_s == *knee->knee() && s->judgement.pass) found = s;
  }
  return found;
}

const KneeStep* KneeRun::above_knee() const {
  if (!knee || !knee->first_failing()) return nullptr;
  const KneeStep* found = nullptr;
  for (const KneeStep* s : curve()) {
    if (s->offered_rate_per_s == *knee->first_failing() && !s->judgement.pass) found = s;
  }
  return found;
}

bool KneeRun::any_response() const {
  for (const auto& s : steps) {
    if (responses(s.load) > 0) return true;
  }
  for (const auto& s : sweep) {
    if (responses(s.load) > 0) return true;
  }
  return false;
}

}  // namespace chokepoint::loadgen
