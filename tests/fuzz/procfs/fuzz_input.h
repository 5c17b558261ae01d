#pragma once
// Shared by the procfs fuzzers: the input is one selector byte (which parser) and then the file's
// text; check() turns a broken invariant into a crash libFuzzer reports.

#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "collect/procfs/text.h"

namespace chokepoint::collect::procfs::fuzz {

inline void check(bool ok) {
  if (!ok) std::abort();
}

inline constexpr Units kUnits{100, 4096};

// The parser selector and the text after it; size must be at least 1.
inline std::uint8_t selector(const std::uint8_t* data) {
  return data[0];
}
inline std::string_view text_after_selector(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data) + 1, size - 1};
}

}  // namespace chokepoint::collect::procfs::fuzz
