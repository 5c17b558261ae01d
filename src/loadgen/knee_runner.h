#pragma once
// The knee runner: drives a whole `knee` run over the search (loadgen/knee.h) and the USL sweep
// (loadgen/usl.h). It decides each step's load, runs it through the caller's StepRunner (which
// may diagnose a target over the same window), judges it against the SLO, and fits the USL to the
// sweep. What it finds is a KneeRun, which render/knee_report.h writes as text, JSON and HTML.
//
// No I/O of its own: the StepRunner runs the load; the KneeObserver is told of each finished
// step (for a live table). Single-threaded; `stop` may be set from a signal handler.

#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "loadgen/assess.h"
#include "loadgen/knee.h"
#include "loadgen/load.h"
#include "loadgen/usl.h"

namespace chokepoint::loadgen {

// What a diagnosis of the target over one step found, as the caller rendered it (loadgen knows
// nothing of diagnoses).
// nlohmann::json's destructor may allocate (it flattens nested values on a stack), and
// clang-tidy's bugprone-exception-escape counts that as a throw.
// NOLINTNEXTLINE(bugprone-exception-escape)
struct StepDiagnosis {
  std::string verdict;                // "cpu (saturation) 87%", or "none"
  std::string saturated;              // the verdict's name ("cpu", "none")
  std::vector<std::string> evidence;  // the first bottleneck's evidence
  std::string first_fix;              // its first fix ("" when none)
  nlohmann::json summary;             // the diagnose JSON's verdict part
};

// What one step of load gave: the run, and with a target its diagnosis (or why there is none).
struct StepRun {
  LoadResult load;
  std::optional<StepDiagnosis> diagnosis;
  std::string diagnosis_error;
};

struct KneeStep {
  double offered_rate_per_s = 0;  // 0: closed loop (USL sweep)
  int connections = 0;
  LoadResult load;
  LoadAssessment assessment;
  StepJudgement judgement;  // search steps only
  std::optional<StepDiagnosis> diagnosis;
  std::string diagnosis_error;
};

// Runs one step of `options` (rate, connections, threads, duration set by the runner). Throws
// util::FatalError when the load cannot run at all.
using StepRunner = std::function<StepRun(const LoadOptions& options)>;
// Told of the run's progress (for a live table); any member may be empty.
struct KneeObserver {
  std::function<void(const KneeStep& step)> search_step;  // a search step finished
  std::function<void()> sweep_start;                      // the USL sweep begins
  std::function<void(const KneeStep& step)> sweep_step;   // a sweep level finished
};

struct KneeRunOptions {
  LoadOptions base;        // requests, warmup, step duration, threads
  std::optional<Slo> slo;  // the knee search runs when set
  double max_error_ratio = 0.001;
  KneeOptions search;
  int min_connections = 16;    // fewest connections per search step
  int max_connections = 1000;  // most connections per search step
  bool usl = false;            // the USL sweep runs when set
  int max_concurrency = 32;
  double target_rate_per_s = 0;  // > 0: plan instances for it
  double max_utilization = 0.8;
};

struct KneeRun {
  std::vector<KneeStep> steps;       // the search, in the order run
  std::optional<KneeSearch> knee;    // the search's result (set when options.slo was)
  std::vector<KneeStep> sweep;       // the USL sweep, by concurrency
  std::optional<UslFit> fit;         // the sweep's fit
  std::string fit_error;             // why there is no fit (when options.usl)
  std::optional<InstancePlan> plan;  // for options.target_rate_per_s
  std::string plan_error;
  std::optional<long> knee_instances;  // target rate / the SLO knee, rounded up
  bool interrupted = false;            // `stop` was set: the steps that finished are kept

  // The search steps by offered rate.
  std::vector<const KneeStep*> curve() const;
  // The step at the knee (the highest passing rate) and the one above it (the lowest failing),
  // or null.
  const KneeStep* at_knee() const;
  const KneeStep* above_knee() const;
  // Whether any step got any response.
  bool any_response() const;
};

KneeRun run_knee(const KneeRunOptions& options, const StepRunner& run_step,
                 const std::atomic<bool>& stop, const KneeObserver& observer);

// What judge_step reads of a finished step.
StepMeasurement measurement(const KneeStep& step, const Slo& slo);

}  // namespace chokepoint::loadgen
