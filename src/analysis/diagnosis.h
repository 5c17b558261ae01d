#pragma once
// Turns one observation window into a verdict: which resource limits the target, how sure we are,
// the evidence as numbers, and the fixes in priority order. Pure: no I/O, deterministic, so every
// rule is tested on recorded observations.

#include <string>
#include <vector>

#include "model/observation.h"

namespace chokepoint::analysis {

struct Bottleneck {
  std::string resource;  // "network", "disk", "memory", "lock", "cpu"
  std::string kind;      // e.g. "upstream", "fsync", "log", "paging", "leak", "saturated", "serial"
  double share = 0;      // of the target's busy (non-idle, non-sleep) time; see docs/verdicts
  double confidence = 0;     // 0..1
  bool significant = false;  // large enough to limit the service
  std::vector<std::string> evidence;
  std::vector<std::string> fixes;
};

struct Finding {
  std::string resource;
  std::string severity;  // "warning" or "info"
  std::string message;
  std::string hint;
};

struct Diagnosis {
  std::string verdict;                  // "network" | "disk" | "memory" | "lock" | "cpu" | "none"
  std::vector<Bottleneck> bottlenecks;  // significant ones first, primary at [0]
  std::vector<Finding> findings;
  model::TimeSplit split;  // summed over the target's threads
  std::string headroom;    // for "none": what capacity is left, in words with numbers
};

Diagnosis diagnose(const model::Observation& obs);

}  // namespace chokepoint::analysis
