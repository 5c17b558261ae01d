#pragma once
// Starts chokepoint-lab (or another build of it) as a child process for a test, waits for its
// ready line, and stops it. Reusable by every test that needs a real service to look at.
//
//   auto lab = LabProcess::start({"--scenario", "cpu", "--port", "0"});
//   ASSERT_TRUE(lab) << lab.error().message;
//   http_get(lab->port(), "/?k=1");
//   EXPECT_EQ(*lab->stop(), 0);
//
// Ownership: a LabProcess owns its child; if it is still running, the destructor sends SIGTERM
// (so the lab removes its temp data dir and cgroup), then SIGKILL after 2 s, and reaps it, so a
// failed assertion never leaks a server. Move-only, not thread-safe.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "util/result.h"

namespace chokepoint::test_support {

// build/bin/chokepoint-lab of the build the test belongs to. CHOKEPOINT_BIN_DIR is defined for
// every test target by chokepoint_add_test(), so this resolves in the test's translation unit.
#ifdef CHOKEPOINT_BIN_DIR
inline std::string default_lab_binary() {
  return std::string(CHOKEPOINT_BIN_DIR) + "/chokepoint-lab";
}
#endif

class LabProcess {
 public:
  // Runs `binary args...` with stdout on a pipe and stderr in a temp file; waits until the child
  // prints "chokepoint-lab listening on ADDR:PORT ..." or `ready_timeout` passes. Fails (and
  // kills the child) when it exits first or never gets ready; the error carries its stderr.
  static util::Result<LabProcess> start(
      const std::vector<std::string>& args, const std::string& binary,
      std::chrono::milliseconds ready_timeout = std::chrono::seconds(15));
#ifdef CHOKEPOINT_BIN_DIR
  static util::Result<LabProcess> start(
      const std::vector<std::string>& args,
      std::chrono::milliseconds ready_timeout = std::chrono::seconds(15)) {
    return start(args, default_lab_binary(), ready_timeout);
  }
#endif

  LabProcess(LabProcess&& other) noexcept;
  LabProcess& operator=(LabProcess&&) = delete;
  LabProcess(const LabProcess&) = delete;
  ~LabProcess();

  std::uint16_t port() const {
    return port_;
  }
  pid_t pid() const {
    return pid_;
  }
  const std::string& ready_line() const {
    return ready_line_;
  }
  // Everything the child wrote to stderr so far.
  std::string stderr_text() const;
  // True while the child has not exited (reaps it if it has).
  bool running();

  // Sends `signal` (SIGTERM by default) and waits up to `timeout` for the exit. Returns the exit
  // code, or 128 + signal number when a signal killed it. On timeout it kills the child with
  // SIGKILL and returns an error.
  util::Result<int> stop(int signal = 15,
                         std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  LabProcess() = default;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::string ready_line_;
  std::string stderr_path_;
  int exit_code_ = -1;
};

// The result of running the binary to completion (for flag errors and --help).
struct ExitResult {
  int exit_code = -1;  // or 128 + signal
  std::string stdout_text;
  std::string stderr_text;
};

// Runs `binary args...` and waits up to `timeout` for it to exit (SIGKILL and an error after).
util::Result<ExitResult> run_to_exit(const std::vector<std::string>& args,
                                     const std::string& binary,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace chokepoint::test_support
