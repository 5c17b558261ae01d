#include "model/time_split.h"

namespace chokepoint::model {

namespace {
constexpr std::array<std::string_view, kResourceCount> kResourceNames = {
    "on_cpu", "cpu_wait", "disk", "network", "lock", "memory", "sleep", "idle"};
}

std::string_view resource_name(Resource r) {
  return kResourceNames[static_cast<std::size_t>(r)];
}

std::optional<Resource> resource_from_name(std::string_view name) {
  for (std::size_t i = 0; i < kResourceNames.size(); ++i) {
    if (kResourceNames[i] == name) return static_cast<Resource>(i);
  }
  return std::nullopt;
}

std::int64_t TimeSplit::total_ns() const {
  std::int64_t sum = 0;
  for (auto v : ns) sum += v;
  return sum;
}

std::int64_t TimeSplit::busy_ns() const {
  return total_ns() - (*this)[Resource::kIdle] - (*this)[Resource::kSleep];
}

double TimeSplit::share(Resource r) const {
  std::int64_t total = total_ns();
  return total > 0 ? static_cast<double>((*this)[r]) / static_cast<double>(total) : 0.0;
}

TimeSplit& TimeSplit::operator+=(const TimeSplit& other) {
  for (std::size_t i = 0; i < kResourceCount; ++i) ns[i] += other.ns[i];
  return *this;
}

}  // namespace chokepoint::model
