#include "collect/sampler/tick_schedule.h"

#include <algorithm>

namespace chokepoint::collect::sampler {
namespace {

// SplitMix64's finalizer: a grid point's bits, well mixed (consecutive grid points give
// unrelated offsets).
std::uint64_t mix(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

std::int64_t tick_time_ns(std::int64_t grid_ns, std::int64_t interval_ns,
                          std::int64_t deadline_ns) {
  if (grid_ns >= deadline_ns || interval_ns <= 1) return std::min(grid_ns, deadline_ns);
  const auto span = static_cast<std::uint64_t>(interval_ns);
  const auto offset = static_cast<std::int64_t>(mix(static_cast<std::uint64_t>(grid_ns)) % span);
  return std::min(grid_ns - interval_ns / 2 + offset, deadline_ns);
}

}  // namespace chokepoint::collect::sampler
