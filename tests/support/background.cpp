#include "support/background.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "support/spawn.h"

namespace chokepoint::test_support {

util::Result<Background> Background::start(const std::string& binary,
                                           const std::vector<std::string>& args) {
  std::vector<std::string> argv{binary};
  argv.insert(argv.end(), args.begin(), args.end());
  auto pid = spawn_process(argv);
  if (!pid) {
    util::Error e = pid.error();
    e.hint = "is it installed? run scripts/setup";
    return e;
  }
  Background b;
  b.pid_ = *pid;
  return b;
}

Background::Background(Background&& other) noexcept : pid_(other.pid_) {
  other.pid_ = -1;
}

util::Result<int> Background::wait(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (pid_ > 0) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (std::chrono::steady_clock::now() >= deadline)
      return util::Error{"timed out waiting for exit", "", ETIMEDOUT};
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return util::Error{"not running", "", ECHILD};
}

Background::~Background() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  if (!wait(2000)) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

}  // namespace chokepoint::test_support
