// Fuzzes chokepoint-lab's request parser: any bytes must give a verdict without crashing, and a
// complete request must consume no more than it was given and point inside the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lab/http.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  // Parse like the server does: request after request while complete.
  while (!in.empty()) {
    chokepoint::lab::Request req;
    chokepoint::lab::ParseResult r = chokepoint::lab::parse_request(in, req);
    if (r.status != chokepoint::lab::ParseStatus::kComplete) break;
    if (r.consumed == 0 || r.consumed > in.size()) std::abort();
    if (req.target.data() < in.data() ||
        req.target.data() + req.target.size() > in.data() + in.size()) {
      std::abort();
    }
    if (req.path.empty() || req.path.front() != '/') std::abort();
    (void)chokepoint::lab::query_param(req.query, "k");
    in.remove_prefix(r.consumed);
  }
  return 0;
}
