#pragma once
// Starts symbolize_test_helper (or a copy of it) and reads the addresses it prints. The child
// lives until the object is destroyed or stop() is called; it exits by itself after 120 s.
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>

namespace chokepoint::symbolize::testing {

class ChildProcess {
 public:
  // Runs `path`. With a non-empty `root_dir` (needs root), the child first enters a mount
  // namespace whose root is `root_dir`, as a container's is (pivot_root, old root detached), and
  // `path` is relative to that root; `root_dir` must hold an empty directory "old".
  // With a non-zero `run_as`, the child drops to that uid and gid before exec (needs root).
  ChildProcess(const std::string& path, const std::string& root_dir = {}, uid_t run_as = 0) {
    const std::string old_root = root_dir + "/old";
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], STDIN_FILENO);
      ::dup2(out[1], STDOUT_FILENO);
      if (!root_dir.empty() && !enter_root(root_dir.c_str(), old_root.c_str())) _exit(126);
      if (run_as != 0 && !drop_to(run_as)) _exit(125);
      char* const argv[] = {const_cast<char*>(path.c_str()), nullptr};
      ::execv(path.c_str(), argv);
      _exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    stdin_fd_ = in[1];
    stdout_fd_ = out[0];
    read_values();
  }
  ~ChildProcess() { stop(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool ready() const { return ready_; }
  pid_t pid() const { return pid_; }
  std::uint64_t value(const std::string& key) const {
    auto it = values_.find(key);
    return it == values_.end() ? 0 : std::strtoull(it->second.c_str(), nullptr, 0);
  }

  // Ends the child and reaps it.
  void stop() {
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    if (stdout_fd_ >= 0) ::close(stdout_fd_);
    stdin_fd_ = stdout_fd_ = -1;
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

 public:
  // Drops every privilege to `uid` (also as gid): for checks of what a non-root user gets.
  static bool drop_to(uid_t uid) {
    return ::setgroups(0, nullptr) == 0 && ::setgid(uid) == 0 && ::setuid(uid) == 0;
  }

 private:
  static bool enter_root(const char* dir, const char* old_root) {
    return ::unshare(CLONE_NEWNS) == 0 &&
           ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
           ::mount(dir, dir, nullptr, MS_BIND, nullptr) == 0 &&
           ::syscall(SYS_pivot_root, dir, old_root) == 0 && ::chdir("/") == 0 &&
           ::umount2("/old", MNT_DETACH) == 0;
  }

  // Reads "key=value" lines until "ready", for at most 10 s.
  void read_values() {
    std::string buffer;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd pfd{stdout_fd_, POLLIN, 0};
      if (::poll(&pfd, 1, 200) <= 0) continue;
      char chunk[512];
      const ssize_t n = ::read(stdout_fd_, chunk, sizeof chunk);
      if (n <= 0) return;
      buffer.append(chunk, static_cast<std::size_t>(n));
      std::size_t eol;
      while ((eol = buffer.find('\n')) != std::string::npos) {
        const std::string line = buffer.substr(0, eol);
        buffer.erase(0, eol + 1);
        if (line == "ready") {
          ready_ = true;
          return;
        }
        const std::size_t eq = line.find('=');
        if (eq != std::string::npos) values_[line.substr(0, eq)] = line.substr(eq + 1);
      }
    }
  }

  pid_t pid_ = -1;
  int stdin_fd_ = -1, stdout_fd_ = -1;
  bool ready_ = false;
  std::map<std::string, std::string> values_;
};

}  // namespace chokepoint::symbolize::testing
