#pragma once
// Switching kernel.task_delayacct on for a chokepoint run, and back to 0 when the last run ends,
// even when that run is killed with SIGKILL.
//
// kernel.task_delayacct is one switch for the whole machine (off by default since 5.14), and only
// tasks started after it is on carry delay accounting data. Several chokepoint runs may overlap:
// each holds a shared flock on a lock file for its lifetime; a marker file records that chokepoint
// (not the administrator) switched it on; the last run out (the one that can turn its lock
// exclusive) restores 0 when the marker is there.
//
// A run that is killed cannot restore anything, so every run that holds the lock also starts a
// guard: a small process (forked twice, so init is its parent) in a process group of its own (a
// terminal's Ctrl-C or a kill of the run's group does not reach it) that waits on a pipe from the
// run. When the pipe closes without the run's "done" byte, the run died: the guard does the
// last-run-out check in its place, then exits. If the guard was killed too, the next run finds the
// marker with no run alive, says so, and restores 0 at its own end.
//
// Thread-safety: one thread owns a DelayAccountingSwitch. Construct it before starting threads
// (it forks; the guard uses only async-signal-safe calls, so a stray thread is harmless anyway).

#include <sys/types.h>

#include <string>

#include "util/scoped_fd.h"

namespace chokepoint::collect::delayacct {

inline constexpr const char* kSysctlPath = "/proc/sys/kernel/task_delayacct";

// The setting now: 0, 1, or -1 when this kernel has none.
int read_setting();

class DelayAccountingSwitch {
 public:
  // As root: switches it on if it is 0, prints what it did on stderr, and starts the guard. Not
  // root: does nothing (the sampler reports delay accounting as unavailable). `dir` holds the
  // lock and marker files: /run (root's tmpfs) when writable, else /tmp.
  DelayAccountingSwitch();
  explicit DelayAccountingSwitch(std::string dir);
  ~DelayAccountingSwitch();  // restores 0 if this is the last run out and chokepoint switched it
  DelayAccountingSwitch(const DelayAccountingSwitch&) = delete;
  DelayAccountingSwitch& operator=(const DelayAccountingSwitch&) = delete;

  bool switched_by_this_run() const { return switched_; }
  // A run before this one was killed and left the setting on (its marker with no run alive).
  bool found_stale_marker() const { return stale_; }

  static std::string default_dir();

 private:
  void start_guard();
  util::ScopedFd lock_fd_;
  util::ScopedFd guard_pipe_;  // write end; the guard reads the other
  bool guard_started_ = false;
  std::string lock_path_;
  std::string marker_path_;
  bool switched_ = false;
  bool stale_ = false;
};

}  // namespace chokepoint::collect::delayacct
