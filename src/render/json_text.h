#pragma once
// The one way chokepoint writes a JSON document. Observed strings go into nlohmann::json as raw
// bytes; here they are serialised with nlohmann's escapes (\n, \t, \u001b: the one representation
// of control characters in our JSON), and each byte that is not valid UTF-8 becomes U+FFFD
// instead of throwing (a comm truncated by the kernel mid-character is not valid UTF-8).

#include <nlohmann/json.hpp>
#include <string>

namespace chokepoint::render {

// `j` serialised with `indent` spaces (-1: on one line), followed by a newline.
inline std::string json_text(const nlohmann::json& j, int indent = 2) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace chokepoint::render
