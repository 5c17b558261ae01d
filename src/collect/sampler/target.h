#pragma once
// Which processes a diagnosis watches, re-resolved during the window so that processes and
// threads that come and go are followed.

#include <sys/types.h>

#include <string>
#include <vector>

#include "collect/procfs/proc_fs.h"
#include "util/result.h"
#include "util/scoped_fd.h"

namespace chokepoint::collect::sampler {

struct TargetSpec {
  enum class Kind { kPid, kName, kCgroup, kCommand, kHost };
  Kind kind = Kind::kHost;
  pid_t pid = 0;  // kPid, and kCommand once launched
  // kPid: more processes watched with `pid` (diagnose --pid A --pid B: one tier each); each
  // comes with its descendants when `children` is set.
  std::vector<pid_t> more_pids;
  bool children = false;     // kPid: add descendants (always on for kCommand)
  std::string name;          // kName: matches comm (15 chars) or the executable's basename
  std::string cgroup_path;   // kCgroup: a directory under a cgroup mount, v1 or v2
  std::string command_text;  // kCommand: for reports
};

// "pid", "name", "cgroup", "command", "host".
std::string kind_name(TargetSpec::Kind kind);

// Checks that the target exists now: the pid is alive, the cgroup path is a cgroup directory,
// a name matches at least one process. Errors carry a hint.
util::Result<void> validate(const TargetSpec& spec, const procfs::ProcFs& proc);

// The target's processes now (ascending). An empty list means the target is gone.
util::Result<std::vector<int>> resolve_pids(const TargetSpec& spec, const procfs::ProcFs& proc);

// resolve_pids for a session that asks again and again (the sampler's listing, every 0.5 to 2 s):
// a single process (kPid without children or more pids, on the host's /proc) is held by a pidfd
// (pidfd_open, Linux 5.3+), which polls readable once the process has exited, so a look while it
// runs is one poll(2), not an open and a read of /proc/PID/task/PID/stat (13% of an idle pid
// target's cost in the agent). Once the pidfd says it exited, or without one, the look is
// resolve_pids itself, which also picks up a process that reused the pid, as resolve_pids does.
// One difference: a process whose main thread exited (pthread_exit) while others run stays
// watched while the pidfd holds it (the kernel signals a pidfd when the whole group has exited);
// resolve_pids alone takes the zombie leader as gone.
//
// Thread-safety: one thread uses a resolver.
class TargetResolver {
 public:
  TargetResolver(TargetSpec spec, const procfs::ProcFs& proc);
  // The target's processes now, as resolve_pids.
  util::Result<std::vector<int>> pids();

 private:
  TargetSpec spec_;
  const procfs::ProcFs& proc_;
  bool single_ = false;   // kPid with one process on the host's /proc: the pidfd is tried
  util::ScopedFd pidfd_;  // the process a look found alive (invalid: none, or no pidfd_open)
};

// The file listing a cgroup's processes: cgroup.procs (v2 and v1), else tasks (v1).
std::string cgroup_procs_file(const std::string& cgroup_path);

// The cgroups below `cgroup_path` (not itself) that hold processes now, in path order, at most
// `max_count`: where the services of a parent cgroup that holds none of its own run (a v2
// slice keeps its processes in its children). Unreadable directories are left out.
std::vector<std::string> cgroups_with_processes_below(const std::string& cgroup_path,
                                                      std::size_t max_count);

}  // namespace chokepoint::collect::sampler
