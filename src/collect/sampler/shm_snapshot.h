#pragma once
// Shared memory as the target sees it (model/shm.h): the System V segments and kernel.shm* limits
// of its IPC namespace, read on a short-lived thread that entered that namespace when it is not
// ours, and /dev/shm of its mount namespace (statvfs through /proc/PID/root).

#include <optional>
#include <vector>

#include "collect/procfs/proc_fs.h"
#include "collect/sampler/fd_targets.h"
#include "model/shm.h"

namespace chokepoint::collect::sampler {

// pids: the target's processes (the first one's namespaces are read); empty for the whole host,
// whose namespaces are ours. nullopt when nothing could be read. proc must be the real /proc.
// fds_of gives a process's fds (its /dev/shm files).
std::optional<model::ShmSample> take_shm_snapshot(const procfs::ProcFs& proc,
                                                  const std::vector<int>& pids,
                                                  const FdTargetsOf& fds_of);

}  // namespace chokepoint::collect::sampler
