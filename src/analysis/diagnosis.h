#pragma once
// Turns one observation window into a verdict: which resource limits the target, how sure we are,
// the evidence as numbers, and the fixes in priority order. Pure: no I/O, deterministic, so every
// rule is tested on recorded observations.

#include <string>
#include <vector>

#include "analysis/verdict.h"
#include "model/observation.h"

namespace chokepoint::analysis {

struct Bottleneck {
  Verdict resource = Verdict::kNone;  // never kNone in a diagnosis
  BottleneckKind kind = BottleneckKind::kIo;
  double share = 0;          // of the target's busy (non-idle, non-sleep) time; see docs/verdicts
  double confidence = 0;     // 0..1
  bool significant = false;  // large enough to limit the service
  std::vector<std::string> evidence;
  std::vector<std::string> fixes;
};

struct Finding {
  FindingResource resource = FindingResource::kMemory;
  Severity severity = Severity::kInfo;
  std::string message;
  std::string hint;
};

struct Diagnosis {
  Verdict verdict = Verdict::kNone;
  std::vector<Bottleneck> bottlenecks;  // significant ones first, primary at [0]
  std::vector<Finding> findings;
  model::TimeSplit split;  // summed over the target's threads
  std::string headroom;    // for kNone: what capacity is left, in words with numbers
};

Diagnosis diagnose(const model::Observation& obs);

}  // namespace chokepoint::analysis
