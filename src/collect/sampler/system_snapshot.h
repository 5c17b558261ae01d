#pragma once
// System-wide and cgroup counters as raw samples; model::summarize_system turns two of them into
// rates over a window.

#include <optional>
#include <string>
#include <vector>

#include "collect/procfs/proc_fs.h"
#include "collect/sampler/target.h"
#include "model/samples.h"

namespace chokepoint::collect::sampler {

// Reads the system-wide and cgroup counters (the USE method's utilization, saturation and errors)
// for the target: its network namespace, its cgroup. A member is empty when its file was missing
// or unreadable.
model::SystemSample take_system_snapshot(const procfs::ProcFs& proc, const TargetSpec& target);

// Cores the process may use: its CPU affinity, capped by its cgroup's CPU quota.
double cpus_allowed_for(int pid, const procfs::ProcFs& proc);

}  // namespace chokepoint::collect::sampler
