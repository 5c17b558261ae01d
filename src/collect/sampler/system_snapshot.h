#pragma once
// System-wide and cgroup evidence (the USE method's utilization, saturation and errors), read at
// the start and the end of a window and turned into rates over it.

#include <optional>
#include <string>
#include <vector>

#include "collect/procfs/proc_fs.h"
#include "collect/sampler/target.h"
#include "model/observation.h"

namespace chokepoint::collect::sampler {

struct CgroupReading {
  std::string memory_dir;  // the target's memory cgroup directory, "" when none found
  std::string cpu_dir;
  std::optional<std::uint64_t> memory_limit_bytes;  // nullopt: unlimited
  std::uint64_t memory_usage_bytes = 0;
  std::uint64_t nr_throttled = 0;
  std::uint64_t throttled_ns = 0;
};

// Raw readings; a member is empty when its file was missing or unreadable.
struct SystemSnapshot {
  std::optional<procfs::SystemStat> stat;
  std::optional<procfs::Meminfo> meminfo;
  std::optional<procfs::Vmstat> vmstat;
  std::optional<std::vector<procfs::DiskStats>> disks;
  std::optional<procfs::NetCounters> net;  // snmp + netstat of the target's network namespace
  std::optional<procfs::Sockstat> sockstat;
  std::optional<procfs::Pressure> psi_cpu, psi_memory, psi_io;
  std::optional<procfs::FileNr> file_nr;
  CgroupReading cgroup;
  std::int64_t taken_ns = 0;
};

SystemSnapshot take_system_snapshot(const procfs::ProcFs& proc, const TargetSpec& target);

// Rates and shares over the window between two snapshots.
model::SystemSummary summarize_system(const SystemSnapshot& first, const SystemSnapshot& last,
                                      double seconds);

// Cores the process may use: its CPU affinity, capped by its cgroup's CPU quota.
double cpus_allowed_for(int pid, const procfs::ProcFs& proc);

// Which system sources were available, with hints for the missing ones.
std::vector<model::Source> system_sources(const SystemSnapshot& snap);

}  // namespace chokepoint::collect::sampler
