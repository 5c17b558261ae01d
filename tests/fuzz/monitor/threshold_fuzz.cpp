// Fuzzes chokepoint check's threshold parser: no crash; a rejection has a one-line message and a
// hint; an accepted expression has 1..kMaxTerms terms on known states with limits in [0, 1], and
// its canonical text parses back to the same terms.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "monitor/threshold.h"

using chokepoint::monitor::parse_threshold;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto t = parse_threshold(text);
  if (!t) {
    if (t.error().hint.empty() || t.error().message.find('\n') != std::string::npos) std::abort();
    return 0;
  }
  if (t->terms.empty() || t->terms.size() > chokepoint::monitor::kMaxTerms) std::abort();
  std::string canonical;
  for (const auto& term : t->terms) {
    if (term.share >= chokepoint::monitor::kShareCount) std::abort();
    if (!(term.limit >= 0 && term.limit <= 1)) std::abort();
    canonical += (canonical.empty() ? "" : ",") + term.text;
  }
  auto again = parse_threshold(canonical);
  if (!again || again->terms.size() != t->terms.size()) std::abort();
  for (std::size_t i = 0; i < t->terms.size(); ++i) {
    if (again->terms[i].share != t->terms[i].share || again->terms[i].op != t->terms[i].op)
      std::abort();
  }
  return 0;
}
