#include "lab/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <optional>

#include "lab/http.h"
#include "lab/server_models.h"
#include "lab/worker_pool.h"
#include "util/scoped_fd.h"

namespace chokepoint::lab {

util::Result<util::ScopedFd> listen_socket(const Options& o) {
  util::ScopedFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return util::errno_error("socket");
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(o.port);
  inet_pton(AF_INET, o.bind_address.c_str(), &addr.sin_addr);
  std::string where = o.bind_address + ":" + std::to_string(o.port);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    return util::errno_error("cannot listen on " + where, err,
                             err == EADDRINUSE ? "the port is in use; pick another --port, or "
                                                 "--port 0 for a free one"
                                               : "check --bind (an address of this host)");
  }
  // listen(2): the kernel silently caps the backlog at net.core.somaxconn.
  if (listen(fd.get(), o.backlog) != 0) return util::errno_error("listen on " + where);
  return fd;
}

std::uint16_t bound_port(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void epoll_add(int ep, int fd, std::uint32_t events, std::uint64_t tag) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = tag;
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

Route route(const Request& req) {
  if (req.method != "GET") return Route::kBadMethod;
  if (req.path == "/") return Route::kWork;
  if (req.path == "/health") return Route::kHealth;
  return Route::kNotFound;
}

Response simple_response(Route r) {
  Response resp;
  switch (r) {
    case Route::kHealth:
      resp.body = kOkBody;
      break;
    case Route::kNotFound:
      resp.status = 404;
      resp.body = "not found\n";
      break;
    default:
      resp.status = 405;
      resp.body = "only GET is served\n";
      break;
  }
  return resp;
}

Response parse_error_response(ParseStatus st) {
  Response resp;
  resp.status = http_status_for(st);
  resp.body = std::string(reason_phrase(resp.status)) + "\n";
  return resp;
}

void accept_loop(int listen_fd, int stop_fd, std::int64_t accept_delay_ms,
                 const std::function<void(int)>& on_conn) {
  set_thread_name("lab-acceptor");
  for (;;) {
    pollfd fds[2] = {{listen_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents) return;
    if (!(fds[0].revents & POLLIN)) continue;
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      // EMFILE and friends: back off instead of spinning on a full queue.
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
        pollfd s{stop_fd, POLLIN, 0};
        poll(&s, 1, 10);
      }
      continue;
    }
    on_conn(fd);
    if (accept_delay_ms > 0) {
      pollfd s{stop_fd, POLLIN, 0};
      if (poll(&s, 1, static_cast<int>(accept_delay_ms)) > 0) return;
    }
  }
}

util::Result<std::unique_ptr<Server>> Server::start(const Options& o, Handler& handler) {
  auto listen_fd = listen_socket(o);
  if (!listen_fd) return listen_fd.error();
  std::optional<int> executor = handler.executor_threads();
  if (o.model == Model::kThreads) {
    // Blocking scenarios need more threads than cores to keep requests in flight, unless the
    // user sized the pool with --workers.
    int pool =
        executor.value_or(handler.blocking() && !o.workers_given ? o.blocking_workers : o.workers);
    return start_threads_server(o, handler, std::move(*listen_fd), pool);
  }
  int pool = handler.blocking() ? executor.value_or(o.blocking_workers) : 0;
  return start_epoll_server(o, handler, std::move(*listen_fd), pool);
}

}  // namespace chokepoint::lab
