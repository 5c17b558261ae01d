#include "collect/sampler/system_snapshot.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "util/clock.h"
#include "util/counters.h"

namespace chokepoint::collect::sampler {
namespace {

std::optional<std::string> read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  return line;
}

std::optional<std::uint64_t> read_u64_file(const std::string& path) {
  auto line = read_first_line(path);
  if (!line) return std::nullopt;
  return procfs::parse_u64(procfs::trim(*line));
}

// Where the v2 hierarchy is mounted: /sys/fs/cgroup on pure v2 hosts, /sys/fs/cgroup/unified on
// hybrid ones.
std::string v2_mount() {
  if (std::filesystem::exists("/sys/fs/cgroup/cgroup.controllers")) return "/sys/fs/cgroup";
  if (std::filesystem::exists("/sys/fs/cgroup/unified/cgroup.controllers"))
    return "/sys/fs/cgroup/unified";
  return {};
}

// The cgroup directories that hold a process's memory and cpu limits.
void find_cgroup_dirs(int pid, const procfs::ProcFs& proc, CgroupReading& out) {
  auto entries = proc.read_cgroup(pid);
  if (!entries) return;
  std::string v2 = v2_mount();
  for (const auto& e : *entries) {
    for (const auto& c : e.controllers) {
      if (c == "memory") out.memory_dir = "/sys/fs/cgroup/memory" + e.path;
      if (c == "cpu" || c == "cpu,cpuacct") out.cpu_dir = "/sys/fs/cgroup/cpu" + e.path;
    }
  }
  auto v2path = procfs::cgroup_v2_path(*entries);
  if (v2path && !v2.empty()) {
    std::string dir = v2 + *v2path;
    if (out.memory_dir.empty() && std::filesystem::exists(dir + "/memory.max"))
      out.memory_dir = dir;
    if (out.cpu_dir.empty() && std::filesystem::exists(dir + "/cpu.max")) out.cpu_dir = dir;
  }
}

void read_cgroup(CgroupReading& cg) {
  if (!cg.memory_dir.empty()) {
    if (auto max = read_first_line(cg.memory_dir + "/memory.max")) {  // v2
      if (*max != "max") cg.memory_limit_bytes = procfs::parse_u64(procfs::trim(*max));
      cg.memory_usage_bytes = read_u64_file(cg.memory_dir + "/memory.current").value_or(0);
    } else if (auto lim = read_u64_file(cg.memory_dir + "/memory.limit_in_bytes")) {  // v1
      // v1 prints "unlimited" as PAGE_COUNTER_MAX pages in bytes, about 2^63.
      if (*lim < (1ULL << 62)) cg.memory_limit_bytes = *lim;
      cg.memory_usage_bytes = read_u64_file(cg.memory_dir + "/memory.usage_in_bytes").value_or(0);
    }
  }
  if (!cg.cpu_dir.empty()) {
    std::ifstream in(cg.cpu_dir + "/cpu.stat");
    std::string key;
    std::uint64_t value = 0;
    while (in >> key >> value) {
      if (key == "nr_throttled") cg.nr_throttled = value;
      if (key == "throttled_usec") cg.throttled_ns = value * 1000;  // v2
      if (key == "throttled_time") cg.throttled_ns = value;         // v1, ns
    }
  }
}

std::uint64_t vm(const std::optional<procfs::Vmstat>& v,
                 std::optional<std::uint64_t> (procfs::Vmstat::*f)() const) {
  if (!v) return 0;
  return ((*v).*f)().value_or(0);
}

double psi_share(const std::optional<procfs::Pressure>& a, const std::optional<procfs::Pressure>& b,
                 bool full, double seconds) {
  if (!a || !b || !a->supported || !b->supported || seconds <= 0) return 0;
  const auto& la = full ? a->full : a->some;
  const auto& lb = full ? b->full : b->some;
  if (!la || !lb) return 0;
  return std::min(
      1.0, static_cast<double>(util::saturating_delta(la->total_ns, lb->total_ns)) / 1e9 / seconds);
}

// Whole disks only: partitions and virtual devices would double count.
bool is_whole_disk(const std::string& name) {
  std::error_code ec;
  return std::filesystem::exists("/sys/block/" + name, ec) && name.rfind("loop", 0) != 0 &&
         name.rfind("ram", 0) != 0;
}

}  // namespace

