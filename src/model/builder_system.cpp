// System rates over a window (summarize_system, builder.h) and the sources of a window's reads
// that model::ObservationBuilder (builder_state.h) lists.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string>

#include "model/builder.h"
#include "model/builder_state.h"
#include "util/counters.h"

namespace chokepoint::model {

namespace builder_internal {

std::vector<Source> collector_sources(const Observation& obs, const CollectorSample& c,
                                      std::uint64_t syscall_denied, std::int64_t interval_ns) {
  std::vector<Source> out;
  std::int64_t blkio = 0;
  for (const auto& t : obs.threads) blkio += t.blkio_delay_ns;
  const bool delayacct = c.delayacct_readable && c.delayacct_on;
  out.push_back(
      {"delay accounting", delayacct,
       fmt::format("exact time blocked on block IO ({:.3f} s over the target's threads; only "
                   "tasks started "
                   "after kernel.task_delayacct was switched on carry it)",
                   static_cast<double>(blkio) / 1e9),
       c.delayacct_readable
           ? "run as root: diagnose switches kernel.task_delayacct on for the run (tasks started "
             "after that carry data, e.g. with -- COMMAND), or set it before starting the service"
           : "this kernel has no kernel.task_delayacct"});
  std::uint64_t memory_ns = 0, blkio_ns = 0;
  for (const auto& ps : obs.processes) {
    memory_ns += ps.delay_memory_ns();
    blkio_ns += ps.delay_blkio_ns;
  }
  out.push_back(
      {"taskstats", c.taskstats_open && delayacct,
       fmt::format("exact swap-in, reclaim, thrashing and compaction delays per process ({:.3f} "
                   "s memory, {:.3f} s block IO over the target)",
                   static_cast<double>(memory_ns) / 1e9, static_cast<double>(blkio_ns) / 1e9),
       c.taskstats_open ? (delayacct ? "" : "kernel.task_delayacct is off") : c.taskstats_problem});
  // Recordings made before the iterator existed say nothing about it: no line then.
  if (c.task_iterator_on || !c.task_iterator_problem.empty()) {
    out.push_back(
        {"task iterator", c.task_iterator_on,
         "eBPF iter/task: every thread's on-CPU and run-queue time, state and system call in "
         "one read (every second, at each listing, and when many threads are due), so a quiet "
         "thread is not polled on its own",
         c.task_iterator_on ? ""
                            : c.task_iterator_problem +
                                  "; each thread's /proc/TID/schedstat is read instead (one pread "
                                  "a thread a poll)"});
  }
  // The host target's only (and recordings from before it have no line).
  if (c.proc_events_on || !c.proc_events_problem.empty()) {
    out.push_back(
        {"process events", c.proc_events_on,
         fmt::format("the kernel's proc connector: processes and threads that start or end are "
                     "listed as they do, not by listing /proc every 0.5-2 s (full listings of "
                     "/proc: {}, of them after lost events: {})",
                     c.full_listings, c.proc_events_lost),
         c.proc_events_on
             ? ""
             : c.proc_events_problem + "; /proc is listed every 0.5-2 s to find them instead"});
  }
  out.push_back({"thread state sampling", syscall_denied == 0,
                 fmt::format("thread state, syscall and fd every {} ms for threads that ran",
                             interval_ns / 1'000'000),
                 syscall_denied == 0
                     ? ""
                     : fmt::format("{} reads of /proc/TID/syscall were refused: run as "
                                   "root or as the target's owner to see what threads "
                                   "wait on",
                                   syscall_denied)});
  out.push_back(
      {"stack scan", c.stack_problem.empty(),
       fmt::format("the libc function under each futex(FUTEX_WAIT_BITSET) sleep tells rwlock and "
                   "semaphore waits (lock) from parked threads (idle): {} stacks read, {} named, "
                   "{} answers from the cache",
                   c.stack_scans, c.stack_named, c.stack_cache_hits),
       c.stack_problem.empty()
           ? ""
           : c.stack_problem +
                 ": run as root or as the target's owner (reading a thread's stack needs ptrace "
                 "access); until then rwlock and semaphore waits read as idle"});
  out.push_back({"tcp_info (sock_diag)", c.socket_problem.empty(),
                 "per-connection RTT, queues, send-buffer-limited time", c.socket_problem});
  if (c.socket_order_tried) {
    out.push_back(
        {"socket order", c.socket_order_on && c.socket_order_problem.empty(),
         "eBPF on sock_send_length/sock_recv_length: the exact order of each connection's last "
         "send and receive, so an event loop with a request out on an upstream waits on the "
         "network",
         c.socket_order_problem.empty()
             ? ""
             : c.socket_order_problem +
                   "; an event loop's requests out are read from tcp_info's last send and "
                   "receive times, which count 4 ms jiffies and miss a request written in the "
                   "jiffy its previous reply arrived"});
  }
  return out;
}

}  // namespace builder_internal

namespace {

std::uint64_t opt_delta(const std::optional<std::uint64_t>& a,
                        const std::optional<std::uint64_t>& b) {
  if (!a || !b) return 0;
  return util::saturating_delta(*a, *b);
}

double psi_share(const PressureSample& a, const PressureSample& b, bool full, double seconds) {
  if (!a.supported || !b.supported || seconds <= 0) return 0;
  const auto& la = full ? a.full_total_ns : a.some_total_ns;
  const auto& lb = full ? b.full_total_ns : b.some_total_ns;
  if (!la || !lb) return 0;
  return std::min(1.0, static_cast<double>(util::saturating_delta(*la, *lb)) / 1e9 / seconds);
}

}  // namespace

SystemSummary summarize_system(const SystemSample& a, const SystemSample& b, double seconds) {
  SystemSummary out;
  out.cpus_online = b.cpus_online;
  out.cpus_allowed = out.cpus_online;
  if (a.has_cpu && b.has_cpu) {
    const auto total = static_cast<double>(util::saturating_delta(a.cpu_total_ns, b.cpu_total_ns));
    const auto busy = static_cast<double>(util::saturating_delta(a.cpu_busy_ns, b.cpu_busy_ns));
    const auto iowait =
        static_cast<double>(util::saturating_delta(a.cpu_iowait_ns, b.cpu_iowait_ns));
    if (total > 0) {
      out.cpu_utilization = busy / total;
      out.iowait_share = iowait / total;
    }
  }
  out.psi_cpu = {b.psi_cpu.supported, psi_share(a.psi_cpu, b.psi_cpu, false, seconds),
                 psi_share(a.psi_cpu, b.psi_cpu, true, seconds)};
  out.psi_memory = {b.psi_memory.supported, psi_share(a.psi_memory, b.psi_memory, false, seconds),
                    psi_share(a.psi_memory, b.psi_memory, true, seconds)};
  out.psi_io = {b.psi_io.supported, psi_share(a.psi_io, b.psi_io, false, seconds),
                psi_share(a.psi_io, b.psi_io, true, seconds)};
  if (b.has_meminfo) {
    out.mem_total_bytes = b.mem_total_bytes;
    out.mem_available_bytes = b.mem_available_bytes;
    out.swap_used_bytes = util::saturating_delta(b.swap_free_bytes, b.swap_total_bytes);
  }
  const auto vm = [](const SystemSample& s, std::uint64_t v) { return s.has_vmstat ? v : 0; };
  if (seconds > 0) {
    out.majflt_per_s =
        static_cast<double>(util::saturating_delta(vm(a, a.pgmajfault), vm(b, b.pgmajfault))) /
        seconds;
    out.refaults_per_s =
        static_cast<double>(util::saturating_delta(vm(a, a.refault_file), vm(b, b.refault_file)) +
                            util::saturating_delta(vm(a, a.refault_anon), vm(b, b.refault_anon))) /
        seconds;
  }
  out.oom_kills = util::saturating_delta(vm(a, a.oom_kill), vm(b, b.oom_kill));

  if (a.disks && b.disks && seconds > 0) {
    std::map<std::string, const DiskSample*> before;
    for (const auto& d : *a.disks) before[d.name] = &d;
    for (const auto& d : *b.disks) {
      auto it = before.find(d.name);
      if (it == before.end()) continue;
      const auto& p = *it->second;
      DiskSummary s;
      s.name = d.name;
      const double wall_ns = seconds * 1e9;
      s.utilization = std::min(
          1.0, static_cast<double>(util::saturating_delta(p.io_time_ns, d.io_time_ns)) / wall_ns);
      s.queue_depth = static_cast<double>(
                          util::saturating_delta(p.weighted_io_time_ns, d.weighted_io_time_ns)) /
                      wall_ns;
      const auto ios = static_cast<double>(util::saturating_delta(p.reads, d.reads) +
                                           util::saturating_delta(p.writes, d.writes));
      const auto io_ns =
          static_cast<double>(util::saturating_delta(p.read_time_ns, d.read_time_ns) +
                              util::saturating_delta(p.write_time_ns, d.write_time_ns));
      s.await_ms = ios > 0 ? io_ns / ios / 1e6 : 0;
      s.reads_per_s = static_cast<double>(util::saturating_delta(p.reads, d.reads)) / seconds;
      s.writes_per_s = static_cast<double>(util::saturating_delta(p.writes, d.writes)) / seconds;
      s.read_bytes_per_s =
          static_cast<double>(util::saturating_delta(p.read_bytes, d.read_bytes)) / seconds;
      s.write_bytes_per_s =
          static_cast<double>(util::saturating_delta(p.write_bytes, d.write_bytes)) / seconds;
      if (p.flushes && d.flushes) {
        s.flushes_per_s =
            static_cast<double>(util::saturating_delta(*p.flushes, *d.flushes)) / seconds;
      }
      out.disks.push_back(s);
    }
  }
  if (a.has_net && b.has_net) {
    out.tcp_retrans_per_s =
        seconds > 0
            ? static_cast<double>(opt_delta(a.tcp_retrans_segs, b.tcp_retrans_segs)) / seconds
            : 0;
    out.listen_overflows = opt_delta(a.listen_overflows, b.listen_overflows);
    out.listen_drops = opt_delta(a.listen_drops, b.listen_drops);
    out.passive_opens = opt_delta(a.passive_opens, b.passive_opens);
  }
  if (b.tcp_time_wait) out.time_wait = *b.tcp_time_wait;
  if (b.files_open && b.files_max) {
    out.files_open = *b.files_open;
    out.files_max = *b.files_max;
  }
  out.cgroup_path = b.cgroup_memory_dir;
  out.cgroup_memory_limit_bytes = b.cgroup_memory_limit_bytes;
  out.cgroup_memory_usage_bytes = b.cgroup_memory_usage_bytes;
  out.cgroup_nr_throttled = util::saturating_delta(a.cgroup_nr_throttled, b.cgroup_nr_throttled);
  if (seconds > 0) {
    out.cgroup_throttled_share = std::min(1.0, static_cast<double>(util::saturating_delta(
                                                   a.cgroup_throttled_ns, b.cgroup_throttled_ns)) /
                                                   1e9 / seconds);
  }
  return out;
}

std::vector<Source> system_sources(const SystemSample& s) {
  std::vector<Source> out;
  const bool psi_ok = s.psi_cpu.supported;
  out.push_back({"psi", psi_ok, "pressure stall information for cpu, memory and io",
                 psi_ok
                     ? ""
                     : (s.psi_cpu.present ? s.psi_cpu.unsupported_reason + "; boot with psi=1"
                                          : "no /proc/pressure: boot with psi=1 (kernel 4.20+)")});
  out.push_back({"diskstats", s.disks.has_value(), "per-disk utilization, await and queue depth",
                 s.disks ? "" : "/proc/diskstats is unreadable"});
  out.push_back({"net counters", s.has_net, "TCP retransmits, listen overflows and drops",
                 s.has_net ? "" : "/proc/PID/net/snmp is unreadable: run as root"});
  out.push_back({"cgroup", !s.cgroup_memory_dir.empty() || !s.cgroup_cpu_dir.empty(),
                 "the target's cgroup memory limit and CPU throttling",
                 s.cgroup_memory_dir.empty() ? "no memory cgroup found for the target" : ""});
  return out;
}

}  // namespace chokepoint::model
