// Fuzzes the USL CSV reader and the fit: errors name a line, quote a bounded excerpt and print
// without control characters; accepted rows are finite and in range, and no data row is dropped
// (only a first line of two names may be a header); a fit never returns non-finite or negative
// parameters.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "loadgen/usl.h"
#include "util/escape.h"

namespace {

// Lines the parser must turn into points: not blank, not a '#' comment (after a leading BOM).
std::size_t content_lines(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::size_t n = 0;
  while (!text.empty()) {
    const auto eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const auto first = line.find_first_not_of(" \t");
    if (first != std::string_view::npos && line[first] != '#') ++n;
  }
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) return 0;  // the fit is the slow part; small inputs cover it
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto pts = chokepoint::loadgen::parse_usl_csv(text);
  if (!pts) {
    const std::string& m = pts.error().message;
    if (m.find("line ") == std::string::npos) std::abort();
    if (m.size() > 400) std::abort();  // the quoted line is an excerpt
    for (const char c : chokepoint::util::terminal_text(m)) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) std::abort();
    }
    return 0;
  }
  const std::size_t lines = content_lines(text);
  if (pts->size() != lines && pts->size() + 1 != lines) std::abort();
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
