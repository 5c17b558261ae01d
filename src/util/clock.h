#pragma once
// Monotonic and wall clocks in nanoseconds, the one time unit below render/.

#include <cstdint>

namespace chokepoint::util {

// CLOCK_MONOTONIC in ns: for intervals and deadlines.
std::int64_t monotonic_ns();
// CLOCK_REALTIME in ns since the epoch: for timestamps that users read.
std::int64_t realtime_ns();

inline constexpr std::int64_t kNsPerUs = 1'000;
inline constexpr std::int64_t kNsPerMs = 1'000'000;
inline constexpr std::int64_t kNsPerSec = 1'000'000'000;

}  // namespace chokepoint::util
