#include "lab/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include "lab/http.h"
#include "util/clock.h"

namespace chokepoint::lab {
namespace {

int ms_left(std::int64_t deadline_ns) {
  std::int64_t left = deadline_ns - util::monotonic_ns();
  if (left <= 0) return 0;
  return static_cast<int>((left + util::kNsPerMs - 1) / util::kNsPerMs);
}

util::Error timeout_error(const std::string& what) {
  return util::Error{what + ": timed out", "the server is slow or stuck; raise the timeout", 0};
}

}  // namespace

util::Result<void> HttpClient::connect_now(std::int64_t deadline_ns) {
  buffer_.clear();
  reused_ = false;
  util::ScopedFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return util::errno_error("socket");
  int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port_);
  if (inet_pton(AF_INET, host_.c_str(), &addr.sin_addr) != 1) {
    return util::Error{"'" + host_ + "' is not an IPv4 address", "pass e.g. 127.0.0.1", 0};
  }
  std::string where = host_ + ":" + std::to_string(port_);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINPROGRESS) return util::errno_error("connect to " + where);
    pollfd p{fd.get(), POLLOUT, 0};
    int n = poll(&p, 1, ms_left(deadline_ns));
    if (n == 0) return timeout_error("connect to " + where);
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (n < 0 || err != 0) {
      return util::errno_error("connect to " + where, n < 0 ? errno : err,
                               "is the server running on that address?");
    }
  }
  fd_ = std::move(fd);
  return {};
}

util::Result<void> HttpClient::write_all(const char* data, std::size_t size,
                                         std::int64_t deadline_ns) {
  while (size > 0) {
    ssize_t n = ::send(fd_.get(), data, size, MSG_NOSIGNAL);
    if (n > 0) {
      data += n;
      size -= static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd_.get(), POLLOUT, 0};
      if (poll(&p, 1, ms_left(deadline_ns)) <= 0) return timeout_error("send");
      continue;
    }
    return util::errno_error("send");
  }
  return {};
}

util::Result<void> HttpClient::send_raw(const std::string& bytes, std::int64_t timeout_ms) {
  std::int64_t deadline = util::monotonic_ns() + timeout_ms * util::kNsPerMs;
  if (!fd_.valid()) {
    auto c = connect_now(deadline);
    if (!c) return c.error();
  }
  return write_all(bytes.data(), bytes.size(), deadline);
}

util::Result<void> HttpClient::send_get(const std::string& target, std::int64_t timeout_ms,
                                        bool keep_alive) {
  std::int64_t deadline = util::monotonic_ns() + timeout_ms * util::kNsPerMs;
  std::string request = "GET " + target + " HTTP/1.1\r\nHost: " + host_ + "\r\n";
  if (!keep_alive) request += "Connection: close\r\n";
  request += "\r\n";
  if (!fd_.valid()) {
    auto c = connect_now(deadline);
    if (!c) return c.error();
  }
  return write_all(request.data(), request.size(), deadline);
}

util::Result<HttpResponse> HttpClient::read_response(std::int64_t timeout_ms) {
  std::int64_t deadline = util::monotonic_ns() + timeout_ms * util::kNsPerMs;
  if (!fd_.valid()) return util::Error{"read_response: not connected", "call send_get first", 0};
  char chunk[16384];
  for (;;) {
    ResponseHead head;
    switch (parse_response_head(buffer_, head)) {
      case ResponseParseStatus::kBad:
        fd_.reset();
        return util::Error{"malformed response head", "", 0};
      case ResponseParseStatus::kNoLength:
        fd_.reset();
        return util::Error{"response without Content-Length", "", 0};
      case ResponseParseStatus::kComplete:
        if (buffer_.size() >= head.head_bytes + head.content_length) {
          HttpResponse resp;
          resp.status = head.status;
          resp.keep_alive = head.keep_alive;
          resp.body = buffer_.substr(head.head_bytes, head.content_length);
          buffer_.erase(0, head.head_bytes + head.content_length);
          reused_ = true;
          if (!resp.keep_alive) fd_.reset();
          return resp;
        }
        break;
      case ResponseParseStatus::kIncomplete:
        break;
    }
    ssize_t n = ::recv(fd_.get(), chunk, sizeof(chunk), 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (poll(&p, 1, ms_left(deadline)) <= 0) {
        fd_.reset();
        return timeout_error("waiting for the response");
      }
      continue;
    }
    int err = n == 0 ? ECONNRESET : errno;
    fd_.reset();
    return util::errno_error(n == 0 ? "connection closed before the response" : "recv", err);
  }
}

util::Result<HttpResponse> HttpClient::get(const std::string& target, std::int64_t timeout_ms,
                                           bool keep_alive) {
  bool was_reused = fd_.valid() && reused_;
  auto sent = send_get(target, timeout_ms, keep_alive);
  if (sent) {
    auto resp = read_response(timeout_ms);
    if (resp || !was_reused) return resp;
  } else if (!was_reused) {
    return sent.error();
  }
  // The server may have closed an idle kept-alive connection: retry once on a fresh one.
  fd_.reset();
  auto again = send_get(target, timeout_ms, keep_alive);
  if (!again) return again.error();
  return read_response(timeout_ms);
}

}  // namespace chokepoint::lab
