// Fuzzes parse_maps (/proc/PID/maps). Input: the file's text.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "symbolize/parsers.h"

using namespace chokepoint::symbolize;

static void check(bool ok) {
  if (!ok) std::abort();
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const MapsFile maps = parse_maps(text);
  for (const Mapping& m : maps.mappings) {
    check(m.start < m.end);
    check(m.contains(m.start) && !m.contains(m.end));
    check(m.path.find('\n') == std::string::npos);
    if (m.file_backed()) check(!m.path.empty() && m.path[0] == '/');
  }
  return 0;
}
