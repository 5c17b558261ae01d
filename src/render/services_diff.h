#pragma once
// The services both recordings probed, side by side (chokepoint diff): for each service on both
// sides (matched by kind and endpoint, or by kind alone when each side probed one of that
// kind), the rates of its counters and the means of its gauges over each window, what moved and
// by how much. Reads the model; never collects.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/service.h"

namespace chokepoint::render {

// Rows kept per service: the counters with the largest rates, then the gauges that moved most.
inline constexpr std::size_t kServiceDiffCounters = 6;
inline constexpr std::size_t kServiceDiffGauges = 6;

// "\nServices (their own statistics; rates per second, gauges' means)\n" and a block per service
// on both sides; empty when no service is on both sides. Names are the services' own, escaped.
std::string services_diff_text(const std::vector<model::ServiceObservation>& before,
                               const std::vector<model::ServiceObservation>& after);

// [{kind, endpoint_before, endpoint_after, counters: {name: {before, after, ratio}} (per second),
// gauges: {name: {before, after, change}} (means)}]; an empty array when none is on both sides.
// ratio is after / before, null when before is 0; change is after - before.
nlohmann::json services_diff_json(const std::vector<model::ServiceObservation>& before,
                                  const std::vector<model::ServiceObservation>& after);

}  // namespace chokepoint::render
