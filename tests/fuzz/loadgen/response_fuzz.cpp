// Fuzzes the response parser the way the load engine drives it: the input is split into reads at
// points chosen by its first byte, then EOF. Checks the invariants the engine relies on.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "loadgen/response_parser.h"

using chokepoint::loadgen::ResponseParser;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool head = (data[0] & 0x80) != 0;
  const std::size_t step = (data[0] & 0x7f) + 1;
  const char* bytes = reinterpret_cast<const char*>(data + 1);
  const std::size_t len = size - 1;
  ResponseParser p;
  p.reset(head);
  ResponseParser::State st = ResponseParser::State::kIncomplete;
  std::size_t off = 0;
  while (off < len && st == ResponseParser::State::kIncomplete) {
    const std::size_t n = step < len - off ? step : len - off;
    std::size_t consumed = 0;
    st = p.feed(bytes + off, n, &consumed);
    if (consumed > n) std::abort();
    if (st == ResponseParser::State::kComplete && consumed == 0 && !p.started()) std::abort();
    off += n;
  }
  if (st == ResponseParser::State::kIncomplete) st = p.finish();
  if (st == ResponseParser::State::kIncomplete) std::abort();  // EOF always ends a response
  if (st == ResponseParser::State::kComplete && (p.status() < 100 || p.status() > 999))
    std::abort();
  if (st != ResponseParser::State::kComplete && p.error().empty()) std::abort();
  return 0;
}
