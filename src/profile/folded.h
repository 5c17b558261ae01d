#pragma once
// Reading folded stacks (the text render/flamegraph_folded.h writes, and flamegraph.pl reads)
// back into a Profile: how a recording keeps the stacks diagnose captured (app/recorded_window.h),
// for the report page's flame graph.
//
// Pure function; no I/O.

#include <string_view>

#include "profile/profile.h"
#include "util/result.h"

namespace chokepoint::profile {

// Parses "frame;frame;frame value" lines (outermost frame first) into stacks of `into`, which
// keeps its other fields (title, weight, counters, notes). A frame ending in "_[k]" is a kernel
// frame and one ending in "_[j]" a JIT frame (the suffix is dropped); the rest are user frames
// (folded text does not keep modules, files, lines or the synthetic root's kind). Blank lines
// are skipped. Errors: a line without a value after its last blank, naming the line number.
util::Result<void> parse_folded(std::string_view text, Profile& into);

}  // namespace chokepoint::profile
