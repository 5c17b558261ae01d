#include "lab/http.h"

#include <charconv>
#include <cstring>

namespace chokepoint::lab {
namespace {

// tchar from RFC 9110 section 5.6.2: the characters allowed in a method and a header name.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

// Visible ASCII for the request target; no spaces or controls (RFC 9112 section 3.2).
bool is_target_char(char c) {
  return c > 0x20 && c < 0x7f;
}

// Field values: visible ASCII, obs-text (>= 0x80), space and tab; no other controls.
bool is_value_char(char c) {
  auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True when the comma-separated list `value` holds `token` (case-insensitive).
bool has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    std::size_t comma = value.find(',');
    std::string_view item = trim_ows(value.substr(0, comma));
    if (iequals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

ParseStatus parse_request_line(std::string_view line, Request& out) {
  // method SP request-target SP HTTP-version, exactly one space each (RFC 9112 section 3).
  std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return ParseStatus::kBad;
  std::string_view method = line.substr(0, sp1);
  for (char c : method) {
    if (!is_tchar(c)) return ParseStatus::kBad;
  }
  std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return ParseStatus::kBad;
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (target.front() != '/') return ParseStatus::kBad;  // origin-form only
  for (char c : target) {
    if (!is_target_char(c)) return ParseStatus::kBad;
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
    return ParseStatus::kBad;
  }
  if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) {
    return ParseStatus::kNotImplemented;
  }
  out.method = method;
  out.target = target;
  std::size_t q = target.find('?');
  out.path = target.substr(0, q);
  out.query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  out.version_minor = version[7] - '0';
  out.keep_alive = out.version_minor == 1;
  out.content_length = 0;
  return ParseStatus::kComplete;
}

}  // namespace

ParseResult parse_request(std::string_view buffer, Request& out) {
  // Tolerate (skip) empty lines before the request line, as RFC 9112 section 2.2 allows.
  std::size_t start = 0;
  while (buffer.size() - start >= 2 && buffer[start] == '\r' && buffer[start + 1] == '\n') {
    start += 2;
  }
  std::string_view rest = buffer.substr(start);
  std::size_t head_end = rest.find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    // A head can only get longer; decide "too large" before all of it arrives.
    if (rest.size() > kMaxHeadBytes) return {ParseStatus::kTooLarge, 0};
    // Reject garbage early: a bare LF, a NUL or a control byte can never become valid.
    for (std::size_t i = 0; i < rest.size(); ++i) {
      auto u = static_cast<unsigned char>(rest[i]);
      if (u == 0 || u == 0x7f || (u < 0x20 && u != '\r' && u != '\n' && u != '\t')) {
        return {ParseStatus::kBad, 0};
      }
      if (u == '\n' && (i == 0 || rest[i - 1] != '\r')) return {ParseStatus::kBad, 0};
    }
    return {ParseStatus::kIncomplete, 0};
  }
  std::size_t head_bytes = head_end + 4;
  if (head_bytes > kMaxHeadBytes) return {ParseStatus::kTooLarge, 0};

  std::string_view head = rest.substr(0, head_end + 2);  // every line ends with CRLF
  std::size_t eol = head.find("\r\n");
  ParseStatus st = parse_request_line(head.substr(0, eol), out);
  if (st != ParseStatus::kComplete) return {st, 0};
  head.remove_prefix(eol + 2);

