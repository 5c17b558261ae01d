#pragma once
// A real server started for one test: a temporary directory, a free loopback port, and the
// process killed and reaped at the end of the scope (support/background.h).

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

}  // namespace chokepoint::test_support
