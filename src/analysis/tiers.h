#pragma once
// Which tier limits a multi-tier service (diagnose --pid A --pid B; model/tiers.h): each tier has
// its own verdict, and the request path is followed from the front tier (the one no other tier
// calls) through the tiers it waits on. A front tier whose verdict is network and that calls
// another tier is limited by that tier: the whole is limited by what limits the tier at the end
// of the path. Pure: no I/O. docs/diagnose.md, "Several tiers", shows it.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "analysis/diagnosis.h"
#include "model/tiers.h"

namespace chokepoint::analysis {

struct TierDiagnosis {
  int root_pid = 0;
  std::string name;       // the root process's name (hostile: escape it for its output)
  std::vector<int> pids;  // the tier's processes seen in the window
  Diagnosis diagnosis;
};

struct LimitingTier {
  // The tier that limits the whole; nullopt when no tier calls another (each verdict stands
  // alone) or there are no tiers.
  std::optional<std::size_t> tier;
  // The request path followed, from the front tier to `tier` (indexes into the tiers).
  std::vector<std::size_t> path;
  // Why, in words with the tiers' pids, names, addresses and verdicts.
  std::string reason;
};

// Follows the request path from the first front tier (in the given order) that calls another
// tier: while the tier's verdict is network and it calls tiers not yet on the path, the path goes
// on to the callee with the largest primary share among those with a verdict (the first callee
// when none has one). A callee with no verdict (none: it has headroom) ends the path at its
// caller: the time is in the round trips, not in the callee's capacity.
LimitingTier limiting_tier(const std::vector<TierDiagnosis>& tiers,
                           const std::vector<model::TierLink>& links);

// "tier 2 (pid 1234, postgres)".
std::string tier_label(const std::vector<TierDiagnosis>& tiers, std::size_t tier);

}  // namespace chokepoint::analysis
