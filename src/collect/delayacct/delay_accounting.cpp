#include "collect/delayacct/delay_accounting.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <iostream>

namespace chokepoint::collect::delayacct {
namespace {

// The last-run-out step, with async-signal-safe calls only (the guard runs it in a forked child):
// if no other run holds the lock (it turns exclusive without waiting) and the marker says
// chokepoint switched the setting on, write 0 and remove the marker. Returns whether it restored.
// Converting a flock is not atomic (flock(2)): the shared lock is dropped first; the caller is
// leaving either way.
bool restore_if_last(int lock_fd, const char* marker_path) {
  if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) return false;
  if (access(marker_path, F_OK) != 0) return false;
  const int fd = open(kSysctlPath, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = write(fd, "0\n", 2) == 2;
  close(fd);
  if (ok) unlink(marker_path);
  return ok;
}

// Closes every fd from `from` up, except `keep_a` and `keep_b` (the guard's lock and pipe).
void close_all_but(int keep_a, int keep_b) {
  int lo = keep_a < keep_b ? keep_a : keep_b;
  int hi = keep_a < keep_b ? keep_b : keep_a;
  if (lo > 3) syscall(SYS_close_range, 3u, static_cast<unsigned>(lo - 1), 0u);
  if (hi > lo + 1)
    syscall(SYS_close_range, static_cast<unsigned>(lo + 1), static_cast<unsigned>(hi - 1), 0u);
  syscall(SYS_close_range, static_cast<unsigned>(hi + 1), ~0u, 0u);
}

}  // namespace

int read_setting() {
  std::ifstream in(kSysctlPath);
  int value = -1;
  if (!(in >> value)) return -1;
  return value;
}

std::string DelayAccountingSwitch::default_dir() {
  return access("/run", W_OK) == 0 ? "/run" : "/tmp";
}

DelayAccountingSwitch::DelayAccountingSwitch() : DelayAccountingSwitch(default_dir()) {}

DelayAccountingSwitch::DelayAccountingSwitch(std::string dir) {
  if (geteuid() != 0) return;
  lock_path_ = dir + "/chokepoint-delayacct.lock";
  marker_path_ = dir + "/chokepoint-delayacct.switched";
  lock_fd_ = util::ScopedFd(open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock_fd_.valid()) return;
  // Alone (the lock turns exclusive at once) with a marker: the run that wrote it is gone without
  // restoring the setting, and its guard too.
  if (flock(lock_fd_.get(), LOCK_EX | LOCK_NB) == 0 && access(marker_path_.c_str(), F_OK) == 0) {
    stale_ = true;
    std::ifstream marker(marker_path_);
    long pid = 0;
    marker >> pid;
    std::cerr << "chokepoint: an earlier chokepoint run"
              << (pid > 0 ? " (pid " + std::to_string(pid) + ")" : std::string())
              << " ended without restoring kernel.task_delayacct (it was killed); the setting has "
                 "been "
              << read_setting() << " since; it goes back to 0 when this run ends\n";
  }
  if (flock(lock_fd_.get(), LOCK_SH) != 0) {
    lock_fd_.reset();
    return;
  }
  start_guard();
  if (read_setting() != 0)
    return;  // on already (by an admin, another run, a killed run), or absent
  // The marker first: a run killed between the two steps then leaves a marker and 0 (which the
  // guard or the next run "restores" to 0), never 1 with no marker, which nothing would restore.
  { std::ofstream(marker_path_) << getpid() << "\n"; }
  {
    std::ofstream out(kSysctlPath);
    if (!(out << 1 << std::endl)) {
      unlink(marker_path_.c_str());
      return;
    }
  }
  switched_ = true;
  std::cerr << "chokepoint: switched delay accounting on (kernel.task_delayacct=1); only tasks "
               "started from now on carry its data; the last chokepoint run to end sets it back "
               "to 0\n";
}

void DelayAccountingSwitch::start_guard() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return;
  // Forked twice: the guard is reparented to init at once, so the run never waits for it (at a
  // saturated machine's nice 0 that wait took seconds) and leaves no zombie in a long run.
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return;
  }
  if (pid == 0) {
    if (fork() != 0) _exit(0);
    // The guard: async-signal-safe calls only from here on.
    close(fds[1]);
    setpgid(0, 0);
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGINT, &ignore, nullptr);
    sigaction(SIGTERM, &ignore, nullptr);
    sigaction(SIGHUP, &ignore, nullptr);
    sigaction(SIGPIPE, &ignore, nullptr);
    prctl(PR_SET_NAME, "chokepoint-guard", 0, 0, 0);
    const int null_fd = open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
      dup2(null_fd, 0);
      dup2(null_fd, 1);
      dup2(null_fd, 2);
      if (null_fd > 2) close(null_fd);
    }
    close_all_but(lock_fd_.get(), fds[0]);
    // End of file without the "done" byte: the run died (even before this read began).
    char done = 0;
    ssize_t n = 0;
    do {
      n = read(fds[0], &done, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) restore_if_last(lock_fd_.get(), marker_path_.c_str());
    _exit(0);
  }
  close(fds[0]);
  waitpid(pid, nullptr, 0);  // the intermediate child, which exits at once
  guard_pipe_ = util::ScopedFd(fds[1]);
  guard_started_ = true;
}

DelayAccountingSwitch::~DelayAccountingSwitch() {
  if (!lock_fd_.valid()) return;
  const bool restored = restore_if_last(lock_fd_.get(), marker_path_.c_str());
  if (!restored && switched_) {
    std::cerr << "chokepoint: delay accounting stays on (kernel.task_delayacct=1): another "
                 "chokepoint run still uses it, and the last one to end sets it back to 0\n";
  }
  // The guard shares the lock's open file description: unlock it for both, then tell the guard it
  // has nothing to do (it exits on its own).
  flock(lock_fd_.get(), LOCK_UN);
  if (guard_started_) {
    const char done = 1;
    ssize_t ignored = write(guard_pipe_.get(), &done, 1);
    (void)ignored;
    guard_pipe_.reset();
  }
}

}  // namespace chokepoint::collect::delayacct
