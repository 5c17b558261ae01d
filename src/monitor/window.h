#pragma once
// One diagnosis window: sample a target (collect/sampler), build its observation (model/) and
// diagnose it (analysis/). diagnose, check and agent all run this one path, so a number means the
// same in each.
//
// Thread-safety: each call is independent; several threads may run windows at once.

#include <atomic>
#include <cstdint>

#include "analysis/diagnosis.h"
#include "collect/sampler/target.h"
#include "model/observation.h"
#include "model/samples.h"
#include "util/result.h"

namespace chokepoint::monitor {

struct DiagnosisWindow {
  model::Samples samples;  // what the window read, when kept for a recording
  model::Observation observation;
  analysis::Diagnosis diagnosis;
};

struct WindowOptions {
  std::int64_t duration_ns = 10'000'000'000;
  std::int64_t interval_ns = 100'000'000;
  const std::atomic<bool>* stop = nullptr;  // ends the window early when set
  bool keep_samples = false;
};

// Watches `spec` for one window and diagnoses it. Errors: the target is gone or cannot be read,
// or it exited before any of its threads was seen (ESRCH); with hints.
util::Result<DiagnosisWindow> diagnose_window(const collect::sampler::TargetSpec& spec,
                                              const WindowOptions& options);

}  // namespace chokepoint::monitor
