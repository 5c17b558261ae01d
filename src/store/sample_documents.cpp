#include "store/sample_documents.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "model/sample_json.h"

namespace chokepoint::store {
namespace {

using nlohmann::json;

json opt_json(const std::optional<std::uint64_t>& v) {
  return v ? json(*v) : json(nullptr);
}

json pressure_json(const model::PressureSample& p) {
  return {{"present", p.present},
          {"supported", p.supported},
          {"unsupported_reason", p.unsupported_reason},
          {"some_total_ns", opt_json(p.some_total_ns)},
          {"full_total_ns", opt_json(p.full_total_ns)}};
}

json tcp_table_json(const model::TcpTableSample& t) {
  json groups = json::array();
  for (const auto& g : t.groups) {
    groups.push_back({{"state", model::tcp_state_name(g.state)},
                      {"server_side", g.server_side},
                      {"target", g.target},
                      {"local_addr", g.local_addr},
                      {"local_port", g.local_port},
                      {"remote_addr", g.remote_addr},
                      {"remote_port", g.remote_port},
                      {"count", g.count}});
  }
  json listeners = json::array();
  for (const auto& l : t.listeners) {
    listeners.push_back({{"local_addr", l.local_addr},
                         {"local_port", l.local_port},
                         {"accept_queue", l.accept_queue},
                         {"backlog", l.backlog},
                         {"target", l.target}});
  }
  const auto opt32 = [](const std::optional<std::uint32_t>& v) {
    return v ? json(*v) : json(nullptr);
  };
  return {{"at_ns", t.at_ns},
          {"groups", std::move(groups)},
          {"listeners", std::move(listeners)},
          {"port_range_low", opt32(t.port_range_low)},
          {"port_range_high", opt32(t.port_range_high)},
          {"somaxconn", opt_json(t.somaxconn)},
          {"max_syn_backlog", opt_json(t.max_syn_backlog)},
          {"tw_reuse", opt_json(t.tw_reuse)},
          {"syncookies", opt_json(t.syncookies)},
          {"conntrack_count", opt_json(t.conntrack_count)},
          {"conntrack_max", opt_json(t.conntrack_max)},
          {"conntrack_drop", opt_json(t.conntrack_drop)},
          {"conntrack_early_drop", opt_json(t.conntrack_early_drop)},
          {"conntrack_insert_failed", opt_json(t.conntrack_insert_failed)}};
}

// model::shm_json's fields, and the page size the recording's replay needs.
json shm_document(const model::ShmSample& m) {
  json j = model::shm_json(m);
  j["page_size_bytes"] = m.page_size_bytes;
  return j;
}

json rlimits_document(const model::RlimitSample& r) {
  return {{"processes", model::rlimit_processes_json(r)}};
}

// The system sample's groups of plain counters (/proc/stat, meminfo, vmstat): each one JSON
// object, present when its flag is set. The one list the writer and the reader both go by.
using SystemCounter = std::pair<const char*, std::uint64_t model::SystemSample::*>;
struct CounterGroup {
  const char* key;
  bool model::SystemSample::*present;
  std::vector<SystemCounter> counters;
};

const std::vector<CounterGroup>& counter_groups() {
  using S = model::SystemSample;
  static const std::vector<CounterGroup> kGroups = {
      {"cpu",
       &S::has_cpu,
       {{"total_ns", &S::cpu_total_ns},
        {"busy_ns", &S::cpu_busy_ns},
        {"iowait_ns", &S::cpu_iowait_ns}}},
      {"meminfo",
       &S::has_meminfo,
       {{"total_bytes", &S::mem_total_bytes},
        {"available_bytes", &S::mem_available_bytes},
        {"swap_total_bytes", &S::swap_total_bytes},
        {"swap_free_bytes", &S::swap_free_bytes}}},
      {"vmstat",
       &S::has_vmstat,
       {{"pgmajfault", &S::pgmajfault},
        {"refault_file", &S::refault_file},
        {"refault_anon", &S::refault_anon},
        {"oom_kill", &S::oom_kill}}},
  };
  return kGroups;
}

json system_json(const model::SystemSample& s) {
  json j{{"cpus_online", s.cpus_online},
         {"psi_cpu", pressure_json(s.psi_cpu)},
         {"psi_memory", pressure_json(s.psi_memory)},
         {"psi_io", pressure_json(s.psi_io)},
         {"cgroup_memory_dir", s.cgroup_memory_dir},
         {"cgroup_cpu_dir", s.cgroup_cpu_dir},
         {"cgroup_memory_limit_bytes", opt_json(s.cgroup_memory_limit_bytes)},
         {"cgroup_memory_usage_bytes", s.cgroup_memory_usage_bytes},
         {"cgroup_nr_throttled", s.cgroup_nr_throttled},
         {"cgroup_throttled_ns", s.cgroup_throttled_ns},
         {"tcp_time_wait", opt_json(s.tcp_time_wait)},
         {"files_open", opt_json(s.files_open)},
         {"files_max", opt_json(s.files_max)}};
  for (const auto& g : counter_groups()) {
    if (!(s.*g.present)) continue;
    json counters = json::object();
    for (const auto& [key, member] : g.counters) counters[key] = s.*member;
    j[g.key] = std::move(counters);
  }
  if (s.disks) {
    json disks = json::array();
    for (const auto& d : *s.disks) {
      disks.push_back({{"name", d.name},
                       {"reads", d.reads},
                       {"writes", d.writes},
                       {"read_bytes", d.read_bytes},
                       {"write_bytes", d.write_bytes},
                       {"read_time_ns", d.read_time_ns},
                       {"write_time_ns", d.write_time_ns},
                       {"io_time_ns", d.io_time_ns},
                       {"weighted_io_time_ns", d.weighted_io_time_ns},
                       {"flushes", opt_json(d.flushes)}});
    }
    j["disks"] = std::move(disks);
  }
  if (s.has_net) {
    j["net"] = {{"tcp_retrans_segs", opt_json(s.tcp_retrans_segs)},
                {"listen_overflows", opt_json(s.listen_overflows)},
                {"listen_drops", opt_json(s.listen_drops)},
                {"passive_opens", opt_json(s.passive_opens)}};
  }
  if (s.tcp_table) j["tcp_table"] = tcp_table_json(*s.tcp_table);
  if (s.shm) j["shm"] = shm_document(*s.shm);
  if (s.rlimits) j["rlimits"] = rlimits_document(*s.rlimits);
  return j;
}

json collector_json(const model::CollectorSample& c) {
  json j{{"delayacct_readable", c.delayacct_readable},
         {"delayacct_on", c.delayacct_on},
         {"taskstats_open", c.taskstats_open},
         {"taskstats_problem", c.taskstats_problem},
         {"stack_scans", c.stack_scans},
         {"stack_named", c.stack_named},
         {"stack_cache_hits", c.stack_cache_hits},
         {"stack_problem", c.stack_problem},
         {"socket_problem", c.socket_problem},
         {"socket_order_tried", c.socket_order_tried},
         {"socket_order_on", c.socket_order_on},
         {"socket_order_problem", c.socket_order_problem},
         {"task_iterator_on", c.task_iterator_on},
         {"task_iterator_problem", c.task_iterator_problem},
         {"cpu_ns", c.cpu_ns},
         {"rss_bytes", c.rss_bytes},
         {"thread_samples", c.thread_samples},
         {"deep_samples", c.deep_samples}};
  if (c.cpus_allowed) j["cpus_allowed"] = *c.cpus_allowed;
  // The host target's only (and recordings from before have none).
  if (c.proc_events_on || !c.proc_events_problem.empty()) {
    j["proc_events_on"] = c.proc_events_on;
    j["proc_events_problem"] = c.proc_events_problem;
    j["full_listings"] = c.full_listings;
    j["proc_events_lost"] = c.proc_events_lost;
  }
  return j;
}

// The exact mode's state of a tick; its sums and wait-for edges go beside it, packed (schema 1
// kept the sums here as "waits": [[pid, tid, kind, syscall_nr, object, ns, count], ...], schemas
// 1 and 2 the edges as "edges": [[waker pid, tid, kind, wakee pid, tid, syscall_nr, object, ns,
// count], ...]).
json exact_json(const model::ExactSample& x) {
  json j = {{"on", x.state.on},
            {"mode", x.state.mode},
            {"problem", x.state.problem},
            {"hint", x.state.hint},
            {"switches", x.state.switches},
            {"thinned_out", x.state.thinned_out},
            {"lost", x.state.lost},
            {"thin_every_max", x.state.thin_every_max},
            {"thin_below_ns_max", x.state.thin_below_ns_max},
            {"budget_per_cpu_s", x.state.budget_per_cpu_s},
            {"file_hook", x.state.file_hook},
            {"file_hook_problem", x.state.file_hook_problem}};
  // How futex words were waited on, where new: [[pid, word, how], ...] (model::FutexOp).
  if (!x.futex_ops.empty()) {
    json ops = json::array();
    for (const auto& o : x.futex_ops) ops.push_back({o.pid, o.word, o.how});
    j["futex_ops"] = std::move(ops);
  }
  // What the fds the sums name are, where new: [[pid, fd, role, detail], ...] (model::FdName).
  if (!x.fd_names.empty()) {
    json names = json::array();
    for (const auto& n : x.fd_names) {
      names.push_back({n.pid, n.fd, static_cast<int>(n.role), n.detail});
    }
    j["fd_names"] = std::move(names);
  }
  return j;
}

// Readers of documents from a file that may be hostile: a missing or mistyped member reads as
// the default.
std::uint64_t ju64(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return 0;
  if (it->is_number_unsigned()) return it->get<std::uint64_t>();
  if (it->is_number_integer()) return static_cast<std::uint64_t>(it->get<std::int64_t>());
  return 0;
}
std::int64_t ji64(const json& j, const char* key) {
  return static_cast<std::int64_t>(ju64(j, key));
}
std::optional<std::uint64_t> jopt(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !(it->is_number_unsigned() || it->is_number_integer())) return std::nullopt;
  return ju64(j, key);
}
bool jbool(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}
std::string jstr(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}
const json& jobj(const json& j, const char* key) {
  static const json kEmpty = json::object();
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : kEmpty;
}

model::PressureSample pressure_from(const json& j) {
  model::PressureSample p;
  p.present = jbool(j, "present");
  p.supported = jbool(j, "supported");
  p.unsupported_reason = jstr(j, "unsupported_reason");
  p.some_total_ns = jopt(j, "some_total_ns");
  p.full_total_ns = jopt(j, "full_total_ns");
  return p;
}

std::uint16_t jport(const json& j, const char* key) {
  return static_cast<std::uint16_t>(std::min<std::uint64_t>(ju64(j, key), 65535));
}

// A group with an unknown state name is dropped: tomorrow's states are not today's.
std::optional<model::TcpTableSample> tcp_table_from(const json& j) {
  if (!j.is_object()) return std::nullopt;
  model::TcpTableSample t;
  t.at_ns = ji64(j, "at_ns");
  if (auto it = j.find("groups"); it != j.end() && it->is_array()) {
    for (const auto& g : *it) {
      if (!g.is_object()) continue;
      auto state = model::tcp_state_from_name(jstr(g, "state"));
      if (!state) continue;
      t.groups.push_back({*state, jbool(g, "server_side"), jbool(g, "target"),
                          jstr(g, "local_addr"), jport(g, "local_port"), jstr(g, "remote_addr"),
                          jport(g, "remote_port"), ju64(g, "count")});
    }
  }
  if (auto it = j.find("listeners"); it != j.end() && it->is_array()) {
    for (const auto& l : *it) {
      if (!l.is_object()) continue;
      const auto u32 = [&](const char* key) {
        return static_cast<std::uint32_t>(
            std::min<std::uint64_t>(ju64(l, key), std::numeric_limits<std::uint32_t>::max()));
      };
      t.listeners.push_back({jstr(l, "local_addr"), jport(l, "local_port"), u32("accept_queue"),
                             u32("backlog"), jbool(l, "target")});
    }
  }
  const auto port = [&](const char* key) -> std::optional<std::uint32_t> {
    auto v = jopt(j, key);
    if (!v || *v > 65535) return std::nullopt;
    return static_cast<std::uint32_t>(*v);
  };
  t.port_range_low = port("port_range_low");
  t.port_range_high = port("port_range_high");
  t.somaxconn = jopt(j, "somaxconn");
  t.max_syn_backlog = jopt(j, "max_syn_backlog");
  t.tw_reuse = jopt(j, "tw_reuse");
  t.syncookies = jopt(j, "syncookies");
  t.conntrack_count = jopt(j, "conntrack_count");
  t.conntrack_max = jopt(j, "conntrack_max");
  t.conntrack_drop = jopt(j, "conntrack_drop");
  t.conntrack_early_drop = jopt(j, "conntrack_early_drop");
  t.conntrack_insert_failed = jopt(j, "conntrack_insert_failed");
  return t;
}

std::optional<model::ShmSample> shm_from(const json& j) {
  if (!j.is_object()) return std::nullopt;
  model::ShmSample m;
  m.sysv_read = jbool(j, "sysv_read");
  m.segments = ju64(j, "segments");
  m.segment_bytes = ju64(j, "segment_bytes");
  m.segment_pages = ju64(j, "segment_pages");
  m.largest_bytes = ju64(j, "largest_bytes");
  m.target_segments = ju64(j, "target_segments");
  m.target_bytes = ju64(j, "target_bytes");
  m.shmmax_bytes = jopt(j, "shmmax_bytes");
  m.shmall_pages = jopt(j, "shmall_pages");
  m.shmmni = jopt(j, "shmmni");
  m.page_size_bytes = std::max<std::uint64_t>(1, ju64(j, "page_size_bytes"));
  m.posix_size_bytes = jopt(j, "posix_size_bytes");
  m.posix_used_bytes = jopt(j, "posix_used_bytes");
  m.target_posix_fds = ju64(j, "target_posix_fds");
  return m;
}

std::optional<model::RlimitSample> rlimits_from(const json& j) {
  if (!j.is_object() || !j.contains("processes") || !j["processes"].is_array()) return std::nullopt;
  model::RlimitSample r;
  for (const auto& e : j["processes"]) {
    if (!e.is_object()) continue;
    model::ProcessRlimits p;
    p.pid = static_cast<int>(std::min<std::uint64_t>(ju64(e, "pid"), 1U << 30));
    p.uid = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(ju64(e, "uid"), std::numeric_limits<std::uint32_t>::max()));
    p.nproc_soft = jopt(e, "nproc_soft");
    p.uid_tasks = ju64(e, "uid_tasks");
    p.memlock_soft_bytes = jopt(e, "memlock_soft_bytes");
    p.locked_bytes = ju64(e, "locked_bytes");
    p.stack_soft_bytes = jopt(e, "stack_soft_bytes");
    p.stack_bytes = ju64(e, "stack_bytes");
    p.core_soft_bytes = jopt(e, "core_soft_bytes");
    p.nproc_exempt = jbool(e, "nproc_exempt");
    p.memlock_exempt = jbool(e, "memlock_exempt");
    r.processes.push_back(p);
  }
  return r;
}

}  // namespace

