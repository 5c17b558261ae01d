#pragma once
// The HTTP/1.1 transport of `chokepoint load`: a request as bytes, prepared once per URL and split
// around the traceparent ids that change per request. Responses are read by response_parser.h;
// the connection and schedule code that both transports share is in load.cpp.

#include <string>

#include "loadgen/load.h"
#include "loadgen/trace_ids.h"

namespace chokepoint::loadgen {

struct Http1Request {
  std::string prefix;  // request line, headers, "traceparent: 00-"
  std::string suffix;  // "-01\r\n\r\n" + body
  bool head = false;   // a HEAD request: its response has no body
};

// The request for one URL: Host from the URL, a User-Agent and Content-Type unless the options'
// headers give them, Content-Length for a body.
Http1Request prepare_http1(const LoadOptions& options, const RequestTemplate& request);

// Replaces out with the request's bytes, carrying ids in its traceparent header.
void write_http1(const Http1Request& request, const TraceIds& ids, std::string& out);

}  // namespace chokepoint::loadgen
