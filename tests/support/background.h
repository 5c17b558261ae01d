#pragma once
// A program a test runs in the background, such as a load generator: output to /dev/null,
// killed (SIGTERM, then SIGKILL) and reaped when the object goes away, so a failed assertion
// never leaks a process. Move-only.

#include <sys/types.h>

#include <string>
#include <vector>

#include "util/result.h"

namespace chokepoint::test_support {

class Background {
 public:
  // Runs `binary args...`; binary is looked up in PATH when it has no '/'.
  static util::Result<Background> start(const std::string& binary,
                                        const std::vector<std::string>& args);
  Background(Background&& other) noexcept;
  Background& operator=(Background&&) = delete;
  Background(const Background&) = delete;
  ~Background();

  pid_t pid() const { return pid_; }
  // Waits for the exit (up to timeout_ms); returns the exit code, or 128 + signal.
  util::Result<int> wait(int timeout_ms);

 private:
  Background() = default;
  pid_t pid_ = -1;
};

}  // namespace chokepoint::test_support
