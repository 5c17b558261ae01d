#pragma once
// Judges a finished load run: did the generator keep its schedule, and if not, why: a server that
// stalled (no response while requests were outstanding) holds every connection, so the sends due
// meanwhile wait; with latency from the intended send time that wait is the server's, and the
// text says the server stalled rather than blaming the generator or its pool. Pure function.

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
  // The longest spell without a response (LoadResult::longest_response_gap) was the server's: at
  // least kMinServerStallNs and 10 median service times, and not the generator thread's own
  // stall (its loop ran through at least half of it). Open and closed loop.
  bool server_stalled = false;
  std::vector<std::string> warnings;  // plain sentences, most important first
};

inline constexpr std::int64_t kMinServerStallNs = 100'000'000;

LoadAssessment assess(const LoadResult& result, const LoadOptions& options);

// Whether a run's longest spell without a response was the server stalling (as above).
bool server_stalled(const LoadResult& result);

// Complete responses (any status) over a run: ok + 4xx + 5xx.
std::uint64_t responses(const LoadResult& result);
// Requests that did not end kOk, as a fraction of all measured requests (0 when none ran).
double error_ratio(const LoadResult& result);

// What to check about the failure class (kConnect, kWrite, kRead, kTimeout or kParse) that ended
// the most requests without a response, one hint per class: a refused connection, a reset, a
// stalled server and a non-HTTP reply each point somewhere else. "" when every request got one.
std::string failure_hint(const LoadResult& result, const LoadOptions& options);

}  // namespace chokepoint::loadgen