SystemSnapshot take_system_snapshot(const procfs::ProcFs& proc, const TargetSpec& target) {
  SystemSnapshot s;
  s.taken_ns = util::monotonic_ns();
  if (auto r = proc.read_system_stat()) s.stat = *r;
  if (auto r = proc.read_meminfo()) s.meminfo = *r;
  if (auto r = proc.read_vmstat()) s.vmstat = *r;
  if (auto r = proc.read_diskstats()) s.disks = *r;
  if (auto r = proc.read_pressure("cpu")) s.psi_cpu = *r;
  if (auto r = proc.read_pressure("memory")) s.psi_memory = *r;
  if (auto r = proc.read_pressure("io")) s.psi_io = *r;
  if (auto r = proc.read_file_nr()) s.file_nr = *r;

  // Network counters of the target's namespace: /proc/PID/net/* shows the namespace of PID.
  int net_pid = target.pid > 0 ? target.pid : 0;
  if (target.kind == TargetSpec::Kind::kCgroup || target.kind == TargetSpec::Kind::kName) {
    auto pids = resolve_pids(target, proc);
    if (pids && !pids->empty()) net_pid = pids->front();
  }
  procfs::ProcFs net_proc(net_pid > 0 ? proc.root() + "/" + std::to_string(net_pid) : proc.root());
  auto snmp = net_proc.read_net_snmp();
  auto netstat = net_proc.read_net_netstat();
  if (snmp) {
    s.net = *snmp;
    if (netstat) procfs::merge_net_counters(*s.net, *netstat);
  }
  if (auto r = net_proc.read_sockstat()) s.sockstat = *r;

  if (target.kind == TargetSpec::Kind::kCgroup) {
    s.cgroup.memory_dir = target.cgroup_path;
    s.cgroup.cpu_dir = target.cgroup_path;
  } else if (net_pid > 0) {
    find_cgroup_dirs(net_pid, proc, s.cgroup);
  }
  read_cgroup(s.cgroup);
  return s;
}

model::SystemSummary summarize_system(const SystemSnapshot& a, const SystemSnapshot& b,
                                      double seconds) {
  model::SystemSummary out;
  out.cpus_online = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  out.cpus_allowed = out.cpus_online;
  if (a.stat && b.stat) {
    double total = static_cast<double>(
        util::saturating_delta(a.stat->total.total_ns(), b.stat->total.total_ns()));
    double busy = static_cast<double>(
        util::saturating_delta(a.stat->total.busy_ns(), b.stat->total.busy_ns()));
    double iowait = static_cast<double>(
        util::saturating_delta(a.stat->total.iowait_ns, b.stat->total.iowait_ns));
    if (total > 0) {
      out.cpu_utilization = busy / total;
      out.iowait_share = iowait / total;
    }
  }
  out.psi_cpu = {b.psi_cpu && b.psi_cpu->supported, psi_share(a.psi_cpu, b.psi_cpu, false, seconds),
                 psi_share(a.psi_cpu, b.psi_cpu, true, seconds)};
  out.psi_memory = {b.psi_memory && b.psi_memory->supported,
                    psi_share(a.psi_memory, b.psi_memory, false, seconds),
                    psi_share(a.psi_memory, b.psi_memory, true, seconds)};
  out.psi_io = {b.psi_io && b.psi_io->supported, psi_share(a.psi_io, b.psi_io, false, seconds),
                psi_share(a.psi_io, b.psi_io, true, seconds)};
  if (b.meminfo) {
    out.mem_total_bytes = b.meminfo->mem_total_bytes().value_or(0);
    out.mem_available_bytes = b.meminfo->mem_available_bytes().value_or(0);
    out.swap_used_bytes = util::saturating_delta(b.meminfo->swap_free_bytes().value_or(0),
                                                 b.meminfo->swap_total_bytes().value_or(0));
  }
  if (seconds > 0) {
    out.majflt_per_s =
        static_cast<double>(util::saturating_delta(vm(a.vmstat, &procfs::Vmstat::pgmajfault),
                                                   vm(b.vmstat, &procfs::Vmstat::pgmajfault))) /
        seconds;
    out.refaults_per_s =
        static_cast<double>(
            util::saturating_delta(vm(a.vmstat, &procfs::Vmstat::workingset_refault_file),
                                   vm(b.vmstat, &procfs::Vmstat::workingset_refault_file)) +
            util::saturating_delta(vm(a.vmstat, &procfs::Vmstat::workingset_refault_anon),
                                   vm(b.vmstat, &procfs::Vmstat::workingset_refault_anon))) /
        seconds;
  }
  out.oom_kills = util::saturating_delta(vm(a.vmstat, &procfs::Vmstat::oom_kill),
                                         vm(b.vmstat, &procfs::Vmstat::oom_kill));

  if (a.disks && b.disks && seconds > 0) {
    std::map<std::string, const procfs::DiskStats*> before;
    for (const auto& d : *a.disks) before[d.name] = &d;
    for (const auto& d : *b.disks) {
      auto it = before.find(d.name);
      if (it == before.end() || !is_whole_disk(d.name)) continue;
      const auto& p = *it->second;
      model::DiskSummary s;
      s.name = d.name;
      double wall_ns = seconds * 1e9;
      s.utilization = std::min(
          1.0, static_cast<double>(util::saturating_delta(p.io_time_ns, d.io_time_ns)) / wall_ns);
      s.queue_depth = static_cast<double>(
                          util::saturating_delta(p.weighted_io_time_ns, d.weighted_io_time_ns)) /
                      wall_ns;
      double ios = static_cast<double>(util::saturating_delta(p.reads, d.reads) +
                                       util::saturating_delta(p.writes, d.writes));
      double io_ns = static_cast<double>(util::saturating_delta(p.read_time_ns, d.read_time_ns) +
                                         util::saturating_delta(p.write_time_ns, d.write_time_ns));
      s.await_ms = ios > 0 ? io_ns / ios / 1e6 : 0;
      s.reads_per_s = static_cast<double>(util::saturating_delta(p.reads, d.reads)) / seconds;
      s.writes_per_s = static_cast<double>(util::saturating_delta(p.writes, d.writes)) / seconds;
      s.read_bytes_per_s =
          static_cast<double>(util::saturating_delta(p.read_bytes, d.read_bytes)) / seconds;
      s.write_bytes_per_s =
          static_cast<double>(util::saturating_delta(p.write_bytes, d.write_bytes)) / seconds;
      if (p.flushes && d.flushes)
        s.flushes_per_s =
            static_cast<double>(util::saturating_delta(*p.flushes, *d.flushes)) / seconds;
      out.disks.push_back(s);
    }
  }
  if (a.net && b.net) {
    auto delta = [&](std::string_view key) -> std::uint64_t {
      auto x = a.net->get(key), y = b.net->get(key);
      if (!x || !y || *y < *x) return 0;
      return static_cast<std::uint64_t>(*y - *x);
    };
    out.tcp_retrans_per_s =
        seconds > 0 ? static_cast<double>(delta("Tcp.RetransSegs")) / seconds : 0;
    out.listen_overflows = delta("TcpExt.ListenOverflows");
    out.listen_drops = delta("TcpExt.ListenDrops");
    out.passive_opens = delta("Tcp.PassiveOpens");
  }
  if (b.sockstat) out.time_wait = b.sockstat->tcp_tw;
  if (b.file_nr) {
    out.files_open = b.file_nr->allocated;
    out.files_max = b.file_nr->max;
  }
  out.cgroup_path = b.cgroup.memory_dir;
  out.cgroup_memory_limit_bytes = b.cgroup.memory_limit_bytes;
  out.cgroup_memory_usage_bytes = b.cgroup.memory_usage_bytes;
  out.cgroup_nr_throttled = util::saturating_delta(a.cgroup.nr_throttled, b.cgroup.nr_throttled);
  if (seconds > 0) {
    out.cgroup_throttled_share = std::min(1.0, static_cast<double>(util::saturating_delta(
                                                   a.cgroup.throttled_ns, b.cgroup.throttled_ns)) /
                                                   1e9 / seconds);
  }
  return out;
}