  bool saw_length = false;
  bool connection_close = false;
  bool connection_keep_alive = false;
  std::size_t headers = 0;
  while (!head.empty()) {
    eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    if (++headers > kMaxHeaders) return {ParseStatus::kTooLarge, 0};
    std::size_t colon = line.find(':');
    // No obs-fold, no whitespace before the colon (RFC 9112 section 5.1 and 5.2).
    if (colon == std::string_view::npos || colon == 0) return {ParseStatus::kBad, 0};
    std::string_view name = line.substr(0, colon);
    for (char c : name) {
      if (!is_tchar(c)) return {ParseStatus::kBad, 0};
    }
    std::string_view value = line.substr(colon + 1);
    for (char c : value) {
      if (!is_value_char(c)) return {ParseStatus::kBad, 0};
    }
    value = trim_ows(value);
    if (iequals(name, "content-length")) {
      std::size_t length = 0;
      if (value.empty() || value.size() > 18) return {ParseStatus::kBad, 0};
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
      if (ec != std::errc{} || ptr != value.data() + value.size()) return {ParseStatus::kBad, 0};
      if (saw_length && length != out.content_length) return {ParseStatus::kBad, 0};
      saw_length = true;
      out.content_length = length;
    } else if (iequals(name, "transfer-encoding")) {
      return {ParseStatus::kNotImplemented, 0};
    } else if (iequals(name, "connection")) {
      if (has_token(value, "close")) connection_close = true;
      if (has_token(value, "keep-alive")) connection_keep_alive = true;
    }
  }
  if (connection_close) {
    out.keep_alive = false;
  } else if (connection_keep_alive) {
    out.keep_alive = true;
  }
  if (out.content_length > kMaxBodyBytes) return {ParseStatus::kBodyTooLarge, 0};
  std::size_t total = start + head_bytes + out.content_length;
  if (buffer.size() < total) return {ParseStatus::kIncomplete, 0};
  return {ParseStatus::kComplete, total};
}

int http_status_for(ParseStatus status) {
  switch (status) {
    case ParseStatus::kTooLarge:
      return 431;
    case ParseStatus::kBodyTooLarge:
      return 413;
    case ParseStatus::kNotImplemented:
      return 501;
    default:
      return 400;
  }
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Content Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

void append_response_head(std::string& out, int status, std::size_t content_length,
                          bool keep_alive) {
  char num[24];
  out.append("HTTP/1.1 ");
  auto r = std::to_chars(num, num + sizeof(num), status);
  out.append(num, r.ptr);
  out.push_back(' ');
  out.append(reason_phrase(status));
  out.append("\r\nContent-Type: text/plain\r\nContent-Length: ");
  r = std::to_chars(num, num + sizeof(num), content_length);
  out.append(num, r.ptr);
  if (!keep_alive) out.append("\r\nConnection: close");
  out.append("\r\n\r\n");
}

ResponseParseStatus parse_response_head(std::string_view buffer, ResponseHead& out) {
  const std::size_t end = buffer.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    return buffer.size() > kMaxHeadBytes ? ResponseParseStatus::kBad
                                         : ResponseParseStatus::kIncomplete;
  }
  // "HTTP/1.1 200 OK": the version, one space, three digits (RFC 9112 section 4).
  const std::string_view head = buffer.substr(0, end);
  if (head.size() < 12 || head.substr(0, 7) != "HTTP/1." || head[8] != ' ') {
    return ResponseParseStatus::kBad;
  }
  ResponseHead r;
  auto [ptr, ec] = std::from_chars(head.data() + 9, head.data() + 12, r.status);
  if (ec != std::errc{} || ptr != head.data() + 12 || r.status < 100) {
    return ResponseParseStatus::kBad;
  }
  r.head_bytes = end + 4;
  bool saw_length = false;
  std::size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos) {
    const std::size_t next = head.find("\r\n", pos + 2);
    const std::string_view line = head.substr(
        pos + 2, next == std::string_view::npos ? std::string_view::npos : next - pos - 2);
    pos = next;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim_ows(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      auto [end_ptr, err] =
          std::from_chars(value.data(), value.data() + value.size(), r.content_length);
      if (err != std::errc{} || end_ptr != value.data() + value.size()) {
        return ResponseParseStatus::kBad;
      }
      saw_length = true;
    } else if (iequals(name, "connection") && has_token(value, "close")) {
      r.keep_alive = false;
    }
  }
  if (!saw_length) return ResponseParseStatus::kNoLength;
  out = r;
  return ResponseParseStatus::kComplete;
}

std::string_view query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    std::size_t eq = item.find('=');
    if (item.substr(0, eq) == name) {
      return eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

}  // namespace chokepoint::lab
