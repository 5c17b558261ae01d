#pragma once
// Plain-HTTP URLs for the load generator: http://HOST[:PORT][/PATH[?QUERY]]. HOST is an IPv4
// address, a bracketed IPv6 address or a name. TLS, user info and fragments are refused with a
// hint rather than half-supported.

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "util/result.h"

namespace chokepoint::loadgen {

struct Url {
  std::string host;  // without brackets
  std::uint16_t port = 80;
  std::string target = "/";  // path and query, as sent on the request line
  std::string host_header;   // "host[:port]" as the Host header carries it

  // "host:port", for grouping URLs by the server they reach.
  std::string authority() const;
};

// Checks syntax only; does no name lookup.
util::Result<Url> parse_url(const std::string& text);

// A resolved server address (first result of getaddrinfo, TCP).
struct Endpoint {
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  int family = 0;
  std::string text;  // numeric "ip:port" for messages
};

// Resolves url.host with getaddrinfo(3). Numeric hosts never touch DNS.
util::Result<Endpoint> resolve(const Url& url);

}  // namespace chokepoint::loadgen
