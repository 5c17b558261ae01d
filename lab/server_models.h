#pragma once
// What the lab's two server models (threads_server.cpp, epoll_server.cpp) share besides server.h:
// the routes, the fixed answers, the accept loop of a slow acceptor, the buffer caps, and each
// model's factory for Server::start. Internal to lab/.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "lab/http.h"
#include "lab/server.h"

namespace chokepoint::lab {

// Read buffer cap per connection: beyond this we stop reading until requests are answered.
constexpr std::size_t kMaxBufferedIn = kMaxHeadBytes + kMaxBodyBytes + std::size_t{64} * 1024;
// Unsent response bytes beyond which a connection stops parsing new requests.
constexpr std::size_t kMaxBufferedOut = 4 << 20;

enum class Route { kWork, kHealth, kNotFound, kBadMethod };

Route route(const Request& req);
// The answer of a route that is not kWork.
Response simple_response(Route r);
Response parse_error_response(ParseStatus st);

// Accepts connections until stop_fd becomes readable, sleeping accept_delay_ms between
// accept() calls (the backlog scenario's slow acceptor). The sleep is a poll on stop_fd, so
// shutdown does not wait for it.
void accept_loop(int listen_fd, int stop_fd, std::int64_t accept_delay_ms,
                 const std::function<void(int)>& on_conn);

// The two models, serving listen_fd; pool_threads is the WorkerPool's size (epoll: 0 for none).
std::unique_ptr<Server> start_threads_server(const Options& options, Handler& handler,
                                             util::ScopedFd listen_fd, int pool_threads);
std::unique_ptr<Server> start_epoll_server(const Options& options, Handler& handler,
                                           util::ScopedFd listen_fd, int pool_threads);

}  // namespace chokepoint::lab
