#include "support/lab_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/spawn.h"
#include "util/clock.h"
#include "util/scoped_fd.h"

namespace chokepoint::test_support {
namespace {

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string read_whole(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Spawned {
  pid_t pid = -1;
  util::ScopedFd stdout_read;
  std::string stderr_path;
};

// The lab with stdout on a pipe and stderr in a fresh temp file.
util::Result<Spawned> spawn(const std::string& binary, const std::vector<std::string>& args) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return util::errno_error("pipe2");
  util::ScopedFd read_end(fds[0]), write_end(fds[1]);
  const char* tmp = std::getenv("TMPDIR");
  std::string err_path = std::string(tmp && *tmp ? tmp : "/tmp") + "/lab-stderr.XXXXXX";
  util::ScopedFd err_fd(mkostemp(err_path.data(), O_CLOEXEC));
  if (!err_fd.valid()) return util::errno_error("mkostemp " + err_path);

  std::vector<std::string> argv{binary};
  argv.insert(argv.end(), args.begin(), args.end());
  auto pid = spawn_process(argv, write_end.get(), err_fd.get());
  if (!pid) {
    unlink(err_path.c_str());
    util::Error e = pid.error();
    e.hint = "build the chokepoint-lab target first";
    return e;
  }
  Spawned s;
  s.pid = *pid;
  s.stdout_read = std::move(read_end);
  s.stderr_path = err_path;
  return s;
}

// Waits for `pid` to exit until `deadline_ns`; returns the decoded status or -1 on timeout.
int wait_until(pid_t pid, std::int64_t deadline_ns) {
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return decode_status(status);
    if (r < 0 && errno != EINTR) return -1;
    if (util::monotonic_ns() >= deadline_ns) return -2;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

util::Result<LabProcess> LabProcess::start(const std::vector<std::string>& args,
                                           const std::string& binary,
                                           std::chrono::milliseconds ready_timeout) {
  auto spawned = spawn(binary, args);
  if (!spawned) return spawned.error();
  LabProcess lab;
  lab.pid_ = spawned->pid;
  lab.stderr_path_ = spawned->stderr_path;

  std::int64_t deadline =
      util::monotonic_ns() +
      std::chrono::duration_cast<std::chrono::nanoseconds>(ready_timeout).count();
  std::string out;
  char buf[512];
  for (;;) {
    std::size_t nl = out.find('\n');
    if (nl != std::string::npos) {
      lab.ready_line_ = out.substr(0, nl);
      break;
    }
    std::int64_t left_ms = (deadline - util::monotonic_ns()) / util::kNsPerMs;
    pollfd p{spawned->stdout_read.get(), POLLIN, 0};
    if (left_ms <= 0 || poll(&p, 1, static_cast<int>(left_ms)) == 0) {
      return util::Error{"chokepoint-lab did not print its ready line within " +
                             std::to_string(ready_timeout.count()) +
                             " ms; stderr: " + lab.stderr_text(),
                         "", 0};
    }
    ssize_t n = read(spawned->stdout_read.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int code = wait_until(lab.pid_, util::monotonic_ns() + util::kNsPerSec);
      if (code >= 0) lab.pid_ = -1;
      return util::Error{"chokepoint-lab exited (status " + std::to_string(code) +
                             ") before it was ready; stderr: " + lab.stderr_text(),
                         "", 0};
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  // "chokepoint-lab listening on ADDR:PORT scenario=..."
  const std::string prefix = "chokepoint-lab listening on ";
  std::size_t colon = lab.ready_line_.find(':', prefix.size());
  std::size_t space = lab.ready_line_.find(' ', prefix.size());
  unsigned port = 0;
  if (lab.ready_line_.rfind(prefix, 0) != 0 || colon == std::string::npos ||
      space == std::string::npos || colon > space ||
      std::from_chars(lab.ready_line_.data() + colon + 1, lab.ready_line_.data() + space, port)
              .ec != std::errc{} ||
      port == 0 || port > 65535) {
    return util::Error{"unexpected ready line: '" + lab.ready_line_ + "'", "", 0};
  }
  lab.port_ = static_cast<std::uint16_t>(port);
  return lab;
}

LabProcess::LabProcess(LabProcess&& other) noexcept
    : pid_(other.pid_),
      port_(other.port_),
      ready_line_(std::move(other.ready_line_)),
      stderr_path_(std::move(other.stderr_path_)),
      exit_code_(other.exit_code_) {
  other.pid_ = -1;
  other.stderr_path_.clear();
}

LabProcess::~LabProcess() {
  if (pid_ > 0) {
    // SIGTERM first, so the lab removes its temp data dir and memory cgroup; SIGKILL if it does
    // not exit within two seconds.
    kill(pid_, SIGTERM);
    if (wait_until(pid_, util::monotonic_ns() + 2 * util::kNsPerSec) == -2) {
      kill(pid_, SIGKILL);
      int status = 0;
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
  if (!stderr_path_.empty()) unlink(stderr_path_.c_str());
}

std::string LabProcess::stderr_text() const {
  return read_whole(stderr_path_);
}

bool LabProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    exit_code_ = decode_status(status);
    pid_ = -1;
    return false;
  }
  return true;
}

util::Result<int> LabProcess::stop(int signal, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) {
    if (exit_code_ >= 0) return exit_code_;
    return util::Error{"the lab is not running", "", 0};
  }
  kill(pid_, signal);
  int code =
      wait_until(pid_, util::monotonic_ns() +
                           std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count());
  if (code == -2) {
    kill(pid_, SIGKILL);
    wait_until(pid_, util::monotonic_ns() + 5 * util::kNsPerSec);
    pid_ = -1;
    return util::Error{"the lab did not exit within " + std::to_string(timeout.count()) +
                           " ms of signal " + std::to_string(signal),
                       "", 0};
  }
  pid_ = -1;
  exit_code_ = code;
  return code;
}

util::Result<ExitResult> run_to_exit(const std::vector<std::string>& args,
                                     const std::string& binary, std::chrono::milliseconds timeout) {
  auto spawned = spawn(binary, args);
  if (!spawned) return spawned.error();
  std::int64_t deadline =
      util::monotonic_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
  ExitResult result;
  char buf[4096];
  // Drain stdout while waiting, so a long --help cannot block the child on a full pipe.
  for (;;) {
    std::int64_t left_ms = (deadline - util::monotonic_ns()) / util::kNsPerMs;
    pollfd p{spawned->stdout_read.get(), POLLIN, 0};
    if (left_ms <= 0 || poll(&p, 1, static_cast<int>(left_ms)) == 0) break;
    ssize_t n = read(spawned->stdout_read.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.stdout_text.append(buf, static_cast<std::size_t>(n));
  }
  result.exit_code = wait_until(spawned->pid, deadline);
  if (result.exit_code == -2) {
    kill(spawned->pid, SIGKILL);
    wait_until(spawned->pid, util::monotonic_ns() + 5 * util::kNsPerSec);
    unlink(spawned->stderr_path.c_str());
    return util::Error{"the process did not exit in time", "", 0};
  }
  result.stderr_text = read_whole(spawned->stderr_path);
  unlink(spawned->stderr_path.c_str());
  return result;
}

}  // namespace chokepoint::test_support
