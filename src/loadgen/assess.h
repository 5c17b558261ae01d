#pragma once
// Judges a finished load run: did the generator keep its schedule, and if not, why. Pure function.

#include <optional>
#include <string>
#include <vector>

#include "loadgen/load.h"

namespace chokepoint::loadgen {

struct LoadAssessment {
  double rps = 0;             // measured requests per second over the measured window
  double achieved_ratio = 1;  // rps / target rate (open loop); 1 in closed loop
  // Little's law: in-flight requests = rate x time in system. To keep `rate` going with each
  // request taking the mean service time, at least rate x service time connections are busy.
  double connections_needed = 0;  // open loop only; 0 in closed loop
  bool fell_behind = false;       // open loop: late or dropped sends, or rate below target
  bool too_few_connections = false;
  std::vector<std::string> warnings;  // plain sentences, most important first
};

LoadAssessment assess(const LoadResult& result, const LoadOptions& options);

// Complete responses (any status) over a run: ok + 4xx + 5xx.
std::uint64_t responses(const LoadResult& result);
// Requests that did not end kOk, as a fraction of all measured requests (0 when none ran).
double error_ratio(const LoadResult& result);

// What to check about the failure class (kConnect, kWrite, kRead, kTimeout or kParse) that ended
// the most requests without a response, one hint per class: a refused connection, a reset, a
// stalled server and a non-HTTP reply each point somewhere else. "" when every request got one.
std::string failure_hint(const LoadResult& result, const LoadOptions& options);

}  // namespace chokepoint::loadgen
