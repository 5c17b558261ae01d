#pragma once
// Which of the headers `chokepoint load` adds by default (User-Agent, Content-Type) the user's
// --header options already give; both transports (http1.h, h2_session.h) leave those out.

#include <strings.h>

#include <string>
#include <vector>

namespace chokepoint::loadgen {

struct GivenHeaders {
  bool user_agent = false;
  bool content_type = false;
};

// headers: "Name: value", as LoadOptions::headers.
inline GivenHeaders given_headers(const std::vector<std::string>& headers) {
  GivenHeaders given;
  for (const auto& h : headers) {
    const std::string name = h.substr(0, h.find(':'));
    if (strcasecmp(name.c_str(), "user-agent") == 0) given.user_agent = true;
    if (strcasecmp(name.c_str(), "content-type") == 0) given.content_type = true;
  }
  return given;
}

}  // namespace chokepoint::loadgen
