#include "loadgen/http1.h"

#include <strings.h>

#include <fmt/format.h>

namespace chokepoint::loadgen {

Http1Request prepare_http1(const LoadOptions& o, const RequestTemplate& r) {
  bool has_user_agent = false, has_content_type = false;
  for (const auto& h : o.headers) {
    const std::string name = h.substr(0, h.find(':'));
    if (strcasecmp(name.c_str(), "user-agent") == 0) has_user_agent = true;
    if (strcasecmp(name.c_str(), "content-type") == 0) has_content_type = true;
  }
  Http1Request p;
  p.head = o.method == "HEAD";
  p.prefix =
      fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\n", o.method, r.url.target, r.url.host_header);
  if (!has_user_agent) p.prefix += "User-Agent: chokepoint-load\r\n";
  for (const auto& h : o.headers) p.prefix += h + "\r\n";
  if (!o.body.empty()) {
    if (!has_content_type) p.prefix += "Content-Type: application/octet-stream\r\n";
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
