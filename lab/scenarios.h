#pragma once
// The scenarios: what GET / does in each, each built to be dominated by one bottleneck.
//
// A Handler is created once per process by make_handler() and shared by every server thread:
// handle() is thread-safe. Handlers own their background threads (group committer, async log
// writer) and files under the data dir; destroying the handler joins those threads and closes the
// files, so destroy it only after the server has stopped calling it.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "lab/options.h"
#include "util/result.h"

namespace chokepoint::lab {

struct Response {
  int status = 200;
  std::string body;
  // A body that outlives the server (bandwidth's precomputed payload); used instead of `body`.
  const std::string* shared_body = nullptr;
  // Answer only after this delay; the server waits on a timer, not on a thread (upstream role).
  std::int64_t delay_ns = 0;

  std::size_t body_size() const { return shared_body ? shared_body->size() : body.size(); }
  std::string_view body_view() const {
    return shared_body ? std::string_view(*shared_body) : std::string_view(body);
  }
};

class Handler {
 public:
  virtual ~Handler() = default;
  // Does one GET / request's work. `query` is the request target after '?' (the key).
  virtual Response handle(std::string_view query) = 0;
  // True when handle() blocks on something other than the CPU (fsync, an upstream, the serial
  // executor), so the epoll model must hand it to a worker pool instead of running it inline.
  virtual bool blocking() const { return false; }
  // Threads that must run the work, whatever --workers says (serial: its executor's size).
  virtual std::optional<int> executor_threads() const { return std::nullopt; }
  // conn-leak: a connection the client closed is never closed by the server (its fd is kept, and
  // never read again, until the server stops), so it stays in CLOSE_WAIT.
  virtual bool keeps_closed_connections() const { return false; }
};

// Builds the handler for options.role / options.scenario. `data_dir` exists and is writable.
// Fails (with a hint) when a file cannot be created or the upstream address is unusable.
util::Result<std::unique_ptr<Handler>> make_handler(const Options& options,
                                                    const std::string& data_dir);

// The body every trivial answer uses (none, backlog, /health).
inline constexpr std::string_view kOkBody = "ok\n";

}  // namespace chokepoint::lab
