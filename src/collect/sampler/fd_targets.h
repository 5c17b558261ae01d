#pragma once
// What the snapshots of a window's close (tcp_table.h, shm_snapshot.h) learn about a process's
// open fds: the sampler's copy of /proc/PID/fd, read again only when the table's size moved (a
// readlink per fd is most of what those snapshots cost on a target with many fds).

#include <functional>
#include <vector>

#include "collect/procfs/proc_fs.h"

namespace chokepoint::collect::sampler {

// The fds of process `pid`, or nullptr when it is gone or cannot be read. The pointer is valid
// until the next call.
using FdTargetsOf = std::function<const std::vector<procfs::FdEntry>*(int pid)>;

}  // namespace chokepoint::collect::sampler
