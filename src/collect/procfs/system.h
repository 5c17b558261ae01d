#pragma once
// Parsers for the system-wide files the USE evidence comes from: /proc/stat, meminfo, vmstat,
// diskstats, pressure/*, loadavg, sys/fs/file-nr and file-max. Pure functions of the file's text:
// no I/O, never throw, safe on any input, callable from any thread. They return cumulative
// counters as the kernel keeps them (in ns and bytes); rates are the model's job.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "collect/procfs/text.h"

namespace chokepoint::collect::procfs {

// One "cpu" or "cpuN" line of /proc/stat, USER_HZ ticks converted to ns (proc(5) /proc/stat).
struct CpuTimes {
  std::int32_t cpu = -1;         // -1 for the aggregate "cpu" line, else N of "cpuN"
  std::uint64_t user_ns = 0;     // (1) includes guest
  std::uint64_t nice_ns = 0;     // (2) includes guest_nice
  std::uint64_t system_ns = 0;   // (3)
  std::uint64_t idle_ns = 0;     // (4)
  std::uint64_t iowait_ns = 0;   // (5) since 2.5.41; idle with IO outstanding (unreliable per CPU)
  std::uint64_t irq_ns = 0;      // (6) since 2.6.0
  std::uint64_t softirq_ns = 0;  // (7) since 2.6.0
  std::uint64_t steal_ns = 0;    // (8) since 2.6.11; taken by the hypervisor
  std::uint64_t guest_ns = 0;    // (9) since 2.6.24
  std::uint64_t guest_nice_ns = 0;  // (10) since 2.6.33
  // Everything but idle and iowait, guest excluded (it is already in user/nice).
  std::uint64_t busy_ns() const;
  std::uint64_t total_ns() const;  // busy + idle + iowait
};

struct SystemStat {
  CpuTimes total;                   // the "cpu" line
  std::vector<CpuTimes> cpus;       // "cpuN" lines, in file order (offline CPUs are missing)
  std::uint64_t ctxt = 0;           // context switches since boot
  std::uint64_t processes = 0;      // forks since boot
  std::uint64_t procs_running = 0;  // runnable now
  std::uint64_t procs_blocked = 0;  // blocked on IO now
  std::uint64_t btime_sec = 0;      // boot time, seconds since the epoch
};
// Requires the aggregate "cpu" line with at least 4 values; a field missing on old kernels is 0.
std::optional<SystemStat> parse_system_stat(std::string_view text, const Units& units);

// /proc/meminfo: name -> value; "kB" values are converted to bytes, unitless ones (HugePages_*)
// are kept as counts.
struct Meminfo {
  std::map<std::string, std::uint64_t, std::less<>> values;
  std::optional<std::uint64_t> get(std::string_view name) const;
  std::optional<std::uint64_t> mem_total_bytes() const { return get("MemTotal"); }
  std::optional<std::uint64_t> mem_available_bytes() const { return get("MemAvailable"); }
  std::optional<std::uint64_t> swap_total_bytes() const { return get("SwapTotal"); }
  std::optional<std::uint64_t> swap_free_bytes() const { return get("SwapFree"); }
};
// Requires at least one line; any line not "Name: N [kB]" makes it nullopt.
std::optional<Meminfo> parse_meminfo(std::string_view text);

// /proc/vmstat: "name value" per line, counters since boot.
struct Vmstat {
  std::map<std::string, std::uint64_t, std::less<>> values;
  std::optional<std::uint64_t> get(std::string_view name) const;
  std::optional<std::uint64_t> pgmajfault() const { return get("pgmajfault"); }
  std::optional<std::uint64_t> oom_kill() const { return get("oom_kill"); }
  // Page-cache refaults: workingset_refault_file, or workingset_refault before 5.9.
  std::optional<std::uint64_t> workingset_refault_file() const;
  // Anonymous refaults (5.9+); nullopt on older kernels.
  std::optional<std::uint64_t> workingset_refault_anon() const;
  // Pages scanned / stolen by reclaim of every kind. 5.8+ has pgscan_anon + pgscan_file; before,
  // the sum of pgscan_kswapd*, pgscan_direct* (not _throttle, a count of events) and khugepaged.
  std::optional<std::uint64_t> pgscan_total() const;
  std::optional<std::uint64_t> pgsteal_total() const;
};
std::optional<Vmstat> parse_vmstat(std::string_view text);

// One /proc/diskstats line (Documentation/admin-guide/iostats.rst). Lines have 14 fields, 18 since
// 4.18 (discard) and 20 since 5.5 (flush). Sectors are 512 bytes whatever the device's sector size.
struct DiskStats {
  std::uint32_t major = 0;
  std::uint32_t minor = 0;
  std::string name;
  std::uint64_t reads = 0;                // (4) reads completed
  std::uint64_t reads_merged = 0;         // (5)
  std::uint64_t read_bytes = 0;           // (6) sectors read * 512
  std::uint64_t read_time_ns = 0;         // (7) ms spent reading, as ns
  std::uint64_t writes = 0;               // (8) writes completed
  std::uint64_t writes_merged = 0;        // (9)
  std::uint64_t write_bytes = 0;          // (10) sectors written * 512
  std::uint64_t write_time_ns = 0;        // (11) ms spent writing, as ns
  std::uint64_t in_flight = 0;            // (12) IOs in progress now (a gauge, not a counter)
  std::uint64_t io_time_ns = 0;           // (13) ms the device had IO in flight: utilization
  std::uint64_t weighted_io_time_ns = 0;  // (14) ms * in-flight: queue depth over time
  std::optional<std::uint64_t> discards;  // (15) 4.18+
  std::optional<std::uint64_t> discards_merged;  // (16)
  std::optional<std::uint64_t> discard_bytes;    // (17) sectors * 512
  std::optional<std::uint64_t> discard_time_ns;  // (18)
  std::optional<std::uint64_t> flushes;          // (19) 5.5+
  std::optional<std::uint64_t> flush_time_ns;    // (20)
};
// Lines with fewer than 14 fields or a non-numeric value make it nullopt; fields past 20 (a future
// kernel) are ignored. Partitions and virtual devices (loop, ram, dm-) are kept: callers filter.
std::optional<std::vector<DiskStats>> parse_diskstats(std::string_view text);

// /proc/pressure/{cpu,memory,io} (PSI, 4.20+). "some": at least one task stalled; "full": all
// non-idle tasks stalled at once (cpu has "full" since 5.13, always zero at system level).
struct PressureLine {
  double avg10 = 0;  // percent of wall time stalled, over 10 s
  double avg60 = 0;
  double avg300 = 0;
  std::uint64_t total_ns = 0;  // "total=" (microseconds) as ns, cumulative
};
struct Pressure {
  // False when the kernel has PSI compiled out (no file) or disabled (psi=0: reads fail with
  // EOPNOTSUPP); the lines are then empty and unsupported_reason says why.
  bool supported = true;
  std::string unsupported_reason;
  std::optional<PressureLine> some;
  std::optional<PressureLine> full;
};
// Requires a "some" line.
std::optional<Pressure> parse_pressure(std::string_view text);

// /proc/loadavg: "0.16 0.22 0.10 1/84 4848".
struct LoadAvg {
  double load1 = 0;
  double load5 = 0;
  double load15 = 0;
  std::uint64_t runnable = 0;     // tasks runnable now
  std::uint64_t total_tasks = 0;  // tasks that exist
  std::int64_t last_pid = 0;
};
std::optional<LoadAvg> parse_loadavg(std::string_view text);

// /proc/sys/fs/file-nr: "allocated free max" file handles.
struct FileNr {
  std::uint64_t allocated = 0;
  std::uint64_t free = 0;  // always 0 since 2.6
  std::uint64_t max = 0;
};
std::optional<FileNr> parse_file_nr(std::string_view text);
// /proc/sys/fs/file-max: one number.
std::optional<std::uint64_t> parse_file_max(std::string_view text);

}  // namespace chokepoint::collect::procfs
