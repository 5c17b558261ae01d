#pragma once
// The services' own view (analysis::ServiceReport) in the diagnose report: a section of the text
// report, and the "services" array of the JSON contract. Observed strings (endpoints, the slow
// log's commands, table names) are the services' and are escaped like every observed string.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/services.h"

namespace chokepoint::render {

// Empty when there are no services.
std::string services_text(const std::vector<analysis::ServiceReport>& services);
nlohmann::json services_json(const std::vector<analysis::ServiceReport>& services);

}  // namespace chokepoint::render
