// Fuzzes parse_perf_map (JIT /tmp/perf-PID.map). Input: the file's text.
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
  const PerfMap map = parse_perf_map(text);
  for (std::size_t i = 0; i < map.symbols.size(); ++i) {
    const PerfMapSymbol& s = map.symbols[i];
    check(s.start < s.end);
    check(!s.name.empty());
    check(i == 0 || map.symbols[i - 1].end <= s.start);  // sorted and disjoint
    check(map.find(s.start) == &s && map.find(s.end - 1) == &s);
  }
  return 0;
}
