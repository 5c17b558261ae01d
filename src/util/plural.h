#pragma once
// "1 thread", "2 threads": a count with its noun in the right number, and "12.3 MiB": a byte
// count in binary units, for text reports.

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

// "512 B", "1.5 KiB", "12.3 MiB": bytes in binary units, one decimal above a KiB.
inline std::string bytes_text(double b) {
  constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while ((b >= 1024.0 || b <= -1024.0) && i < 4) {
    b /= 1024.0;
    ++i;
  }
  return i == 0 ? fmt::format("{:.0f} {}", b, kUnits[i]) : fmt::format("{:.1f} {}", b, kUnits[i]);
}

}  // namespace chokepoint::util
