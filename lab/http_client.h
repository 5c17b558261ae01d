#pragma once
// A minimal blocking HTTP/1.1 client over one kept-alive TCP connection: what the upstream
// scenario uses to call its upstream, and what tests use to call the lab.
//
// Not thread-safe: one HttpClient per thread. It connects lazily, reuses the connection while the
// server keeps it alive, and reconnects once when a kept-alive connection turns out to be closed.
// Every call is bounded by a timeout. Responses must carry Content-Length (the lab's always do).

#include <cstdint>
#include <string>

#include "util/result.h"
#include "util/scoped_fd.h"

namespace chokepoint::lab {

struct HttpResponse {
  int status = 0;
  std::string body;
  bool keep_alive = true;  // false when the server said "Connection: close"
};

class HttpClient {
 public:
  HttpClient(std::string host, std::uint16_t port) : host_(std::move(host)), port_(port) {}

  // Sends "GET target" and reads the whole response, within timeout_ms.
  util::Result<HttpResponse> get(const std::string& target, std::int64_t timeout_ms,
                                 bool keep_alive = true);

  // Split halves of get(), for callers that overlap several connections (send all, then read all).
  util::Result<void> send_get(const std::string& target, std::int64_t timeout_ms,
                              bool keep_alive = true);
  util::Result<HttpResponse> read_response(std::int64_t timeout_ms);

  // Sends raw bytes on the connection (connecting first if needed); tests use it for garbage.
  util::Result<void> send_raw(const std::string& bytes, std::int64_t timeout_ms);

  void close() { fd_.reset(); }
  bool connected() const { return fd_.valid(); }

 private:
  util::Result<void> connect_now(std::int64_t deadline_ns);
  util::Result<void> write_all(const char* data, std::size_t size, std::int64_t deadline_ns);

  std::string host_;
  std::uint16_t port_;
  util::ScopedFd fd_;
  std::string buffer_;   // bytes received beyond the last response
  bool reused_ = false;  // the connection already served a response
};

}  // namespace chokepoint::lab
