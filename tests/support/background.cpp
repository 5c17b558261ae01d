#include "support/background.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

extern char** environ;

namespace chokepoint::test_support {

util::Result<Background> Background::start(const std::string& binary,
                                           const std::vector<std::string>& args) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  Background b;
  int rc = posix_spawnp(&b.pid_, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0)
    return util::errno_error("posix_spawnp " + binary, rc, "is it installed? run scripts/setup");
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
