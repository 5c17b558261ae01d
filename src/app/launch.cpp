#include "app/launch.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

#include "app/run_budget.h"
#include "util/clock.h"
#include "util/fatal.h"

namespace chokepoint::app {

// A CLOEXEC pipe tells exec failure (the child writes errno into it) from success (the pipe just
// closes).
pid_t launch(const std::vector<std::string>& command) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw util::FatalError(util::errno_error("pipe2"));
  const pid_t parent = getpid();
  // Built before the fork: the child of a multi-threaded process only makes system calls (no
  // allocation, whose lock another thread may have held at the fork).
  const std::optional<int> user_nice = nice_before_raise();
  std::vector<char*> argv;
  argv.reserve(command.size() + 1);
  for (const auto& a : command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0)
    throw util::FatalError(util::errno_error("fork", "the system is out of processes or memory"));
  if (pid == 0) {
    close(fds[0]);
    // Tied to our life: SIGKILL when the thread that forked it (this one) dies, even by SIGKILL.
    // If that happened before prctl, the parent is already gone and nothing would send it.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    // A group of its own, so that reap() ends the command's own children too.
    setpgid(0, 0);
    // The priority the user started chokepoint with, not the one it measures at.
    if (user_nice) setpriority(PRIO_PROCESS, 0, *user_nice);
    // Our stdout carries the report (JSON with --json): the command's output goes to stderr.
    dup2(STDERR_FILENO, STDOUT_FILENO);
    execvp(argv[0], argv.data());
    int e = errno;
    ssize_t ignored = write(fds[1], &e, sizeof e);
    (void)ignored;
    _exit(127);
  }
  close(fds[1]);
  setpgid(pid, pid);  // also here, so that the group exists whichever of the two runs first
  int child_errno = 0;
  ssize_t n = read(fds[0], &child_errno, sizeof child_errno);
  close(fds[0]);
  if (n == static_cast<ssize_t>(sizeof child_errno)) {
    waitpid(pid, nullptr, 0);
    throw util::FatalError(util::errno_error("cannot start '" + command[0] + "'", child_errno,
                                             "check the command's name and that it is executable "
                                             "(it is looked up in PATH)"));
  }
  return pid;
}

namespace {

// The command's process group, or the command alone if it has no group of its own.
void signal_command(pid_t pid, int signal) {
  if (getpgid(pid) != pid || kill(-pid, signal) != 0) kill(pid, signal);
}

enum class ChildState { kRunning, kExited, kGone };

// Whether the command has exited, without reaping it: while its zombie is there, its pid (and so
// its group's id) cannot be reused, and what it left in its group can still be ended safely. kGone:
// it was reaped already (ECHILD).
ChildState child_state(pid_t pid, bool wait) {
  siginfo_t info{};
  const int flags = WEXITED | WNOWAIT | (wait ? 0 : WNOHANG);
  if (waitid(P_PID, static_cast<id_t>(pid), &info, flags) != 0) {
    return errno == ECHILD ? ChildState::kGone : ChildState::kRunning;
  }
  return info.si_pid == pid ? ChildState::kExited : ChildState::kRunning;
}

}  // namespace

void reap(pid_t pid) {
  if (child_state(pid, false) == ChildState::kRunning) {
    signal_command(pid, SIGTERM);
    const std::int64_t deadline = util::monotonic_ns() + 2 * util::kNsPerSec;
    while (child_state(pid, false) == ChildState::kRunning && util::monotonic_ns() < deadline)
      usleep(20'000);
    if (child_state(pid, false) == ChildState::kRunning) {
      signal_command(pid, SIGKILL);
      child_state(pid, true);
    }
  }
  if (child_state(pid, false) == ChildState::kGone) return;
  kill(-pid, SIGKILL);  // what it left in its group
  waitpid(pid, nullptr, 0);
}

}  // namespace chokepoint::app
