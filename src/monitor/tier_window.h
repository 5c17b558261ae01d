#pragma once
// A multi-tier window (diagnose --pid A --pid B): one window's samples over every tier, split
// into one observation and one diagnosis per tier (model/tiers.h), the calls between the tiers,
// and the tier that limits the whole (analysis/tiers.h).

#include <vector>

#include "analysis/tiers.h"
#include "model/builder.h"
#include "model/observation.h"
#include "model/samples.h"
#include "model/service.h"
#include "model/tiers.h"

namespace chokepoint::monitor {

struct TierWindows {
  std::vector<analysis::TierDiagnosis> tiers;    // one per root, in the roots' order
  std::vector<model::Observation> observations;  // the same order
  std::vector<model::TierLink> links;
  analysis::LimitingTier limiting;
};

// Splits `samples` into the tiers rooted at `roots` (each root and its descendants), builds and
// diagnoses each tier's window, with the services' own wait events applied to their threads
// (model::apply_service_waits), links the tiers and finds the limiting one. A tier none of whose
// threads was seen has an empty observation and the verdict none. `window` cuts a part of the
// samples (a replay's --from and --to; model::build_observation's terms); unset: all of them.
TierWindows diagnose_tiers(const model::Samples& samples, const std::vector<int>& roots,
                           const std::vector<model::ServiceObservation>& services = {},
                           const model::Window& window = {});

}  // namespace chokepoint::monitor
