// Fuzzes the SLO and error-bound parsers: no crash, every rejection has a hint, and an accepted
// SLO only holds terms the knee search can judge (a percentile in (0, 100), a limit in [1us, 1h]).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "loadgen/knee.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto slo = chokepoint::loadgen::parse_slo(text);
  if (!slo) {
    if (slo.error().hint.empty()) std::abort();
  } else {
    if (slo->terms.empty()) std::abort();
    for (const auto& t : slo->terms) {
      if (!(t.percentile > 0 && t.percentile < 100)) std::abort();
      if (t.limit_us < 1 || t.limit_us > 3'600'000'000LL) std::abort();
    }
  }
  auto ratio = chokepoint::loadgen::parse_ratio(text);
  if (!ratio) {
    if (ratio.error().hint.empty()) std::abort();
  } else if (!(*ratio >= 0 && *ratio <= 1)) {
    std::abort();
  }
  return 0;
}
