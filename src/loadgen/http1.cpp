#include "loadgen/http1.h"

#include <fmt/format.h>

#include "loadgen/given_headers.h"

namespace chokepoint::loadgen {

Http1Request prepare_http1(const LoadOptions& o, const RequestTemplate& r) {
  const GivenHeaders given = given_headers(o.headers);
  Http1Request p;
  p.head = o.method == "HEAD";
  p.prefix =
      fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\n", o.method, r.url.target, r.url.host_header);
  if (!given.user_agent) p.prefix += "User-Agent: chokepoint-load\r\n";
  for (const auto& h : o.headers) p.prefix += h + "\r\n";
  if (!o.body.empty()) {
    if (!given.content_type) p.prefix += "Content-Type: application/octet-stream\r\n";
    p.prefix += fmt::format("Content-Length: {}\r\n", o.body.size());
  }
  // W3C Trace Context: version 00, 16-byte trace id, 8-byte parent id, flags 01 (sampled).
  p.prefix += "traceparent: 00-";
  p.suffix = "-01\r\n\r\n" + o.body;
  return p;
}

void write_http1(const Http1Request& r, const TraceIds& ids, std::string& out) {
  out.assign(r.prefix);
  append_hex(out, ids.hi);
  append_hex(out, ids.lo);
  out.push_back('-');
  append_hex(out, ids.span);
  out.append(r.suffix);
}

}  // namespace chokepoint::loadgen
