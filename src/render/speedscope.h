#pragma once
// speedscope's JSON file format (https://www.speedscope.app/file-format-schema.json), so a
// profile opens in https://www.speedscope.app or the speedscope CLI.
//
// Pure function of the profile; no I/O. Format details in docs/profile-outputs.md.

#include <nlohmann/json.hpp>

#include "profile/profile.h"

namespace chokepoint::render {

// One "sampled" profile:
//   {"$schema": ..., "shared": {"frames": [{"name", "file"?, "line"?}, ...]},
//    "profiles": [{"type": "sampled", "name", "unit", "startValue": 0, "endValue": total,
//                  "samples": [[frame index, ...] outermost first, ...], "weights": [...]}],
//    "name", "activeProfileIndex": 0, "exporter": "chokepoint"}
// One sample per distinct stack, weighted by its value: unit "none" (samples) on-CPU,
// "nanoseconds" off-CPU; the weights sum to endValue, the profile's total. Frames are
// deduplicated by (name, file, line) and sorted, samples sorted by their frame indices, so the
// output is deterministic. "file" is the source file when known, else the module ("[kernel]"
// for kernel frames); "line" only when known. Kernel frames are named "name_[k]" and JIT frames
// "name_[j]" as in the folded output. Zero-value stacks are left out.
nlohmann::json speedscope(const profile::Profile& profile);

}  // namespace chokepoint::render
