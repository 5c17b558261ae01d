#include "loadgen/url.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <fmt/format.h>
#include <cstring>

namespace chokepoint::loadgen {

std::string Url::authority() const {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port)
                                             : fmt::format("{}:{}", host, port);
}

util::Result<Url> parse_url(const std::string& text) {
  const std::string hint = "give a URL like http://127.0.0.1:8080/path";
  auto bad = [&](const std::string& why) {
    return util::Error{fmt::format("bad URL '{}': {}", text, why), hint};
  };
  for (unsigned char c : text) {
    // RFC 3986 allows only printable ASCII; a space or control byte would corrupt the request line.
    if (c <= 0x20 || c >= 0x7f) return bad("it contains a space, control or non-ASCII byte");
  }
  const std::string scheme_sep = "://";
  const auto sep = text.find(scheme_sep);
  if (sep == std::string::npos) return bad("it has no scheme (http://)");
  std::string scheme = text.substr(0, sep);
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme == "https") {
    return util::Error{fmt::format("bad URL '{}': https is not supported", text),
                       "chokepoint load speaks plain HTTP/1.1; put a TLS terminator in front or "
                       "load the service's plain-HTTP port"};
  }
  if (scheme != "http") return bad(fmt::format("scheme '{}' is not http", scheme));
  const std::string rest = text.substr(sep + scheme_sep.size());
  const auto path_start = rest.find_first_of("/?#");
  std::string authority = rest.substr(0, path_start);
  std::string target = path_start == std::string::npos ? "/" : rest.substr(path_start);
  if (target.find('#') != std::string::npos) return bad("fragments (#...) are not sent over HTTP");
  if (target[0] == '?') target = "/" + target;
  if (authority.find('@') != std::string::npos)
    return bad("user info (user@host) is not supported");
  if (authority.empty()) return bad("it has no host");

  Url url;
  std::string port_text;
  if (authority[0] == '[') {
    const auto close = authority.find(']');
    if (close == std::string::npos) return bad("unterminated '[' in an IPv6 address");
    url.host = authority.substr(1, close - 1);
    const std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("unexpected text after ']'");
      port_text = after.substr(1);
      if (port_text.empty()) return bad("empty port");
    }
    in6_addr a6{};
    if (inet_pton(AF_INET6, url.host.c_str(), &a6) != 1) return bad("invalid IPv6 address");
  } else {
    const auto colon = authority.find(':');
    url.host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return bad("empty port");
    }
    if (url.host.empty()) return bad("it has no host");
    for (char c : url.host) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_')) {
        return bad(fmt::format("invalid character '{}' in host", c));
      }
    }
  }
  if (!port_text.empty()) {
    unsigned long port = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9') return bad("the port is not a number");
      port = port * 10 + static_cast<unsigned long>(c - '0');
      if (port > 65535) return bad("the port is above 65535");
    }
    if (port == 0) return bad("port 0 cannot be connected to");
    url.port = static_cast<std::uint16_t>(port);
  }
  url.target = target;
  const std::string host_part =
      url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  url.host_header = url.port == 80 ? host_part : fmt::format("{}:{}", host_part, url.port);
  return url;
}

util::Result<Endpoint> resolve(const Url& url) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(url.port);
  const int rc = getaddrinfo(url.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    return util::Error{fmt::format("cannot resolve '{}': {}", url.host, gai_strerror(rc)),
                       "check the host name, or use a numeric address such as 127.0.0.1"};
  }
  Endpoint ep;
  std::memcpy(&ep.addr, res->ai_addr, res->ai_addrlen);
  ep.addr_len = res->ai_addrlen;
  ep.family = res->ai_family;
  char buf[INET6_ADDRSTRLEN] = {};
  if (res->ai_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_addr, buf, sizeof buf);
    ep.text = fmt::format("[{}]:{}", buf, url.port);
  } else {
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, buf, sizeof buf);
    ep.text = fmt::format("{}:{}", buf, url.port);
  }
  freeaddrinfo(res);
  return ep;
}

}  // namespace chokepoint::loadgen
