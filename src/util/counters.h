#pragma once
// Deltas of cumulative kernel counters. Counters can go backwards: a device or interface is
// re-created, a module reloaded, a pid reused by a new task, or a 32-bit counter wraps. A rate
// must never go negative, so a counter that went backwards counts as a reset and its delta over
// that window is 0 (the window's true increase is unknown; the next window is exact again).

#include <cstdint>

namespace chokepoint::util {

// cur - prev, or 0 when cur < prev (a reset). Header-only; pure; safe from any thread.
constexpr std::uint64_t saturating_delta(std::uint64_t prev, std::uint64_t cur) {
  return cur >= prev ? cur - prev : 0;
}

// True when a counter went backwards between two reads, i.e. saturating_delta hid a reset.
constexpr bool counter_reset(std::uint64_t prev, std::uint64_t cur) {
  return cur < prev;
}

}  // namespace chokepoint::util
