#pragma once
// The HTTP/1.1 server of chokepoint-lab, in one of two concurrency models (Options::model):
//
//  threads: one acceptor thread, one thread per connection doing blocking reads and writes, and
//           the scenario's work on a WorkerPool (the connection thread waits for the result).
//  epoll:   --workers event loops sharing one listening socket (EPOLLEXCLUSIVE), edge-triggered
//           connections, handlers inline; blocking handlers go to a WorkerPool whose results come
//           back through each loop's eventfd; delayed answers (upstream role) wait on a timer.
//
// Routes: GET / runs the handler with the query string as key; GET /health answers "ok" inline;
// other paths 404, other methods 405. Keep-alive and pipelining are supported.
// Server::start() binds and listens before returning, so the port is ready when it returns.
// stop() (idempotent, also run by the destructor) stops accepting, closes every connection and
// joins every thread it started. The Handler must outlive the Server.

#include <cstdint>
#include <memory>

#include "lab/options.h"
#include "lab/scenarios.h"
#include "util/result.h"
#include "util/scoped_fd.h"

namespace chokepoint::lab {

class Server {
 public:
  static util::Result<std::unique_ptr<Server>> start(const Options& options, Handler& handler);
  virtual ~Server() = default;

  virtual std::uint16_t port() const = 0;
  // Threads model: the work pool's size; epoll model: the number of event loops.
  virtual int workers() const = 0;
  virtual void stop() = 0;
};

// The non-blocking listening socket both models (and the proxy) serve: --bind, --port (0: the
// kernel picks one), --backlog. Errors carry a hint (port in use, bad address).
util::Result<util::ScopedFd> listen_socket(const Options& options);
// The port a bound socket listens on.
std::uint16_t bound_port(int fd);
// TCP_NODELAY on a connection: the lab answers in one write and waits for nothing.
void set_nodelay(int fd);
// Adds fd to the epoll set ep with `events`, tagged with `tag` (epoll_event.data.u64).
void epoll_add(int ep, int fd, std::uint32_t events, std::uint64_t tag);

}  // namespace chokepoint::lab
