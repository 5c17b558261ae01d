#pragma once
// A small, strict HTTP/1.1 request parser and the response framing chokepoint-lab writes.
//
// The parser is incremental over a caller-owned buffer: call parse_request() on the bytes received
// so far; it either needs more bytes, rejects the request, or returns one complete request and how
// many bytes it occupied (head plus any Content-Length body, which the lab ignores). Views in
// Request point into the caller's buffer and stay valid until the caller consumes those bytes.
// Pure functions, no state: safe from any thread.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace chokepoint::lab {

// Limits on what a client may send. Requests beyond them are rejected, never buffered.
inline constexpr std::size_t kMaxHeadBytes = 8 * 1024;   // request line + headers + blank line
inline constexpr std::size_t kMaxBodyBytes = 64 * 1024;  // Content-Length bodies are read, ignored
inline constexpr std::size_t kMaxHeaders = 64;

struct Request {
  std::string_view method;  // e.g. "GET"
  std::string_view target;  // origin-form, e.g. "/?k=1"
  std::string_view path;    // target up to '?', e.g. "/"
  std::string_view query;   // after '?', without it; empty when none
  int version_minor = 1;    // HTTP/1.<minor>, 0 or 1
  bool keep_alive = true;   // false for "Connection: close" or HTTP/1.0 without keep-alive
  std::size_t content_length = 0;
};

enum class ParseStatus {
  kComplete,        // one request parsed; `consumed` bytes belong to it
  kIncomplete,      // need more bytes (the head or the body is not all here yet)
  kBad,             // malformed: answer 400 and close
  kTooLarge,        // head over kMaxHeadBytes or too many headers: answer 431 and close
  kBodyTooLarge,    // Content-Length over kMaxBodyBytes: answer 413 and close
  kNotImplemented,  // Transfer-Encoding or an HTTP version other than 1.0/1.1: 501 and close
};

struct ParseResult {
  ParseStatus status = ParseStatus::kIncomplete;
  std::size_t consumed = 0;  // valid when status == kComplete
};

// Parses the first request in `buffer`. Rejected (kBad): bare LF line endings, obsolete line
// folding, control characters, malformed tokens, and conflicting duplicate Content-Length headers
// (RFC 9112 section 6.3). Tolerated: a missing Host (the lab serves one site) and empty lines
// before the request line (RFC 9112 section 2.2).
ParseResult parse_request(std::string_view buffer, Request& out);

// Status code and reason phrase for the error statuses above (400, 413, 431, 501).
int http_status_for(ParseStatus status);
std::string_view reason_phrase(int status);

// Appends a response head: status line, Content-Length, Content-Type text/plain, and
// "Connection: close" when !keep_alive. No allocation when `out` has capacity.
void append_response_head(std::string& out, int status, std::size_t content_length,
                          bool keep_alive);

// A response head as the lab writes it (and any HTTP/1.x server that sends Content-Length):
// what a client of the lab needs from it. Shared by HttpClient (blocking) and the proxy's
// non-blocking upstream connections.
struct ResponseHead {
  int status = 0;
  std::size_t head_bytes = 0;  // status line + headers + the blank line
  std::size_t content_length = 0;
  bool keep_alive = true;  // false when the server said "Connection: close"
};

enum class ResponseParseStatus {
  kComplete,    // the head is all here; the body is `content_length` bytes after `head_bytes`
  kIncomplete,  // need more bytes
  kBad,         // not "HTTP/1.x NNN", or a head over kMaxHeadBytes
  kNoLength,    // no Content-Length (the lab's clients read only length-framed bodies)
};

// Parses the response head at the start of `buffer`. Header names are matched case-insensitively
// (RFC 9110 section 5.1).
ResponseParseStatus parse_response_head(std::string_view buffer, ResponseHead& out);

// Returns the value of `name` in a query string "a=1&b=2"; empty when absent.
std::string_view query_param(std::string_view query, std::string_view name);

}  // namespace chokepoint::lab
