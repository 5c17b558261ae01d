#pragma once
// When the sampler's ticks read. Each tick stands for one interval of a grid of interval_ns, and
// reads at a pseudo-random point of it, not at the grid point: [grid - interval/2, grid +
// interval/2). A target that does something on a period that divides the interval (a 10 ms timer
// wheel, Redis's serverCron at hz 10, a load generator's fixed rate) would otherwise be read at
// the same phase of its cycle at every tick, and its sampled split would say 0 or 1 of whatever
// it does at that phase (aliasing: a thread in clock_nanosleep 32% of every 10 ms read as 0.00 or
// 0.99 sleep). With the reads spread, each phase is read as often as it lasts. The interval a
// tick stands for is still interval_ns on average, and a tick count per window does not change.

#include <cstdint>

namespace chokepoint::collect::sampler {

// The time of the tick of the grid point grid_ns: grid_ns plus an offset in [-interval_ns/2,
// interval_ns/2) that is a fixed function of grid_ns, so samplers of one process on one grid
// (SamplerOptions::shared_clock) read at the same instants and keep sharing their host reads.
// Never after deadline_ns; a grid point at or after deadline_ns (the window's close) is its own
// tick. Ticks of consecutive grid points are in order: each is before the next grid point's
// earliest. interval_ns <= 1: grid_ns.
std::int64_t tick_time_ns(std::int64_t grid_ns, std::int64_t interval_ns, std::int64_t deadline_ns);

}  // namespace chokepoint::collect::sampler
