#pragma once
// Incremental HTTP/1.1 response parser for the load generator, built on Debian's http-parser
// (libhttp-parser-dev, strict mode; header block capped at 80 KiB by HTTP_MAX_HEADER_SIZE).
// It keeps no body and no headers, only what the generator needs: the status code, whether the
// connection may be reused, and where the response ends. Memory is constant per connection
// whatever the server sends.
//
// Thread-safety: none; one parser per connection.

#include <http_parser.h>

#include <cstddef>
#include <string>

namespace chokepoint::loadgen {

class ResponseParser {
 public:
  enum class State {
    kIncomplete,  // need more bytes
    kComplete,    // one full response parsed
    kParseError,  // the bytes are not valid HTTP/1.1 (bad status line, chunk size, headers too
                  // long)
    kEarlyEof,    // the peer closed before the response was complete
  };

  ResponseParser();
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  // Prepares for the response to a new request. A response to HEAD has no body.
  void reset(bool head_request);

  // Feeds received bytes. Returns kComplete once the final response is parsed (1xx interim
  // responses are skipped); *consumed is then how many of the bytes belonged to it, and any
  // rest was sent unasked. After kComplete, kParseError or kEarlyEof, call reset() first.
  State feed(const char* data, std::size_t len, std::size_t* consumed);
  // Tells the parser the peer closed the connection: completes a response whose body runs to EOF.
  State finish();

  int status() const { return status_; }
  bool keep_alive() const { return keep_alive_; }
  std::size_t body_bytes() const { return body_bytes_; }
  // What went wrong, for kParseError and kEarlyEof.
  std::string error() const;
  // True when no byte of the response arrived yet.
  bool started() const { return started_; }

 private:
  static int on_message_begin(http_parser* p);
  static int on_headers_complete(http_parser* p);
  static int on_body(http_parser* p, const char* at, std::size_t len);
  static int on_message_complete(http_parser* p);

  http_parser parser_{};
  http_parser_settings settings_{};
  State state_ = State::kIncomplete;
  bool head_request_ = false;
  bool started_ = false;
  bool keep_alive_ = false;
  int status_ = 0;
  std::size_t body_bytes_ = 0;
  bool bad_status_ = false;
};

}  // namespace chokepoint::loadgen