double cpus_allowed_for(int pid, const procfs::ProcFs& proc) {
  double cpus = static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN));
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(pid, sizeof set, &set) == 0)
    cpus = std::min(cpus, static_cast<double>(CPU_COUNT(&set)));
  CgroupReading cg;
  find_cgroup_dirs(pid, proc, cg);
  if (!cg.cpu_dir.empty()) {
    if (auto max =
            read_first_line(cg.cpu_dir + "/cpu.max")) {  // v2: "quota period" or "max period"
      auto fields = procfs::split_ws(*max);
      if (fields.size() == 2 && fields[0] != "max") {
        auto q = procfs::parse_u64(fields[0]), p = procfs::parse_u64(fields[1]);
        if (q && p && *p > 0)
          cpus = std::min(cpus, static_cast<double>(*q) / static_cast<double>(*p));
      }
    } else {
      auto q = read_first_line(cg.cpu_dir + "/cpu.cfs_quota_us");
      auto p = read_u64_file(cg.cpu_dir + "/cpu.cfs_period_us");
      if (q && p && *p > 0 && !q->empty() && (*q)[0] != '-') {
        if (auto qv = procfs::parse_u64(procfs::trim(*q)))
          cpus = std::min(cpus, static_cast<double>(*qv) / static_cast<double>(*p));
      }
    }
  }
  return cpus;
}

std::vector<model::Source> system_sources(const SystemSnapshot& s) {
  std::vector<model::Source> out;
  auto psi_ok = s.psi_cpu && s.psi_cpu->supported;
  out.push_back({"psi", static_cast<bool>(psi_ok),
                 "pressure stall information for cpu, memory and io",
                 psi_ok ? ""
                        : (s.psi_cpu ? s.psi_cpu->unsupported_reason + "; boot with psi=1"
                                     : "no /proc/pressure: boot with psi=1 (kernel 4.20+)")});
  out.push_back({"diskstats", static_cast<bool>(s.disks),
                 "per-disk utilization, await and queue depth",
                 s.disks ? "" : "/proc/diskstats is unreadable"});
  out.push_back({"net counters", static_cast<bool>(s.net),
                 "TCP retransmits, listen overflows and drops",
                 s.net ? "" : "/proc/PID/net/snmp is unreadable: run as root"});
  out.push_back({"cgroup", !s.cgroup.memory_dir.empty() || !s.cgroup.cpu_dir.empty(),
                 "the target's cgroup memory limit and CPU throttling",
                 s.cgroup.memory_dir.empty() ? "no memory cgroup found for the target" : ""});
  return out;
}

}  // namespace chokepoint::collect::sampler
