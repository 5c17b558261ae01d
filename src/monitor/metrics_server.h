#pragma once
// The agent's HTTP endpoint (libmicrohttpd): GET /metrics answers with the body a callback makes
// at each scrape (text/plain; version=0.0.4); / answers with a one-line pointer to /metrics;
// anything else is 404, any method but GET and HEAD 405.
//
// Thread-safety: the server answers on its own thread; `body` is called there, so it must be
// safe to call concurrently with whatever else the caller does. The destructor stops the thread.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "util/result.h"

namespace chokepoint::monitor {

struct ListenAddress {
  std::string host;  // an IPv4 address
  std::uint16_t port = 0;
};

// "127.0.0.1:9464". Errors (naming `flag`): not HOST:PORT, a host that is not an IPv4 address, a
// port out of range; with hints.
util::Result<ListenAddress> parse_listen(const std::string& text, const char* flag = "--listen");

class MetricsServer {
 public:
  // Binds and listens (port 0: the kernel picks one), then serves. Errors: the port is in use,
  // the address is not on this machine, no permission; with hints.
  static util::Result<std::unique_ptr<MetricsServer>> start(const ListenAddress& address,
                                                            std::function<std::string()> body);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  std::uint16_t port() const;  // the bound port
  std::uint64_t scrapes() const;

  struct Impl;  // public only so that libmicrohttpd's C callback can reach it

 private:
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace chokepoint::monitor
