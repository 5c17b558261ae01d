#pragma once
// The stacks `chokepoint record` kept over time (store/stack_slices.h), as the report page's JSON
// for flame graphs of a time range the reader chooses on the page: the page merges the slices
// that overlap the range and draws that range's on-CPU and off-CPU graphs itself.
//
// Every frame name is observed text (symbols of the target's binaries) and hostile: the page draws
// it on a canvas with fillText and shows it with textContent only.
//
// Pure: no I/O.

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "store/stack_slices.h"

namespace chokepoint::report {

// At most this many slices of each kind go into the page: beyond it, consecutive slices are
// merged in equal groups (their counts summed), so an hour of 1 s slices stays small; the
// range then snaps to the groups' bounds.
inline constexpr std::size_t kMaxPageSlices = 120;

// {"frames": [name, ...], "stacks": [[frame index, ...], ...] (outermost frame first), "on_cpu",
// "off_cpu": each null (no slice of the kind) or {"frequency_hz", "merged_by" (slices per group),
// "slices": [{"from_s", "to_s", "lost", "counts": [stack index, value, ...]}]}}, times in s from
// first_ns (the recording's first tick; a slice may start before it). On-CPU values are samples,
// off-CPU values nanoseconds blocked. Null when both kinds are empty.
nlohmann::json range_stacks_json(const std::vector<store::StackSlice>& on_cpu,
                                 const std::vector<store::StackSlice>& off_cpu,
                                 std::int64_t first_ns, std::size_t max_slices = kMaxPageSlices);

}  // namespace chokepoint::report
