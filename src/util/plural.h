#pragma once
// "1 thread", "2 threads": a count with its noun in the right number, for text reports.

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace chokepoint::util {

// `n` and `singular`, or `n` and `plural` (default: singular + "s") when n != 1.
template <typename N>
std::string count_of(N n, std::string_view singular, std::string_view plural = {}) {
  if (n == 1) return fmt::format("1 {}", singular);
  if (plural.empty()) return fmt::format("{} {}s", n, singular);
  return fmt::format("{} {}", n, plural);
}

}  // namespace chokepoint::util
