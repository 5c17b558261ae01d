#pragma once
// The W3C Trace Context ids `chokepoint load` puts in each request's traceparent header (version
// 00, a 16-byte trace id, an 8-byte parent id, flags 01 = sampled), shared by both transports
// (http1.h, h2_session.h) and the slowest-request list.

#include <cstdint>
#include <string>

namespace chokepoint::loadgen {

struct TraceIds {
  std::uint64_t hi = 0;    // trace id, high half
  std::uint64_t lo = 0;    // trace id, low half (never zero: an all-zero trace id is invalid)
  std::uint64_t span = 0;  // parent (span) id, never zero
};

// Appends v as 16 lower-case hex digits.
inline void append_hex(std::string& out, std::uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  char buf[16];
  for (int i = 15; i >= 0; --i) {
    buf[i] = kDigits[v & 0xf];
    v >>= 4;
  }
  out.append(buf, 16);
}

}  // namespace chokepoint::loadgen
