#pragma once
// System-wide and cgroup counters as raw samples; model::summarize_system turns two of them into
// rates over a window.

#include <cstdint>
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
//
// reuse_ns > 0: the host-wide counters (CPU, memory, vmstat, disks, PSI, file handles) are shared
// by the calls of this process (the agent's targets read them at the same instants, on one clock
// grid): a call within reuse_ns of the last host read of the same /proc takes that read, and the
// sample's at_ns is that read's time. So are the network counters (snmp, netstat, sockstat), per
// network namespace: a call within reuse_ns of the last reading of the target's namespace (found
// by the inode of /proc/PID/ns/net) takes that reading. The cgroup is read anew.
// 0: reads of its own. Thread-safe.
model::SystemSample take_system_snapshot(const procfs::ProcFs& proc, const TargetSpec& target,
                                         std::int64_t reuse_ns = 0);

// Tasks runnable now (/proc/loadavg), nullopt when unreadable. reuse_ns > 0: shared as above (the
// last sample of this process within reuse_ns of now). Thread-safe.
std::optional<std::uint32_t> take_runnable(const procfs::ProcFs& proc, std::int64_t reuse_ns = 0);

// Cores the process may use: its CPU affinity, capped by its cgroup's CPU quota.
double cpus_allowed_for(int pid, const procfs::ProcFs& proc);

}  // namespace chokepoint::collect::sampler
