#include "collect/sampler/system_snapshot.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <vector>

#include "collect/netlink/sock_diag.h"
#include "util/clock.h"
#include "util/counters.h"

namespace chokepoint::collect::sampler {
namespace {

struct CgroupReading {
  std::string memory_dir;  // the target's memory cgroup directory, "" when none found
  std::string cpu_dir;
  std::optional<std::uint64_t> memory_limit_bytes;  // nullopt: unlimited
  std::uint64_t memory_usage_bytes = 0;
  std::uint64_t nr_throttled = 0;
  std::uint64_t throttled_ns = 0;
};

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

// Whole disks only: partitions and virtual devices would double count.
bool is_whole_disk(const std::string& name) {
  std::error_code ec;
  return std::filesystem::exists("/sys/block/" + name, ec) && name.rfind("loop", 0) != 0 &&
         name.rfind("ram", 0) != 0;
}

model::PressureSample pressure_sample(const procfs::ProcFs& proc, const char* resource) {
  model::PressureSample out;
  auto r = proc.read_pressure(resource);
  if (!r) return out;
  out.present = true;
  out.supported = r->supported;
  out.unsupported_reason = r->unsupported_reason;
  if (r->some) out.some_total_ns = r->some->total_ns;
  if (r->full) out.full_total_ns = r->full->total_ns;
  return out;
}

std::optional<std::uint64_t> net_counter(const procfs::NetCounters& net, std::string_view key) {
  auto v = net.get(key);
  if (!v || *v < 0) return std::nullopt;
  return static_cast<std::uint64_t>(*v);
}

// The host's counters (everything but the target's network namespace and cgroup).
model::SystemSample read_host_counters(const procfs::ProcFs& proc) {
  model::SystemSample s;
  s.at_ns = util::monotonic_ns();
  s.cpus_online = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  if (auto r = proc.read_system_stat()) {
    s.has_cpu = true;
    s.cpu_total_ns = r->total.total_ns();
    s.cpu_busy_ns = r->total.busy_ns();
    s.cpu_iowait_ns = r->total.iowait_ns;
  }
  if (auto r = proc.read_meminfo()) {
    s.has_meminfo = true;
    s.mem_total_bytes = r->mem_total_bytes().value_or(0);
    s.mem_available_bytes = r->mem_available_bytes().value_or(0);
    s.swap_total_bytes = r->swap_total_bytes().value_or(0);
    s.swap_free_bytes = r->swap_free_bytes().value_or(0);
  }
  if (auto r = proc.read_vmstat()) {
    s.has_vmstat = true;
    s.pgmajfault = r->pgmajfault().value_or(0);
    s.refault_file = r->workingset_refault_file().value_or(0);
    s.refault_anon = r->workingset_refault_anon().value_or(0);
    s.oom_kill = r->oom_kill().value_or(0);
  }
  if (auto r = proc.read_diskstats()) {
    s.disks.emplace();
    for (const auto& d : *r) {
      if (!is_whole_disk(d.name)) continue;
      s.disks->push_back({d.name, d.reads, d.writes, d.read_bytes, d.write_bytes, d.read_time_ns,
                          d.write_time_ns, d.io_time_ns, d.weighted_io_time_ns, d.flushes});
    }
  }
  s.psi_cpu = pressure_sample(proc, "cpu");
  s.psi_memory = pressure_sample(proc, "memory");
  s.psi_io = pressure_sample(proc, "io");
  if (auto r = proc.read_file_nr()) {
    s.files_open = r->allocated;
    s.files_max = r->max;
  }
  return s;
}

// The counters of one network namespace: /proc/PID/net/{snmp,netstat,sockstat} show the
// namespace of PID, so every process in it reads the same numbers.
struct NetReading {
  bool has_net = false;  // snmp was read
  std::optional<std::uint64_t> tcp_retrans_segs, listen_overflows, listen_drops, passive_opens;
  std::optional<std::uint64_t> tcp_time_wait;
};

// net_proc: a ProcFs rooted at /proc/PID (the namespace of PID) or at /proc (ours).
NetReading read_net_counters(const procfs::ProcFs& net_proc) {
  NetReading r;
  auto snmp = net_proc.read_net_snmp();
  auto netstat = net_proc.read_net_netstat();
  if (snmp) {
    procfs::NetCounters net = *snmp;
    if (netstat) procfs::merge_net_counters(net, *netstat);
    r.has_net = true;
    r.tcp_retrans_segs = net_counter(net, "Tcp.RetransSegs");
    r.listen_overflows = net_counter(net, "TcpExt.ListenOverflows");
    r.listen_drops = net_counter(net, "TcpExt.ListenDrops");
    r.passive_opens = net_counter(net, "Tcp.PassiveOpens");
  }
  if (auto st = net_proc.read_sockstat()) r.tcp_time_wait = st->tcp_tw;
  return r;
}

// A namespace's last reading, keyed by the /proc root and the namespace's inode (the number in
// /proc/PID/ns/net's "net:[N]").
struct SharedNetReading {
  std::string root;
  std::uint64_t netns = 0;
  std::int64_t at_ns = 0;
  NetReading reading;
};

// The last host read of this process, the last run-queue sample and the last reading of each
// network namespace, for the samplers that read within reuse_ns of them (one per /proc root).
struct SharedHostReads {
  std::mutex mutex;
  std::string root;                         // GUARDED_BY(mutex)
  std::optional<model::SystemSample> host;  // GUARDED_BY(mutex)
  std::string runnable_root;                // GUARDED_BY(mutex)
  std::int64_t runnable_at_ns = 0;          // GUARDED_BY(mutex)
  std::optional<std::uint32_t> runnable;    // GUARDED_BY(mutex)
  std::vector<SharedNetReading> nets;       // GUARDED_BY(mutex)
};
SharedHostReads& shared_host_reads() {
  static SharedHostReads s;
  return s;
}

// The counters of the namespace of net_pid (0: ours). With reuse_ns > 0, a reading of the same
// namespace within reuse_ns of now is taken instead of reading the files again: the agent's
// targets close together, and ten of them in the host's namespace read the same numbers (the
// kernel formats every counter of netstat at each read). A namespace whose inode cannot be
// found (a fixture root, a process that exited) is read, not shared.
NetReading net_reading(const procfs::ProcFs& proc, int net_pid, std::int64_t reuse_ns) {
  const procfs::ProcFs net_proc(net_pid > 0 ? proc.root() + "/" + std::to_string(net_pid)
                                            : proc.root());
  if (reuse_ns <= 0) return read_net_counters(net_proc);
  // /proc/net is /proc/self/net: ours.
  auto netns = netlink::netns_inode_of(net_pid > 0 ? net_pid : getpid(), proc.root());
  if (!netns) return read_net_counters(net_proc);
  const std::int64_t now_ns = util::monotonic_ns();
  SharedHostReads& shared = shared_host_reads();
  // Held over the read: a target closing at the same time waits for it and shares it.
  std::lock_guard lock(shared.mutex);
  auto& nets = shared.nets;
  auto it = std::find_if(nets.begin(), nets.end(), [&](const SharedNetReading& n) {
    return n.netns == *netns && n.root == proc.root();
  });
  if (it != nets.end() && std::llabs(now_ns - it->at_ns) <= reuse_ns) return it->reading;
  NetReading r = read_net_counters(net_proc);
  if (!r.has_net) return r;  // not kept: the process may have exited between the stat and the read
  // Readings older than reuse_ns serve no one: the list holds the namespaces read lately.
  std::erase_if(nets, [&](const SharedNetReading& n) {
    return (n.netns == *netns && n.root == proc.root()) || std::llabs(now_ns - n.at_ns) > reuse_ns;
  });
  nets.push_back({proc.root(), *netns, now_ns, r});
  return r;
}

}  // namespace

std::optional<std::uint32_t> take_runnable(const procfs::ProcFs& proc, std::int64_t reuse_ns) {
  const std::int64_t now_ns = util::monotonic_ns();
  SharedHostReads& shared = shared_host_reads();
  std::unique_lock lock(shared.mutex, std::defer_lock);
  if (reuse_ns > 0) {
    lock.lock();
    if (shared.runnable_root == proc.root() &&
        std::llabs(now_ns - shared.runnable_at_ns) <= reuse_ns)
      return shared.runnable;
  }
  std::optional<std::uint32_t> runnable;
  if (auto la = proc.read_loadavg()) runnable = static_cast<std::uint32_t>(la->runnable);
  if (reuse_ns > 0) {
    shared.runnable_root = proc.root();
    shared.runnable_at_ns = now_ns;
    shared.runnable = runnable;
  }
  return runnable;
}

model::SystemSample take_system_snapshot(const procfs::ProcFs& proc, const TargetSpec& target,
                                         std::int64_t reuse_ns) {
  model::SystemSample s;
  if (reuse_ns > 0) {
    SharedHostReads& shared = shared_host_reads();
    const std::int64_t now_ns = util::monotonic_ns();
    std::lock_guard lock(shared.mutex);
    if (shared.host && shared.root == proc.root() &&
        std::llabs(now_ns - shared.host->at_ns) <= reuse_ns) {
      s = *shared.host;  // its at_ns is when it was read
    } else {
      s = read_host_counters(proc);
      shared.root = proc.root();
      shared.host = s;
    }
  } else {
    s = read_host_counters(proc);
  }

  // Network counters of the target's namespace: /proc/PID/net/* shows the namespace of PID.
  int net_pid = target.pid > 0 ? target.pid : 0;
  if (target.kind == TargetSpec::Kind::kCgroup || target.kind == TargetSpec::Kind::kName) {
    auto pids = resolve_pids(target, proc);
    if (pids && !pids->empty()) net_pid = pids->front();
  }
  const NetReading net = net_reading(proc, net_pid, reuse_ns);
  s.has_net = net.has_net;
  s.tcp_retrans_segs = net.tcp_retrans_segs;
  s.listen_overflows = net.listen_overflows;
  s.listen_drops = net.listen_drops;
  s.passive_opens = net.passive_opens;
  s.tcp_time_wait = net.tcp_time_wait;

  CgroupReading cg;
  if (target.kind == TargetSpec::Kind::kCgroup) {
    cg.memory_dir = target.cgroup_path;
    cg.cpu_dir = target.cgroup_path;
  } else if (net_pid > 0) {
    find_cgroup_dirs(net_pid, proc, cg);
  }
  read_cgroup(cg);
  s.cgroup_memory_dir = cg.memory_dir;
  s.cgroup_cpu_dir = cg.cpu_dir;
  s.cgroup_memory_limit_bytes = cg.memory_limit_bytes;
  s.cgroup_memory_usage_bytes = cg.memory_usage_bytes;
  s.cgroup_nr_throttled = cg.nr_throttled;
  s.cgroup_throttled_ns = cg.throttled_ns;
  return s;
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

}  // namespace chokepoint::collect::sampler
