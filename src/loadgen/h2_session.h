#pragma once
// The HTTP/2 transport of `chokepoint load`: h2c with prior knowledge (RFC 9113 section 3.3)
// through nghttp2, one stream in flight per connection, like HTTP/1.1. An H2Session turns a
// request into frames and frames into a response status; it does no I/O: load.cpp's connection
// code sends what drain() gives and feeds receive() what it reads.
//
// Thread-safety: none; an H2Client and its sessions belong to one load thread.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "loadgen/load.h"
#include "util/result.h"

struct nghttp2_session;
struct nghttp2_session_callbacks;

namespace chokepoint::loadgen {

// A request's header fields, names lower-case (RFC 9113 section 8.2), traceparent not included.
using H2Fields = std::vector<std::pair<std::string, std::string>>;

// The fields for one URL: the pseudo-headers, a user-agent and content-type unless the options'
// headers give them, content-length for a body; connection-specific headers are left out.
H2Fields prepare_h2_fields(const LoadOptions& options, const RequestTemplate& request);

class H2Session {
 public:
  ~H2Session();
  H2Session(const H2Session&) = delete;
  H2Session& operator=(const H2Session&) = delete;

  // Queues one request as a new stream (the client preface and SETTINGS first, on a new session).
  // body must outlive the stream. Returns the stream id, or a negative nghttp2 error code.
  std::int32_t submit(const H2Fields& fields, const std::string& traceparent,
                      const std::string& body);
  // Appends to out the bytes nghttp2 has to send. Returns 0, or a negative nghttp2 error code.
  int drain(std::string& out);
  // Feeds bytes read from the peer. Returns a negative nghttp2 error code on failure.
  ssize_t receive(const char* data, std::size_t len);

  // The stream of the last submit(): whether it closed, its :status (0 before a final one), and
  // the error code it closed with (0: none).
  bool stream_closed() const { return stream_.closed; }
  int status() const { return stream_.status; }
  std::uint32_t stream_error() const { return stream_.error; }
  bool stream_protocol_error() const;  // closed with PROTOCOL_ERROR
  std::string stream_error_text() const;
  bool wants_read() const;
  bool wants_write() const;

  // nghttp2's text for a negative error code.
  static const char* error_text(int code);

  // The stream in flight, as nghttp2's callbacks (h2_session.cpp) see it.
  struct Stream {
    std::int32_t id = -1;
    int status = 0;
    bool closed = false;
    std::uint32_t error = 0;
    const std::string* body = nullptr;
    std::size_t body_off = 0;
  };

 private:
  friend class H2Client;
  H2Session() = default;

  nghttp2_session* session_ = nullptr;
  Stream stream_;
};

// The callbacks every session of one load thread shares.
class H2Client {
 public:
  static util::Result<H2Client> create();
  H2Client(H2Client&& other) noexcept : callbacks_(std::exchange(other.callbacks_, nullptr)) {}
  H2Client& operator=(H2Client&&) = delete;
  H2Client(const H2Client&) = delete;
  H2Client& operator=(const H2Client&) = delete;
  ~H2Client();

  // A new client session; nullptr when nghttp2 cannot make one (out of memory).
  std::unique_ptr<H2Session> open() const;

 private:
  H2Client() = default;
  nghttp2_session_callbacks* callbacks_ = nullptr;
};

}  // namespace chokepoint::loadgen
