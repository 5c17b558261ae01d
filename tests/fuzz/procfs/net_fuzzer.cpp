// Fuzzes the network parsers (net.h). Input: one selector byte, then the file's text.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "collect/procfs/net.h"
#include "fuzz/procfs/fuzz_input.h"

using namespace chokepoint::collect::procfs;

using fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view text = fuzz::text_after_selector(data, size);
  const Units units = fuzz::kUnits;
  switch (fuzz::selector(data) % 4) {
    case 0:
      if (auto devs = parse_net_dev(text)) {
        for (const auto& d : *devs) check(!d.name.empty() && d.name.find(':') == std::string::npos);
      }
      break;
    case 1:
      if (auto c = parse_net_counters(text)) {
        for (const auto& [key, value] : c->values) check(key.find('.') != std::string::npos);
        NetCounters merged;
        merge_net_counters(merged, *c);
        check(merged.values.size() == c->values.size());
      }
      break;
    case 2:
      (void)parse_sockstat(text, units);
      break;
    case 3:
      if (auto r = parse_port_range(text)) check(r->low <= r->high && r->high <= 65535);
      break;
  }
  return 0;
}
