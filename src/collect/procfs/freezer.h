#pragma once
// Whether a process's cgroup is frozen, by cgroup v2's freezer (cgroup.freeze; cgroup.events says
// "frozen 1", also for a child of a frozen cgroup) or v1's freezer controller (freezer.state
// FROZEN or FREEZING, the effective state). A frozen task reads as D or S in /proc, in a syscall or
// outside one, and nothing in its own files says why; only its cgroup tells.
//
// Thread-safety: one thread uses a FreezerReader (it caches answers).

#include <cstdint>
#include <map>
#include <string>

#include "collect/procfs/proc_fs.h"

namespace chokepoint::collect::procfs {

class FreezerReader {
 public:
  // Finds the cgroup v2 mount and the v1 freezer mount in root/self/mountinfo; with neither,
  // frozen() is always false.
  explicit FreezerReader(const ProcFs& proc);

  // True when pid's cgroup is frozen or freezing. False when it cannot tell (no freezer, the
  // process is gone, no permission). An answer for one cgroup is reused for kCacheNs, so a target
  // of many processes in one cgroup costs one read of the cgroup per refresh. A process in the
  // root cgroup of each hierarchy is never frozen (the kernel cannot freeze a root: it has no
  // cgroup.freeze, cgroup.events or freezer.state, CFTYPE_NOT_ON_ROOT), and its answer is kept
  // without a read.
  bool frozen(int pid, std::int64_t now_ns);
  // The same for a process whose /proc/PID/cgroup text the caller kept (it moves between cgroups
  // rarely: the sampler reads it again every few seconds, not at every look).
  bool frozen_in(const std::string& cgroup_text, std::int64_t now_ns);
  // A freezer is mounted (v1 or v2): without one, nothing is ever frozen and nothing need be read.
  bool available() const { return !v2_mount_.empty() || !v1_mount_.empty(); }

  static constexpr std::int64_t kCacheNs = 500'000'000;

 private:
  struct Answer {
    bool frozen = false;
    std::int64_t at_ns = 0;
    bool lasting = false;  // no cgroup of it can freeze: kept for good
  };
  // Sets `read_any` when a cgroup's file was read (a cgroup that can freeze).
  bool read_state(const std::string& cgroup_file_text, bool& read_any);
  const ProcFs& proc_;
  std::string v2_mount_, v2_root_;
  std::string v1_mount_, v1_root_;
  // The mount's "/" is the hierarchy's real root, which cannot freeze: its state file is absent
  // (a cgroup namespace's root, which can, has one).
  bool v2_root_unfreezable_ = false, v1_root_unfreezable_ = false;
  std::map<std::string, Answer> cache_;  // keyed by the process's /proc/PID/cgroup text
};

}  // namespace chokepoint::collect::procfs
