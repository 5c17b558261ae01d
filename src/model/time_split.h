#pragma once
// The time split: where a thread's wall time went over a window. The eight resources sum to the
// window's wall time for each thread, and shares sum to 1.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace chokepoint::model {

enum class Resource : std::uint8_t {
  kOnCpu = 0,
  kCpuWait,  // runnable, waiting for a core (schedstat run_delay)
  kDisk,     // block IO, or inside file syscalls (fsync, write to a regular file, ...)
  kNetwork,  // waiting on a peer: an upstream reply, a full send buffer, a connect
  kLock,     // contended mutex (futex), file locks
  kMemory,   // major faults, reclaim, swap-in
  kSleep,    // timers: nanosleep, clock_nanosleep, timerfd
  kIdle,     // waiting for work: accept, epoll with nothing pending, a parked pool thread
};
inline constexpr std::size_t kResourceCount = 8;

// "on_cpu", "cpu_wait", "disk", ... as in the JSON contract.
std::string_view resource_name(Resource r);
std::optional<Resource> resource_from_name(std::string_view name);

// Nanoseconds per resource. Plain value type.
struct TimeSplit {
  std::array<std::int64_t, kResourceCount> ns{};

  std::int64_t& operator[](Resource r) { return ns[static_cast<std::size_t>(r)]; }
  std::int64_t operator[](Resource r) const { return ns[static_cast<std::size_t>(r)]; }
  std::int64_t total_ns() const;
  // Everything but idle and sleep: the time the target spent working or waiting on a resource.
  std::int64_t busy_ns() const;
  // r's fraction of total_ns(); 0 when total is 0.
  double share(Resource r) const;
  TimeSplit& operator+=(const TimeSplit& other);
};

}  // namespace chokepoint::model
