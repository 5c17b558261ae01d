#pragma once
// A real server started for one test: a temporary directory, a free loopback port, and the
// process killed and reaped at the end of the scope (support/background.h).

#include <sys/types.h>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "support/background.h"
#include "support/files.h"

namespace chokepoint::test_support {

// A TCP port on 127.0.0.1 that nothing listens on now.
std::uint16_t free_loopback_port();
// Waits until 127.0.0.1:port accepts, up to timeout_ms.
bool wait_for_port(std::uint16_t port, int timeout_ms);
// Waits until `path` exists, up to timeout_ms.
bool wait_for_path(const std::string& path, int timeout_ms);
// Runs a command to completion (bounded by timeout_ms); returns its exit code, or -1.
int run_command(const std::vector<std::string>& argv, int timeout_ms);
// Connects to 127.0.0.1:port, sends `bytes`, half-closes and reads until the server closes, all
// within timeout_ms. For driving a text protocol (memcached) from a test.
bool send_and_drain(std::uint16_t port, const std::string& bytes, int timeout_ms);
// The first of these paths that is executable, or empty.
std::string find_program(const std::vector<std::string>& candidates);

// A throwaway PostgreSQL 15 cluster: initdb as the postgres user (the server refuses root) into
// a temporary directory, Unix socket only (in that directory, port 5432), fsync off. `auth` is
// initdb's -A: "trust" for the test's own sessions as root, "peer" to test peer authentication.
// Fast shutdown at the end of the scope, before the directory goes.
class PostgresServer {
 public:
  PostgresServer() = default;
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;
  // Fails the test (ADD_FAILURE) and returns false when it cannot start.
  // fsync: on for a test that measures commits (the WAL flush is the point), off otherwise.
  // settings: more "name=value" server settings (-c), e.g. shared_preload_libraries.
  bool start(const std::string& auth = "trust", bool fsync = false,
             const std::vector<std::string>& settings = {});
  std::string data() const { return dir.path + "/data"; }
  std::string conninfo() const;
  pid_t pid() const { return server_ ? server_->pid() : -1; }
  // Runs `argv` as the postgres user (setpriv), to completion within timeout_ms.
  int run_as_postgres(std::vector<std::string> argv, int timeout_ms) const;
  TempDir dir{"chokepoint-pg"};

 private:
  std::optional<Background> server_;
};

}  // namespace chokepoint::test_support
