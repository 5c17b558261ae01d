// Fuzzes the USL CSV reader and the fit: errors name a line; accepted rows are finite and in
// range; a fit never returns non-finite or negative parameters.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "loadgen/usl.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) return 0;  // the fit is the slow part; small inputs cover it
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto pts = chokepoint::loadgen::parse_usl_csv(text);
  if (!pts) {
    if (pts.error().message.find("line ") == std::string::npos) std::abort();
    return 0;
  }
  for (const auto& p : *pts) {
    if (!(p.concurrency > 0) || p.throughput < 0 || !std::isfinite(p.throughput)) std::abort();
  }
  if (pts->size() > 64) return 0;
  auto fit = chokepoint::loadgen::fit_usl(*pts);
  if (fit) {
    const auto& m = fit->model;
    if (!std::isfinite(m.lambda) || !(m.lambda > 0) || m.sigma < 0 || m.kappa < 0) std::abort();
  }
  return 0;
}
