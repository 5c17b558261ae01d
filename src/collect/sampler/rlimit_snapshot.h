#pragma once
// The resource limits of the target's processes against their use (model/rlimits.h), read from
// /proc/PID/limits and /proc/PID/status. Counting the tasks of a uid (RLIMIT_NPROC's use) reads
// the status of every process on the host, a few milliseconds: the sampler takes it at the
// window's end only.

#include <optional>
#include <vector>

#include "collect/procfs/proc_fs.h"
#include "model/rlimits.h"

namespace chokepoint::collect::sampler {

// pids: the target's processes (at most the first kMaxProcesses are read; empty for the whole
// host, which has no process to read). nullopt when none could be read.
inline constexpr std::size_t kRlimitMaxProcesses = 64;
std::optional<model::RlimitSample> take_rlimit_snapshot(const procfs::ProcFs& proc,
                                                        const std::vector<int>& pids);

}  // namespace chokepoint::collect::sampler
