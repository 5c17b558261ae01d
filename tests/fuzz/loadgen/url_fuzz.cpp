// Fuzzes URL parsing: no crash, and an accepted URL never carries bytes that would corrupt the
// request line or Host header.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "loadgen/url.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto url = chokepoint::loadgen::parse_url(text);
  if (!url) {
    if (url.error().hint.empty()) std::abort();
    return 0;
  }
  for (const std::string* s : {&url->target, &url->host_header}) {
    for (unsigned char c : *s) {
      if (c <= 0x20 || c >= 0x7f) std::abort();
    }
  }
  if (url->target.empty() || url->target[0] != '/') std::abort();
  if (url->port == 0 || url->host.empty()) std::abort();
  return 0;
}
