#pragma once
// Turns one observation window into a verdict: which resource limits the target, how sure we are,
// the evidence as numbers, and the fixes in priority order. Pure: no I/O, deterministic, so every
// rule is tested on recorded observations.

#include <optional>
#include <string>
#include <vector>

#include "analysis/verdict.h"
#include "model/observation.h"

namespace chokepoint::analysis {

struct Bottleneck {
  Verdict resource = Verdict::kNone;  // never kNone in a diagnosis
  BottleneckKind kind = BottleneckKind::kIo;
  // What it weighs, as share_basis(kind) says: of the target's busy (non-idle, non-sleep) time,
  // or for a leak the fraction of the free memory eaten per hour. See docs/verdicts.
  double share = 0;
  // kLeak: when the growth, at its rate over the window, reaches the memory limit.
  std::optional<double> limit_in_s;
  double confidence = 0;     // 0..1
  bool significant = false;  // large enough to limit the service
  std::vector<std::string> evidence;
  std::vector<std::string> fixes;
  // The wait-for chains behind it (the exact mode's wait-for graph, model/wait_graph.h): from a
  // waiting thread to the root thread it waits for. Empty for most bottlenecks.
  std::vector<model::WaitChain> chains;
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

// Primary first: significant ones first; among them a leak that reaches its memory limit within
// the hour (it takes the service down before any other fix pays off), then the time bottlenecks
// (and dropped connection attempts) by share, then the other leaks. Shares closer than 0.05 are a
// tie, broken by the latency hierarchy. A leak's share is never compared with a time share.
Diagnosis diagnose(const model::Observation& obs);

// A bottleneck's weight in words, for a headline: "42% of busy time", "3% of connection attempts
// dropped", or for a leak "free memory runs out in 23 min" (without limit_in_s: "eats 42% of the
// free memory per hour").
std::string share_text(const Bottleneck& b);
// The same from the kind and the share alone (what an exporter's reader has).
std::string share_text(BottleneckKind kind, double share);

}  // namespace chokepoint::analysis