std::string system_document(const model::SystemSample& s) {
  return system_json(s).dump();
}

std::string collector_document(const model::CollectorSample& c) {
  return collector_json(c).dump();
}

std::string exact_document(const model::ExactSample& x) {
  // An fd's name is a path, which may be any bytes: invalid UTF-8 is written as U+FFFD.
  return exact_json(x).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<model::SystemSample> system_from(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  model::SystemSample s;
  s.cpus_online = static_cast<int>(std::min<std::uint64_t>(ju64(j, "cpus_online"), 1u << 20));
  s.psi_cpu = pressure_from(jobj(j, "psi_cpu"));
  s.psi_memory = pressure_from(jobj(j, "psi_memory"));
  s.psi_io = pressure_from(jobj(j, "psi_io"));
  s.cgroup_memory_dir = jstr(j, "cgroup_memory_dir");
  s.cgroup_cpu_dir = jstr(j, "cgroup_cpu_dir");
  s.cgroup_memory_limit_bytes = jopt(j, "cgroup_memory_limit_bytes");
  s.cgroup_memory_usage_bytes = ju64(j, "cgroup_memory_usage_bytes");
  s.cgroup_nr_throttled = ju64(j, "cgroup_nr_throttled");
  s.cgroup_throttled_ns = ju64(j, "cgroup_throttled_ns");
  s.tcp_time_wait = jopt(j, "tcp_time_wait");
  s.files_open = jopt(j, "files_open");
  s.files_max = jopt(j, "files_max");
  if (auto it = j.find("tcp_table"); it != j.end()) s.tcp_table = tcp_table_from(*it);
  if (auto it = j.find("shm"); it != j.end()) s.shm = shm_from(*it);
  if (auto it = j.find("rlimits"); it != j.end()) s.rlimits = rlimits_from(*it);
  for (const auto& g : counter_groups()) {
    if (!j.contains(g.key)) continue;
    const json& counters = jobj(j, g.key);
    s.*g.present = true;
    for (const auto& [key, member] : g.counters) s.*member = ju64(counters, key);
  }
  if (auto it = j.find("disks"); it != j.end() && it->is_array()) {
    s.disks.emplace();
    for (const auto& d : *it) {
      if (!d.is_object()) continue;
      s.disks->push_back({jstr(d, "name"), ju64(d, "reads"), ju64(d, "writes"),
                          ju64(d, "read_bytes"), ju64(d, "write_bytes"), ju64(d, "read_time_ns"),
                          ju64(d, "write_time_ns"), ju64(d, "io_time_ns"),
                          ju64(d, "weighted_io_time_ns"), jopt(d, "flushes")});
    }
  }
  if (j.contains("net")) {
    const json& n = jobj(j, "net");
    s.has_net = true;
    s.tcp_retrans_segs = jopt(n, "tcp_retrans_segs");
    s.listen_overflows = jopt(n, "listen_overflows");
    s.listen_drops = jopt(n, "listen_drops");
    s.passive_opens = jopt(n, "passive_opens");
  }
  return s;
}

std::optional<model::CollectorSample> collector_from(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  model::CollectorSample c;
  c.delayacct_readable = jbool(j, "delayacct_readable");
  c.delayacct_on = jbool(j, "delayacct_on");
  c.taskstats_open = jbool(j, "taskstats_open");
  c.taskstats_problem = jstr(j, "taskstats_problem");
  c.stack_scans = ju64(j, "stack_scans");
  c.stack_named = ju64(j, "stack_named");
  c.stack_cache_hits = ju64(j, "stack_cache_hits");
  c.stack_problem = jstr(j, "stack_problem");
  c.socket_problem = jstr(j, "socket_problem");
  c.socket_order_tried = jbool(j, "socket_order_tried");
  c.socket_order_on = jbool(j, "socket_order_on");
  c.socket_order_problem = jstr(j, "socket_order_problem");
  c.task_iterator_on = jbool(j, "task_iterator_on");
  c.task_iterator_problem = jstr(j, "task_iterator_problem");
  c.proc_events_on = jbool(j, "proc_events_on");
  c.proc_events_problem = jstr(j, "proc_events_problem");
  c.full_listings = ju64(j, "full_listings");
  c.proc_events_lost = ju64(j, "proc_events_lost");
  c.cpu_ns = ji64(j, "cpu_ns");
  c.rss_bytes = ju64(j, "rss_bytes");
  c.thread_samples = ju64(j, "thread_samples");
  c.deep_samples = ju64(j, "deep_samples");
  if (auto it = j.find("cpus_allowed"); it != j.end() && it->is_number()) {
    c.cpus_allowed = it->get<double>();
  }
  return c;
}

std::optional<model::ExactSample> exact_from(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  model::ExactSample x;
  x.state.on = jbool(j, "on");
  x.state.mode = jstr(j, "mode");
  x.state.problem = jstr(j, "problem");
  x.state.hint = jstr(j, "hint");
  x.state.switches = ju64(j, "switches");
  x.state.thinned_out = ju64(j, "thinned_out");
  x.state.lost = ju64(j, "lost");
  x.state.thin_every_max =
      static_cast<std::uint32_t>(std::min<std::uint64_t>(ju64(j, "thin_every_max"), 1u << 30));
  x.state.thin_below_ns_max = ju64(j, "thin_below_ns_max");
  x.state.budget_per_cpu_s =
      static_cast<std::uint32_t>(std::min<std::uint64_t>(ju64(j, "budget_per_cpu_s"), 1u << 30));
  x.state.file_hook = jstr(j, "file_hook");
  x.state.file_hook_problem = jstr(j, "file_hook_problem");
  // Recordings made before the wait-for graph have no "edges"; schema 3 packs them beside.
  if (auto edges = j.find("edges"); edges != j.end() && edges->is_array()) {
    for (const auto& r : *edges) {
      if (!r.is_array() || r.size() != 9) continue;
      bool ok = true;
      for (const auto& v : r) ok = ok && v.is_number_integer();
      if (!ok) continue;
      const auto id = [&](std::size_t i) {
        return static_cast<int>(std::clamp<std::int64_t>(r[i].get<std::int64_t>(), 0, 1 << 30));
      };
      model::WakeEdge e;
      e.waker_pid = id(0);
      e.waker_tid = id(1);
      e.waker_kind = static_cast<model::WakerKind>(std::clamp<std::int64_t>(
          r[2].get<std::int64_t>(), 0, static_cast<std::int64_t>(model::kWakerKindCount) - 1));
      e.wakee_pid = id(3);
      e.wakee_tid = id(4);
      e.syscall_nr =
          static_cast<long>(std::clamp<std::int64_t>(r[5].get<std::int64_t>(), -1, 1 << 16));
      e.object = r[6].get<std::uint64_t>();
      e.ns = r[7].get<std::uint64_t>();
      e.count = r[8].get<std::uint64_t>();
      x.edges.push_back(e);
    }
  }
  if (auto ops = j.find("futex_ops"); ops != j.end() && ops->is_array()) {
    for (const auto& r : *ops) {
      if (!r.is_array() || r.size() != 3 || !r[0].is_number_unsigned() ||
          !r[1].is_number_unsigned() || !r[2].is_number_unsigned()) {
        continue;
      }
      model::FutexOp o;
      o.pid = static_cast<int>(std::min<std::uint64_t>(r[0].get<std::uint64_t>(), 1 << 30));
      o.word = r[1].get<std::uint64_t>();
      o.how = static_cast<std::uint8_t>(std::min<std::uint64_t>(r[2].get<std::uint64_t>(), 255));
      x.futex_ops.push_back(o);
    }
  }
  if (auto names = j.find("fd_names"); names != j.end() && names->is_array()) {
    for (const auto& r : *names) {
      if (!r.is_array() || r.size() != 4 || !r[0].is_number_unsigned() ||
          !r[1].is_number_unsigned() || !r[2].is_number_unsigned() || !r[3].is_string()) {
        continue;
      }
      const std::uint64_t role = r[2].get<std::uint64_t>();
      if (role > static_cast<std::uint64_t>(model::FdRole::kOther)) continue;
      model::FdName n;
      n.pid = static_cast<int>(std::min<std::uint64_t>(r[0].get<std::uint64_t>(), 1 << 30));
      n.fd = r[1].get<std::uint64_t>();
      n.role = static_cast<model::FdRole>(role);
      n.detail = r[3].get<std::string>();
      x.fd_names.push_back(std::move(n));
    }
  }
  auto rows = j.find("waits");
  if (rows == j.end() || !rows->is_array()) return x;
  for (const auto& r : *rows) {
    if (!r.is_array() || (r.size() != 7 && r.size() != 8)) continue;
    bool ok = true;
    for (const auto& v : r) ok = ok && v.is_number_integer();
    if (!ok) continue;
    model::ExactWait w;
    w.pid = static_cast<int>(std::clamp<std::int64_t>(r[0].get<std::int64_t>(), 0, 1 << 30));
    w.tid = static_cast<int>(std::clamp<std::int64_t>(r[1].get<std::int64_t>(), 0, 1 << 30));
    w.kind = static_cast<model::ExactKind>(std::clamp<std::int64_t>(
        r[2].get<std::int64_t>(), 0, static_cast<std::int64_t>(model::kExactKindCount) - 1));
    w.syscall_nr =
        static_cast<long>(std::clamp<std::int64_t>(r[3].get<std::int64_t>(), -1, 1 << 16));
    w.object = r[4].get<std::uint64_t>();
    w.ns = r[5].get<std::uint64_t>();
    w.count = r[6].get<std::uint64_t>();
    if (r.size() == 8) w.start_time_ticks = r[7].get<std::uint64_t>();
    x.waits.push_back(w);
  }
  return x;
}

}  // namespace chokepoint::store
