#pragma once
// Test harness for chokepoint load / usl integration tests: runs the chokepoint binary with a
// deadline, starts Debian's nginx on a free loopback port with a generated config, and runs a
// small hostile HTTP server in a thread. Everything is loopback-only and bounded in time; every
// owner (NginxServer, HostileServer) stops its server in its destructor.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace chokepoint::loadtest {

struct RunResult {
  int exit_code = -1;  // -1 when killed at the deadline
  std::string out;
  std::string err;
  double wall_s = 0;
  double cpu_s = 0;     // user + system time of the child
  long max_rss_kb = 0;  // ru_maxrss
  bool timed_out = false;
};

// Runs argv[0] (a path) with argv; kills it after `deadline`. If `shell_prefix` is not empty the
// command runs as `sh -c '<shell_prefix>; exec "$@"' sh argv...` (e.g. "ulimit -n 100").
RunResult run(const std::vector<std::string>& argv, std::chrono::milliseconds deadline,
              const std::string& shell_prefix = "");

std::string chokepoint_binary();

// A TCP port on 127.0.0.1 that was free a moment ago.
std::uint16_t free_port();

class NginxServer {
 public:
  // Starts nginx (daemon off, one worker) serving:
  //   /         200 "hello\n"
  //   /a, /b    200 "a\n" / "b\n"
  //   /missing  404
  //   /error    500
  // with an access log of "$uri $status $http_traceparent $server_protocol" lines. Returns false
  // (and a reason) when nginx is missing or does not come up within 5 s. keepalive_requests: how
  // many requests nginx serves on one connection before it answers with "Connection: close". h2:
  // serve HTTP/2 over cleartext (prior knowledge) instead of HTTP/1.1.
  bool start(std::string* why, int keepalive_requests = 1000000, bool h2 = false);
  ~NginxServer();
  std::uint16_t port() const { return port_; }
  std::string url(const std::string& path) const;
  // The access log's lines so far (nginx writes them unbuffered with our config).
  std::vector<std::string> access_log() const;

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::string dir_;
};

// A deliberately broken HTTP server on 127.0.0.1, one thread per connection.
class HostileServer {
 public:
  enum class Mode {
    kResetMidBody,    // sends half a response, then RST
    kGarbageStatus,   // "GARBAGE" instead of a status line
    kEndlessHeaders,  // headers that never end
    kBadChunked,      // an invalid chunk size
    kInfiniteBody,    // a body that never ends
    kSlowLoris,       // a valid response at 1 byte per second
    kSilent,          // reads the request, never answers
    kDelay,           // answers 200 after delay_ms per request (keep-alive)
  };
  explicit HostileServer(Mode mode, int delay_ms = 0);
  ~HostileServer();
  bool ok() const { return listen_fd_ >= 0; }
  std::uint16_t port() const { return port_; }
  std::string url() const;
  std::uint64_t connections() const { return connections_.load(); }

 private:
  void accept_loop();
  void serve(int fd);

  Mode mode_;
  int delay_ms_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> connections_{0};
  std::thread acceptor_;
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Worker> workers_;  // only the acceptor thread touches it until the destructor
};

}  // namespace chokepoint::loadtest
