#include "store/recording.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <deque>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>
#include <unordered_map>

#include "store/sqlite.h"
#include "store/thread_pack.h"
#include "util/clock.h"

namespace chokepoint::store {
namespace {

using nlohmann::json;

// Wait columns, shared by thread_base and thread_sample.
constexpr const char* kWaitColumns =
    "state INTEGER, site INTEGER, syscall_nr INTEGER, a0 INTEGER, a1 INTEGER, a2 INTEGER, "
    "a3 INTEGER, a4 INTEGER, a5 INTEGER, fd_role INTEGER, fd_detail INTEGER, net_wait INTEGER, "
    "futex_caller INTEGER";

std::string schema_sql() {
  return fmt::format(
      "CREATE TABLE meta(key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;"
      "CREATE TABLE tick(id INTEGER PRIMARY KEY, at_ns INTEGER NOT NULL, lock_credit_ns INTEGER "
      "NOT NULL, runnable INTEGER, flags INTEGER NOT NULL);"
      "CREATE TABLE keyframe(tick INTEGER PRIMARY KEY);"
      "CREATE TABLE text(id INTEGER PRIMARY KEY, value TEXT NOT NULL);"
      "CREATE TABLE thread(id INTEGER PRIMARY KEY, pid INTEGER NOT NULL, tid INTEGER NOT NULL, "
      "start_time_ticks INTEGER NOT NULL, comm INTEGER NOT NULL, process_name INTEGER NOT NULL);"
      // Schema 3: ppid, the parent's pid at the first read (NULL: not read).
      "CREATE TABLE process(pid INTEGER PRIMARY KEY, name INTEGER NOT NULL, ppid INTEGER);"
      "CREATE TABLE pid_seen(tick INTEGER NOT NULL, pid INTEGER NOT NULL);"
      "CREATE TABLE thread_base(tick INTEGER NOT NULL, thread INTEGER NOT NULL, run_ns INTEGER, "
      "run_delay_ns INTEGER, utime_ns INTEGER, stime_ns INTEGER, majflt INTEGER, blkio_ns "
      "INTEGER, {0});"
      "CREATE INDEX thread_base_tick ON thread_base(tick);"
      // Schema 2: the thread rows of a tick in one packed blob (store/thread_pack.h), with
      // their count and summed run and run-delay deltas for SQL. Schema 1 had one
      // thread_sample row per thread instead.
      "CREATE TABLE thread_pack(tick INTEGER PRIMARY KEY, threads INTEGER NOT NULL, run_ns "
      "INTEGER NOT NULL, run_delay_ns INTEGER NOT NULL, data BLOB NOT NULL);"
      "CREATE TABLE thread_end(tick INTEGER NOT NULL, thread INTEGER NOT NULL, last_poll_ns "
      "INTEGER NOT NULL);"
      "CREATE TABLE process_sample(tick INTEGER NOT NULL, pid INTEGER NOT NULL, read_bytes "
      "INTEGER, write_bytes INTEGER, syscw INTEGER, rss_bytes INTEGER, anon_bytes INTEGER, "
      "delay_cpu_ns INTEGER, delay_blkio_ns INTEGER, delay_swapin_ns INTEGER, delay_reclaim_ns "
      "INTEGER, delay_thrashing_ns INTEGER, delay_compact_ns INTEGER, open_fds INTEGER, "
      "fd_soft_limit INTEGER);"
      "CREATE TABLE socket_sample(tick INTEGER NOT NULL, pid INTEGER NOT NULL, inode INTEGER, "
      "state INTEGER, server_side INTEGER, local_addr INTEGER, local_port INTEGER, remote_addr "
      "INTEGER, remote_port INTEGER, recv_queue_bytes INTEGER, send_queue_bytes INTEGER, "
      "notsent_bytes INTEGER, rtt_us INTEGER, bytes_acked INTEGER, sndbuf_limited_us INTEGER, "
      "rwnd_limited_us INTEGER);"
      "CREATE TABLE system_sample(tick INTEGER NOT NULL, sample TEXT NOT NULL);"
      "CREATE TABLE collector_sample(tick INTEGER NOT NULL, sample TEXT NOT NULL);"
      // Added without a schema change: a recording without it is read as one without the exact
      // mode, and an older reader ignores it. Schema 2 keeps the sums packed in `waits`
      // (store/thread_pack.h), not in the document; schema 3 the wait-for edges in `edges`.
      "CREATE TABLE exact_sample(tick INTEGER NOT NULL, sample TEXT NOT NULL, waits BLOB, edges "
      "BLOB);",
      kWaitColumns);
}

// Tables a thread-or-process row keyed by tick lives in (rotation deletes from each).
constexpr const char* kTickTables[] = {"pid_seen",      "thread_base",      "thread_pack",
                                       "thread_end",    "process_sample",   "socket_sample",
                                       "system_sample", "collector_sample", "exact_sample"};

constexpr std::int64_t kFlagClosing = 1, kFlagExited = 2;

// --- JSON for the two sample kinds kept as documents ---

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

json shm_json(const model::ShmSample& m) {
  return {{"sysv_read", m.sysv_read},
          {"segments", m.segments},
          {"segment_bytes", m.segment_bytes},
          {"segment_pages", m.segment_pages},
          {"largest_bytes", m.largest_bytes},
          {"target_segments", m.target_segments},
          {"target_bytes", m.target_bytes},
          {"shmmax_bytes", opt_json(m.shmmax_bytes)},
          {"shmall_pages", opt_json(m.shmall_pages)},
          {"shmmni", opt_json(m.shmmni)},
          {"page_size_bytes", m.page_size_bytes},
          {"posix_size_bytes", opt_json(m.posix_size_bytes)},
          {"posix_used_bytes", opt_json(m.posix_used_bytes)},
          {"target_posix_fds", m.target_posix_fds}};
}

json rlimits_json(const model::RlimitSample& r) {
  json processes = json::array();
  for (const auto& p : r.processes) {
    processes.push_back({{"pid", p.pid},
                         {"uid", p.uid},
                         {"nproc_soft", opt_json(p.nproc_soft)},
                         {"uid_tasks", p.uid_tasks},
                         {"memlock_soft_bytes", opt_json(p.memlock_soft_bytes)},
                         {"locked_bytes", p.locked_bytes},
                         {"stack_soft_bytes", opt_json(p.stack_soft_bytes)},
                         {"stack_bytes", p.stack_bytes},
                         {"core_soft_bytes", opt_json(p.core_soft_bytes)},
                         {"nproc_exempt", p.nproc_exempt},
                         {"memlock_exempt", p.memlock_exempt}});
  }
  return {{"processes", std::move(processes)}};
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
  if (s.has_cpu) {
    j["cpu"] = {
        {"total_ns", s.cpu_total_ns}, {"busy_ns", s.cpu_busy_ns}, {"iowait_ns", s.cpu_iowait_ns}};
  }
  if (s.has_meminfo) {
    j["meminfo"] = {{"total_bytes", s.mem_total_bytes},
                    {"available_bytes", s.mem_available_bytes},
                    {"swap_total_bytes", s.swap_total_bytes},
                    {"swap_free_bytes", s.swap_free_bytes}};
  }
  if (s.has_vmstat) {
    j["vmstat"] = {{"pgmajfault", s.pgmajfault},
                   {"refault_file", s.refault_file},
                   {"refault_anon", s.refault_anon},
                   {"oom_kill", s.oom_kill}};
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
  if (s.shm) j["shm"] = shm_json(*s.shm);
  if (s.rlimits) j["rlimits"] = rlimits_json(*s.rlimits);
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
  return j;
}

// The exact mode's state of a tick; its sums and wait-for edges go beside it, packed (schema 1
// kept the sums here as "waits": [[pid, tid, kind, syscall_nr, object, ns, count], ...], schemas
// 1 and 2 the edges as "edges": [[waker pid, tid, kind, wakee pid, tid, syscall_nr, object, ns,
// count], ...]).
json exact_json(const model::ExactSample& x) {
  return {{"on", x.state.on},
          {"mode", x.state.mode},
          {"problem", x.state.problem},
          {"hint", x.state.hint},
          {"switches", x.state.switches},
          {"thinned_out", x.state.thinned_out},
          {"lost", x.state.lost},
          {"thin_every_max", x.state.thin_every_max},
          {"budget_per_cpu_s", x.state.budget_per_cpu_s}};
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
  if (j.contains("cpu")) {
    const json& c = jobj(j, "cpu");
    s.has_cpu = true;
    s.cpu_total_ns = ju64(c, "total_ns");
    s.cpu_busy_ns = ju64(c, "busy_ns");
    s.cpu_iowait_ns = ju64(c, "iowait_ns");
  }
  if (j.contains("meminfo")) {
    const json& m = jobj(j, "meminfo");
    s.has_meminfo = true;
    s.mem_total_bytes = ju64(m, "total_bytes");
    s.mem_available_bytes = ju64(m, "available_bytes");
    s.swap_total_bytes = ju64(m, "swap_total_bytes");
    s.swap_free_bytes = ju64(m, "swap_free_bytes");
  }
  if (j.contains("vmstat")) {
    const json& v = jobj(j, "vmstat");
    s.has_vmstat = true;
    s.pgmajfault = ju64(v, "pgmajfault");
    s.refault_file = ju64(v, "refault_file");
    s.refault_anon = ju64(v, "refault_anon");
    s.oom_kill = ju64(v, "oom_kill");
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
  x.state.budget_per_cpu_s =
      static_cast<std::uint32_t>(std::min<std::uint64_t>(ju64(j, "budget_per_cpu_s"), 1u << 30));
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

// Absolute counters of one thread, as the last row of it left them, with that row's wait and
// time (a thread_sample row leaves out what did not change since).
struct Counters {
  std::uint64_t run_ns = 0, run_delay_ns = 0, utime_ns = 0, stime_ns = 0, majflt = 0, blkio_ns = 0;
  model::WaitObservation wait;
  std::int64_t row_ns = 0;
};

bool same_wait(const model::WaitObservation& a, const model::WaitObservation& b) {
  return a.state == b.state && a.where == b.where && a.syscall_nr == b.syscall_nr &&
         a.args == b.args && a.fd_role == b.fd_role && a.fd_detail == b.fd_detail &&
         a.process_waits_on_network == b.process_waits_on_network && a.frozen == b.frozen &&
         a.futex_caller == b.futex_caller;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Writer

struct RecordingWriter::Impl {
  std::string path;
  WriterOptions opt;
  DbHandle db;
  Stmt begin_tx, commit_tx, rollback_tx;
  Stmt ins_tick, ins_keyframe, ins_text, ins_thread, ins_process, ins_pid, ins_base, ins_pack,
      ins_end, ins_process_sample, ins_socket, ins_system, ins_collector, ins_exact;
  // The exact mode's latest sums, by (pid, tid, kind, syscall, object): written whole at each
  // keyframe, so that rotation keeps every baseline.
  std::map<std::tuple<int, int, std::uint64_t, int, long, std::uint64_t>, model::ExactWait>
      exact_latest;
  // ... and its latest wait-for edges, by (waker pid, tid, kind, wakee pid, tid, syscall, object).
  std::map<std::tuple<int, int, int, int, int, long, std::uint64_t>, model::WakeEdge> edges_latest;
  // Both packed against what was written before (store/thread_pack.h), from the first tick with
  // the exact mode after each keyframe.
  DeltaPacker<model::ExactWait> waits_packer;
  DeltaPacker<model::WakeEdge> edges_packer;
  bool exact_restart = true;

  struct Thread {
    std::int64_t id = 0;
    model::ThreadSample last;  // absolute counters, the last wait with stat, comm and names
    std::int64_t row_ns = 0;   // the time of its last row (base or sample)
    bool row_written = false;  // its thread row is committed
  };
  std::map<std::pair<int, int>, Thread> threads;
  std::int64_t next_thread_id = 1;
  std::unordered_map<std::string, std::int64_t> texts;
  std::int64_t next_text_id = 1;
  std::map<int, std::string> process_names;
  std::map<int, int> process_ppids;  // schema 3's process.ppid, from the first read
  std::set<int> process_names_written;
  std::int64_t next_tick_id = 1;
  std::deque<std::pair<std::int64_t, std::int64_t>> keyframes;  // (tick id, at_ns), oldest first
  bool need_keyframe = true;
  std::int64_t next_keyframe_ns = 0;
  std::uint64_t bytes_at_keyframe = 0;
  bool failing = false;
  int tx_rc = SQLITE_OK;  // the first failure inside the tick's transaction
  std::uint64_t ticks_written = 0, ticks_lost = 0, thread_rows = 0;
  StackTableWriter stack_tables;  // schema 3: stacks over time

  // Rolled back with a failed tick.
  std::vector<std::string> tx_texts;
  std::vector<std::pair<int, int>> tx_threads;
  std::vector<int> tx_process_names;

  util::Result<void> prepare_all();
  std::int64_t text_id(const std::string& s);
  // Binds column i of a process row to pid's parent, or NULL when it was not read.
  void bind_ppid(Stmt& st, int i, int pid) const {
    auto it = process_ppids.find(pid);
    if (it == process_ppids.end()) {
      st.bind_null(i);
    } else {
      st.bind(i, it->second);
    }
  }
  int write_thread_row(Thread& t);
  ThreadPacker packer;  // the tick's thread rows
  WaitRow wait_row(const model::WaitObservation& w);
  int write_wait(Stmt& st, int first_col, const model::WaitObservation& w);
  int write_base(std::int64_t tick_id, const Thread& t);
  int write_tick(const model::Tick& tick, std::int64_t tick_id, bool keyframe);
  std::uint64_t used_bytes();
  void rotate(std::int64_t newest_at_ns);
  int delete_before(std::int64_t tick_id);
};

RecordingWriter::RecordingWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RecordingWriter::~RecordingWriter() {
  if (impl_ && impl_->db) {
    // Fold the WAL back into the file, so that a finished recording is one file (readers then
    // leave no -wal and -shm files beside it).
    (void)exec(impl_->db.get(), "PRAGMA journal_mode=DELETE", impl_->path);
  }
}

bool RecordingWriter::failing() const {
  return impl_->failing;
}
std::uint64_t RecordingWriter::ticks_written() const {
  return impl_->ticks_written;
}
std::uint64_t RecordingWriter::ticks_lost() const {
  return impl_->ticks_lost;
}
std::uint64_t RecordingWriter::thread_rows_written() const {
  return impl_->thread_rows;
}

util::Result<void> RecordingWriter::Impl::prepare_all() {
  sqlite3* d = db.get();
  const std::string wait_params = "?,?,?,?,?,?,?,?,?,?,?,?,?";
  struct Item {
    Stmt* stmt;
    std::string sql;
  };
  const Item items[] = {
      {&begin_tx, "BEGIN"},
      {&commit_tx, "COMMIT"},
      {&rollback_tx, "ROLLBACK"},
      {&ins_tick, "INSERT INTO tick VALUES(?,?,?,?,?)"},
      {&ins_keyframe, "INSERT INTO keyframe VALUES(?)"},
      {&ins_text, "INSERT INTO text VALUES(?,?)"},
      {&ins_thread, "INSERT INTO thread VALUES(?,?,?,?,?,?)"},
      {&ins_process, "INSERT OR REPLACE INTO process VALUES(?,?,?)"},
      {&ins_pid, "INSERT INTO pid_seen VALUES(?,?)"},
      {&ins_base, "INSERT INTO thread_base VALUES(?,?,?,?,?,?,?,?," + wait_params + ")"},
      {&ins_pack, "INSERT INTO thread_pack VALUES(?,?,?,?,?)"},
      {&ins_end, "INSERT INTO thread_end VALUES(?,?,?)"},
      {&ins_process_sample, "INSERT INTO process_sample VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"},
      {&ins_socket, "INSERT INTO socket_sample VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"},
      {&ins_system, "INSERT INTO system_sample VALUES(?,?)"},
      {&ins_collector, "INSERT INTO collector_sample VALUES(?,?)"},
      {&ins_exact, "INSERT INTO exact_sample VALUES(?,?,?,?)"},
  };
  for (const auto& item : items) {
    auto s = Stmt::prepare(d, item.sql);
    if (!s) return s.error();
    *item.stmt = std::move(*s);
  }
  return {};
}

util::Result<std::unique_ptr<RecordingWriter>> RecordingWriter::create(const std::string& path,
                                                                       WriterOptions options) {
  if (path.empty()) {
    return util::Error{"the recording needs a file name", "pass e.g. -o run.chokepoint", EINVAL};
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    // Replace an earlier recording; refuse to clobber anything else.
    if (!S_ISREG(st.st_mode)) {
      return util::Error{fmt::format("{} exists and is not a regular file", path),
                         "choose another file name for the recording", EEXIST};
    }
    if (st.st_size > 0) {
      auto old = RecordingReader::open(path);
      if (!old) {
        return util::Error{
            fmt::format("{} exists and is not a chokepoint recording: not replacing it", path),
            "choose another file name, or remove the file first", EEXIST};
      }
    }
    for (const char* suffix : {"", "-wal", "-shm"}) ::unlink((path + suffix).c_str());
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->opt = std::move(options);
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  impl->db.reset(raw);
  if (rc != SQLITE_OK) return sqlite_error(raw, rc, "cannot create " + path, path);
  sqlite3_busy_timeout(raw, 1000);  // readers recovering the WAL index hold it for moments
  auto ok = exec(raw,
                 // One transaction: a file killed while it is created is a recording or not.
                 fmt::format("PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;"
                             "PRAGMA journal_size_limit=8388608;BEGIN;PRAGMA application_id={};"
                             "PRAGMA user_version={};{}COMMIT;",
                             kApplicationId, kSchemaVersion, schema_sql() + stack_schema_sql()),
                 path);
  if (!ok) return ok.error();
  if (auto p = impl->prepare_all(); !p) return p.error();
  return std::unique_ptr<RecordingWriter>(new RecordingWriter(std::move(impl)));
}

void RecordingWriter::begin(const model::RecordingInfo& info) {
  Impl& w = *impl_;
  utsname u{};
  ::uname(&u);
  const std::int64_t mono = util::monotonic_ns();
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  const std::int64_t unix_ns = static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
  const std::pair<const char*, std::string> rows[] = {
      {"schema_version", std::to_string(kSchemaVersion)},
      {"chokepoint_version", w.opt.chokepoint_version},
      {"kernel", std::string(u.release) + " " + u.version},
      {"machine", u.machine},
      {"cpus", std::to_string(sysconf(_SC_NPROCESSORS_ONLN))},
      {"created_unix_ns", std::to_string(unix_ns)},
      {"created_monotonic_ns", std::to_string(mono)},
      {"target_kind", info.target.kind},
      {"target_spec", info.target.spec},
      {"interval_ns", std::to_string(info.interval_ns)},
  };
  auto st = Stmt::prepare(w.db.get(), "INSERT OR REPLACE INTO meta VALUES(?,?)");
  if (!st) {
    if (w.opt.on_write_error) w.opt.on_write_error(st.error());
    return;
  }
  for (const auto& [k, v] : rows) {
    st->bind_text(1, k);
    st->bind_text(2, v);
    if (int rc = st->run(); rc != SQLITE_OK && w.opt.on_write_error) {
      w.opt.on_write_error(sqlite_error(w.db.get(), rc, "writing " + w.path, w.path));
      return;
    }
  }
}

util::Result<void> RecordingWriter::add_note(const std::string& key, const std::string& text) {
  Impl& w = *impl_;
  auto st = Stmt::prepare(w.db.get(), "INSERT OR REPLACE INTO meta VALUES(?,?)");
  if (!st) return st.error();
  st->bind_text(1, "note." + key);
  st->bind_text(2, text);
  if (int rc = st->run(); rc != SQLITE_OK) {
    return sqlite_error(w.db.get(), rc, "writing " + w.path, w.path);
  }
  return {};
}

util::Result<void> RecordingWriter::add_stack_slice(const StackSlice& slice) {
  Impl& w = *impl_;
  int rc = w.begin_tx.run();
  if (rc == SQLITE_OK) rc = w.stack_tables.write(w.db.get(), slice);
  if (rc == SQLITE_OK) rc = w.commit_tx.run();
  if (rc != SQLITE_OK) {
    const util::Error err = sqlite_error(w.db.get(), rc, "writing " + w.path, w.path);
    w.rollback_tx.run();
    w.stack_tables.rolled_back();
    return err;
  }
  w.stack_tables.committed();
  return {};
}

std::int64_t RecordingWriter::Impl::text_id(const std::string& s) {
  auto it = texts.find(s);
  if (it != texts.end()) return it->second;
  const std::int64_t id = next_text_id++;
  ins_text.bind(1, id);
  ins_text.bind_text(2, s);
  if (int rc = ins_text.run(); rc != SQLITE_OK) {
    if (tx_rc == SQLITE_OK) tx_rc = rc;  // the tick is rolled back
    return 0;
  }
  texts.emplace(s, id);
  tx_texts.push_back(s);
  return id;
}

int RecordingWriter::Impl::write_thread_row(Thread& t) {
  if (t.row_written) return SQLITE_OK;
  ins_thread.bind(1, t.id);
  ins_thread.bind(2, t.last.key.pid);
  ins_thread.bind(3, t.last.key.tid);
  ins_thread.bind_u64(4, t.last.key.start_time_ticks);
  ins_thread.bind(5, text_id(t.last.comm));
  ins_thread.bind(6, text_id(t.last.process_name));
  int rc = ins_thread.run();
  if (rc == SQLITE_OK) {
    t.row_written = true;
    tx_threads.push_back({t.last.key.pid, t.last.key.tid});
  }
  return rc;
}

WaitRow RecordingWriter::Impl::wait_row(const model::WaitObservation& w) {
  WaitRow r;
  r.state = static_cast<unsigned char>(w.state);
  r.site = static_cast<std::int64_t>(w.where);
  if (w.where == model::SyscallWhere::kInSyscall) {
    r.syscall_nr = w.syscall_nr;
    r.args = w.args;
  }
  r.fd_role = static_cast<std::int64_t>(w.fd_role);
  if (!w.fd_detail.empty()) r.fd_detail = text_id(w.fd_detail);
  // net_wait holds two flags: bit 0 the process waits on the network, bit 1 its cgroup is frozen.
  r.net_wait = (w.process_waits_on_network ? 1 : 0) | (w.frozen ? 2 : 0);
  if (!w.futex_caller.empty()) r.futex_caller = text_id(w.futex_caller);
  return r;
}

int RecordingWriter::Impl::write_wait(Stmt& st, int c, const model::WaitObservation& w) {
  const WaitRow r = wait_row(w);
  st.bind(c, r.state);
  st.bind(c + 1, r.site);
  if (r.site == kSiteInSyscall) {
    st.bind(c + 2, r.syscall_nr);
    for (int i = 0; i < 6; ++i) st.bind_u64(c + 3 + i, r.args[static_cast<std::size_t>(i)]);
  } else {
    for (int i = 0; i < 7; ++i) st.bind_null(c + 2 + i);
  }
  st.bind(c + 9, r.fd_role);
  // Text references are NULL when there is none.
  if (r.fd_detail == 0) {
    st.bind_null(c + 10);
  } else {
    st.bind(c + 10, r.fd_detail);
  }
  st.bind(c + 11, r.net_wait);
  if (r.futex_caller == 0) {
    st.bind_null(c + 12);
  } else {
    st.bind(c + 12, r.futex_caller);
  }
  return SQLITE_OK;
}

int RecordingWriter::Impl::write_base(std::int64_t tick_id, const Thread& t) {
  const auto& s = t.last;
  ins_base.bind(1, tick_id);
  ins_base.bind(2, t.id);
  ins_base.bind_u64(3, s.run_ns);
  ins_base.bind_u64(4, s.run_delay_ns);
  ins_base.bind_u64(5, s.utime_ns);
  ins_base.bind_u64(6, s.stime_ns);
  ins_base.bind_u64(7, s.majflt);
  ins_base.bind_u64(8, s.blkio_delay_ns);
  write_wait(ins_base, 9, s.wait);
  ++thread_rows;
  return ins_base.run();
}

int RecordingWriter::Impl::write_tick(const model::Tick& tick, std::int64_t tick_id,
                                      bool keyframe) {
  int rc = SQLITE_OK;
  auto check = [&rc](int r) {
    if (rc == SQLITE_OK && r != SQLITE_OK) rc = r;
  };
  ins_tick.bind(1, tick_id);
  ins_tick.bind(2, tick.at_ns);
  ins_tick.bind(3, tick.lock_credit_ns);
  if (tick.runnable) {
    ins_tick.bind(4, *tick.runnable);
  } else {
    ins_tick.bind_null(4);
  }
  ins_tick.bind(5, (tick.closing ? kFlagClosing : 0) | (tick.target_exited ? kFlagExited : 0));
  check(ins_tick.run());
  if (keyframe) {
    // Every live thread gets an absolute base row here, so that the ticks before can go.
    for (auto& [id, t] : threads) {
      check(write_thread_row(t));
      check(write_base(tick_id, t));
      t.row_ns = tick.at_ns;
    }
    ins_keyframe.bind(1, tick_id);
    check(ins_keyframe.run());
  }
  for (const auto& e : tick.ended) {
    auto it = threads.find({e.pid, e.tid});
    if (it == threads.end()) continue;
    ins_end.bind(1, tick_id);
    ins_end.bind(2, it->second.id);
    ins_end.bind(3, e.last_poll_ns);
    check(ins_end.run());
    threads.erase(it);
  }
  for (int pid : tick.new_pids) {
    ins_pid.bind(1, tick_id);
    ins_pid.bind(2, pid);
    check(ins_pid.run());
  }
  packer.clear();
  std::uint64_t run_sum = 0, delay_sum = 0;
  for (const auto& s : tick.threads) {
    const auto id = std::make_pair(s.key.pid, s.key.tid);
    if (s.first) {
      Thread& t = threads[id];
      t = Thread{};
      t.id = next_thread_id++;
      t.last = s;
      t.row_ns = s.at_ns;
      check(write_thread_row(t));
      check(write_base(tick_id, t));
      continue;
    }
    auto it = threads.find(id);
    if (it == threads.end()) continue;
    Thread& t = it->second;
    PackedThread row;
    row.thread = t.id;
    // None: read at every poll since its last row (the common case for a thread that runs).
    if (s.prev_poll_ns != t.row_ns) row.prev_poll_ago_ns = s.at_ns - s.prev_poll_ns;
    t.row_ns = s.at_ns;
    row.has_stat = s.has_stat;
    row.run_ns = s.run_ns - t.last.run_ns;  // modular: the reader adds it back exactly
    row.run_delay_ns = s.run_delay_ns - t.last.run_delay_ns;
    run_sum += row.run_ns;
    delay_sum += row.run_delay_ns;
    t.last.run_ns = s.run_ns;
    t.last.run_delay_ns = s.run_delay_ns;
    if (s.has_stat) {
      row.utime_ns = s.utime_ns - t.last.utime_ns;
      row.stime_ns = s.stime_ns - t.last.stime_ns;
      row.majflt = s.majflt - t.last.majflt;
      row.blkio_ns = s.blkio_delay_ns - t.last.blkio_delay_ns;
      // No wait: the same wait as the thread's row before (a thread that keeps going back to
      // the same condition variable, socket or file).
      if (!same_wait(s.wait, t.last.wait)) row.wait = wait_row(s.wait);
      t.last.utime_ns = s.utime_ns;
      t.last.stime_ns = s.stime_ns;
      t.last.majflt = s.majflt;
      t.last.blkio_delay_ns = s.blkio_delay_ns;
      t.last.wait = s.wait;
    }
    packer.add(row);
    ++thread_rows;
  }
  if (packer.count() > 0) {
    ins_pack.bind(1, tick_id);
    ins_pack.bind(2, static_cast<std::int64_t>(packer.count()));
    ins_pack.bind_u64(3, run_sum);
    ins_pack.bind_u64(4, delay_sum);
    ins_pack.bind_blob(5, packer.bytes());
    check(ins_pack.run());
  }
  for (const auto& p : tick.processes) {
    if (p.name) {
      process_names[p.pid] = *p.name;
      process_names_written.erase(p.pid);
    }
    if (p.ppid) process_ppids[p.pid] = *p.ppid;
    if (!process_names_written.count(p.pid) && process_names.count(p.pid)) {
      ins_process.bind(1, p.pid);
      ins_process.bind(2, text_id(process_names[p.pid]));
      bind_ppid(ins_process, 3, p.pid);
      check(ins_process.run());
      process_names_written.insert(p.pid);
      tx_process_names.push_back(p.pid);
    }
    Stmt& st = ins_process_sample;
    st.bind(1, tick_id);
    st.bind(2, p.pid);
    if (p.io) {
      st.bind_u64(3, p.io->read_bytes);
      st.bind_u64(4, p.io->write_bytes);
      st.bind_u64(5, p.io->syscw);
    } else {
      for (int c = 3; c <= 5; ++c) st.bind_null(c);
    }
    if (p.has_status) {
      st.bind_u64(6, p.rss_bytes);
      st.bind_u64(7, p.anon_bytes);
    } else {
      st.bind_null(6);
      st.bind_null(7);
    }
    if (p.delays) {
      const auto& d = *p.delays;
      st.bind_u64(8, d.cpu_ns);
      st.bind_u64(9, d.blkio_ns);
      st.bind_u64(10, d.swapin_ns);
      st.bind_u64(11, d.reclaim_ns);
      st.bind_u64(12, d.thrashing_ns);
      st.bind_u64(13, d.compact_ns);
    } else {
      for (int c = 8; c <= 13; ++c) st.bind_null(c);
    }
    st.bind_opt(14, p.open_fds);
    st.bind_opt(15, p.fd_soft_limit);
    check(st.run());
  }
  for (const auto& s : tick.sockets) {
    Stmt& st = ins_socket;
    st.bind(1, tick_id);
    st.bind(2, s.pid);
    st.bind_u64(3, s.inode);
    st.bind(4, static_cast<std::int64_t>(s.state));
    st.bind(5, s.server_side ? 1 : 0);
    st.bind(6, text_id(s.local_addr));
    st.bind(7, s.local_port);
    st.bind(8, text_id(s.remote_addr));
    st.bind(9, s.remote_port);
    st.bind(10, s.recv_queue_bytes);
    st.bind(11, s.send_queue_bytes);
    st.bind(12, s.notsent_bytes);
    st.bind(13, s.rtt_us);
    st.bind_u64(14, s.bytes_acked);
    st.bind_u64(15, s.sndbuf_limited_us);
    st.bind_u64(16, s.rwnd_limited_us);
    check(st.run());
  }
  if (tick.system) {
    ins_system.bind(1, tick_id);
    ins_system.bind_text(2, system_json(*tick.system).dump());
    check(ins_system.run());
  }
  if (tick.collector) {
    ins_collector.bind(1, tick_id);
    ins_collector.bind_text(2, collector_json(*tick.collector).dump());
    check(ins_collector.run());
  }
  if (tick.exact) {
    const auto wait_key = [](const model::ExactWait& w) {
      return std::tuple{w.pid,        w.tid,   w.start_time_ticks, static_cast<int>(w.kind),
                        w.syscall_nr, w.object};
    };
    const auto edge_key = [](const model::WakeEdge& e) {
      return std::tuple{e.waker_pid, e.waker_tid, static_cast<int>(e.waker_kind),
                        e.wakee_pid, e.wakee_tid, e.syscall_nr,
                        e.object};
    };
    for (const auto& w : tick.exact->waits) exact_latest[wait_key(w)] = w;
    for (const auto& e : tick.exact->edges) edges_latest[edge_key(e)] = e;
    // In their keys' order (the kernel's maps give them in hash order): a thread's entries
    // together, so that a reader looks the thread up once, and ids in a row, one byte each.
    std::vector<model::ExactWait> waits;
    std::vector<model::WakeEdge> edges;
    if (keyframe) {
      waits.reserve(exact_latest.size());
      for (const auto& [k, w] : exact_latest) waits.push_back(w);
      edges.reserve(edges_latest.size());
      for (const auto& [k, e] : edges_latest) edges.push_back(e);
    } else {
      waits = tick.exact->waits;
      std::sort(waits.begin(), waits.end(),
                [&](const auto& a, const auto& b) { return wait_key(a) < wait_key(b); });
      edges = tick.exact->edges;
      std::sort(edges.begin(), edges.end(),
                [&](const auto& a, const auto& b) { return edge_key(a) < edge_key(b); });
    }
    ins_exact.bind(1, tick_id);
    ins_exact.bind_text(2, exact_json(*tick.exact).dump());
    exact_restart = exact_restart || keyframe;
    ins_exact.bind_blob(3, waits_packer.pack(waits, exact_restart));
    ins_exact.bind_blob(4, edges_packer.pack(edges, exact_restart));
    exact_restart = false;
    check(ins_exact.run());
    // Threads that ended have had their last sums.
    std::set<std::pair<int, std::uint64_t>> gone;
    for (const auto& e : tick.ended) gone.insert({e.tid, e.start_time_ticks});
    for (auto it = exact_latest.begin(); it != exact_latest.end();) {
      const int tid = std::get<1>(it->first);
      const std::uint64_t start = std::get<2>(it->first);
      // A sum without a start time is of the ended thread's id, whoever it was.
      const bool ended = gone.count({tid, start}) != 0 ||
                         (start == 0 && std::any_of(gone.begin(), gone.end(),
                                                    [&](const auto& g) { return g.first == tid; }));
      it = ended ? exact_latest.erase(it) : std::next(it);
    }
    for (auto it = edges_latest.begin(); it != edges_latest.end();) {
      const int wakee = std::get<4>(it->first);  // the edges' key has no start time
      const bool ended =
          std::any_of(gone.begin(), gone.end(), [&](const auto& g) { return g.first == wakee; });
      it = ended ? edges_latest.erase(it) : std::next(it);
    }
  }
  check(tx_rc);
  return rc;
}

std::uint64_t RecordingWriter::Impl::used_bytes() {
  auto pragma = [&](const char* sql) -> std::uint64_t {
    auto st = Stmt::prepare(db.get(), sql);
    if (!st || st->step() != SQLITE_ROW) return 0;
    return st->u64(0);
  };
  const std::uint64_t pages = pragma("PRAGMA page_count");
  const std::uint64_t free_pages = pragma("PRAGMA freelist_count");
  return (pages - std::min(pages, free_pages)) * pragma("PRAGMA page_size");
}

int RecordingWriter::Impl::delete_before(std::int64_t tick_id) {
  int rc = begin_tx.run();
  auto run = [&](const std::string& sql) {
    if (rc != SQLITE_OK) return;
    auto st = Stmt::prepare(db.get(), sql);
    if (!st) {
      rc = SQLITE_ERROR;
      return;
    }
    st->bind(1, tick_id);
    rc = st->run();
  };
  for (const char* table : kTickTables) run(fmt::format("DELETE FROM {} WHERE tick < ?1", table));
  if (rc == SQLITE_OK) rc = stack_tables.delete_before_tick(db.get(), tick_id);
  run("DELETE FROM keyframe WHERE tick < ?1");
  run("DELETE FROM tick WHERE id < ?1");
  if (rc == SQLITE_OK) {
    rc = commit_tx.run();
  } else {
    rollback_tx.run();
  }
  return rc;
}

// Drops the oldest keyframe spans: those older than keep_for, and while the file is over
// max_bytes, one span per tick. The newest keyframe is never dropped, nor anything after it.
void RecordingWriter::Impl::rotate(std::int64_t newest_at_ns) {
  std::int64_t cutoff = 0;
  if (opt.keep_for_ns > 0) {
    for (std::size_t i = 1; i < keyframes.size(); ++i) {
      if (keyframes[i].second <= newest_at_ns - opt.keep_for_ns) cutoff = keyframes[i].first;
    }
  }
  if (opt.max_bytes > 0) {
    const std::uint64_t used = used_bytes();
    if (used > opt.max_bytes) {
      if (keyframes.size() >= 2) {
        cutoff = std::max(cutoff, keyframes[1].first);
      } else {
        need_keyframe = true;  // the next tick starts a span that the one before can go for
      }
    } else if (used > bytes_at_keyframe + opt.max_bytes / 8) {
      need_keyframe = true;  // spans of an eighth of the limit: rotation drops little at a time
    }
  }
  if (cutoff == 0) return;
  if (delete_before(cutoff) != SQLITE_OK) return;  // tried again at the next tick
  while (!keyframes.empty() && keyframes.front().first < cutoff) keyframes.pop_front();
}

void RecordingWriter::add(model::Tick tick) {
  Impl& w = *impl_;
  const std::int64_t tick_id = w.next_tick_id++;
  const bool keyframe = w.need_keyframe || tick.at_ns >= w.next_keyframe_ns;
  // The writer's thread state moves with the stream even when a tick is lost, so it is saved
  // first: a failed tick is followed by a keyframe, which restores absolute values.
  w.tx_rc = SQLITE_OK;
  int rc = w.begin_tx.run();
  if (rc == SQLITE_OK) rc = w.write_tick(tick, tick_id, keyframe);
  if (rc == SQLITE_OK) rc = w.commit_tx.run();
  if (rc != SQLITE_OK) {
    const util::Error err = sqlite_error(w.db.get(), rc, "writing " + w.path, w.path);
    w.rollback_tx.run();
    for (const auto& s : w.tx_texts) w.texts.erase(s);
    for (const auto& id : w.tx_threads) {
      if (auto it = w.threads.find(id); it != w.threads.end()) it->second.row_written = false;
    }
    for (int pid : w.tx_process_names) w.process_names_written.erase(pid);
    w.tx_texts.clear();
    w.tx_threads.clear();
    w.tx_process_names.clear();
    w.waits_packer.forget();  // the reader will not have seen what they packed
    w.edges_packer.forget();
    w.need_keyframe = true;
    ++w.ticks_lost;
    if (!w.failing && w.opt.on_write_error) w.opt.on_write_error(err);
    w.failing = true;
    return;
  }
  w.tx_texts.clear();
  w.tx_threads.clear();
  w.tx_process_names.clear();
  ++w.ticks_written;
  if (w.failing && w.opt.on_write_resumed) w.opt.on_write_resumed();
  w.failing = false;
  if (keyframe) {
    w.keyframes.emplace_back(tick_id, tick.at_ns);
    w.need_keyframe = false;
    w.next_keyframe_ns = tick.at_ns + w.opt.keyframe_every_ns;
    if (w.opt.max_bytes > 0) w.bytes_at_keyframe = w.used_bytes();
  }
  if (w.opt.max_bytes > 0 || w.opt.keep_for_ns > 0) w.rotate(tick.at_ns);
}

// ---------------------------------------------------------------------------------------------
// Reader

struct RecordingReader::Impl {
  std::string path;
  DbHandle db;
  model::RecordingInfo info;
  RecordingMeta meta;
  std::map<std::string, std::string> notes;
  std::optional<std::pair<std::int64_t, std::int64_t>> range;
  std::unordered_map<std::int64_t, std::string> texts;
  struct Thread {
    model::ThreadKey key;
    std::string comm, process_name;
  };
  std::unordered_map<std::int64_t, Thread> threads;
  std::unordered_map<int, std::string> process_names;
  std::unordered_map<int, int> process_ppids;  // schema 3 and later

  const std::string& text(std::int64_t id) const {
    static const std::string kEmpty;
    auto it = texts.find(id);
    return it == texts.end() ? kEmpty : it->second;
  }
  util::Error corrupt(int rc) const { return sqlite_error(db.get(), rc, "reading " + path, path); }
  int version = 0;  // the file's schema
  // A wait from its row, every value clamped (the file may be hostile).
  model::WaitObservation read_wait(const WaitRow& r) const;
  // Reads the text, thread and process tables (inside read_ticks' transaction, so that they match
  // the ticks it reads while a writer adds more).
  util::Result<void> load_names();
};

RecordingReader::RecordingReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RecordingReader::~RecordingReader() = default;
RecordingReader::RecordingReader(RecordingReader&&) noexcept = default;
RecordingReader& RecordingReader::operator=(RecordingReader&&) noexcept = default;

const model::RecordingInfo& RecordingReader::info() const {
  return impl_->info;
}
const RecordingMeta& RecordingReader::meta() const {
  return impl_->meta;
}
std::optional<std::string> RecordingReader::note(const std::string& key) const {
  auto it = impl_->notes.find("note." + key);
  if (it == impl_->notes.end()) return std::nullopt;
  return it->second;
}
util::Result<std::vector<StackSlice>> RecordingReader::stack_slices(StackKind kind,
                                                                    std::int64_t from_ns,
                                                                    std::int64_t to_ns) const {
  return read_stack_slices(impl_->db.get(), impl_->path, kind, from_ns, to_ns);
}
std::optional<std::pair<std::int64_t, std::int64_t>> RecordingReader::time_range() const {
  return impl_->range;
}

namespace {

std::int64_t parse_i64(const std::string& s) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end == s.c_str()) return 0;
  return v;
}

}  // namespace

util::Result<RecordingReader> RecordingReader::open(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return util::errno_error("cannot open " + path, "check the recording's path");
  }
  if (!S_ISREG(st.st_mode)) {
    return util::Error{path + " is not a file", "pass a recording made by chokepoint record",
                       EINVAL};
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  impl->db.reset(raw);
  if (rc != SQLITE_OK) return sqlite_error(raw, rc, "cannot open " + path, path);
  sqlite3_busy_timeout(raw, 2000);  // a writer's checkpoint holds the file for moments
  // A recording is data from elsewhere: no schema-defined functions or views run, and writes
  // that could corrupt it are refused even by mistake.
  sqlite3_db_config(raw, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_db_config(raw, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  sqlite3_db_config(raw, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, nullptr);
  sqlite3_db_config(raw, SQLITE_DBCONFIG_ENABLE_VIEW, 0, nullptr);
  sqlite3_limit(raw, SQLITE_LIMIT_LENGTH, 1 << 24);
  (void)exec(raw, "PRAGMA cell_size_check=ON", path);
  const util::Error not_ours{fmt::format("{} is not a chokepoint recording", path),
                             "pass a file written by chokepoint record or diagnose --record",
                             EINVAL};
  auto pragma = [&](const char* sql) -> util::Result<std::int64_t> {
    auto q = Stmt::prepare(raw, sql);
    if (!q) return not_ours;
    int r = q->step();
    if (r != SQLITE_ROW) return impl->corrupt(r);
    return q->i64(0);
  };
  auto app_id = pragma("PRAGMA application_id");
  if (!app_id) return app_id.error();
  if (*app_id != kApplicationId) return not_ours;
  auto version = pragma("PRAGMA user_version");
  if (!version) return version.error();
  if (*version > kSchemaVersion) {
    return util::Error{
        fmt::format("{} has recording schema {}; this chokepoint reads up to schema {}", path,
                    *version, kSchemaVersion),
        "replay it with the newer chokepoint that recorded it", EINVAL};
  }
  if (*version < 1) return not_ours;

  auto meta = Stmt::prepare(raw, "SELECT key, value FROM meta");
  if (!meta) return not_ours;
  std::map<std::string, std::string> m;
  while ((rc = meta->step()) == SQLITE_ROW) m[meta->text(0)] = meta->text(1);
  if (rc != SQLITE_DONE) return impl->corrupt(rc);
  impl->meta.schema_version = static_cast<int>(*version);
  impl->version = static_cast<int>(*version);
  impl->meta.chokepoint_version = m["chokepoint_version"];
  impl->meta.kernel = m["kernel"];
  impl->meta.machine = m["machine"];
  impl->meta.cpus = static_cast<int>(std::clamp<std::int64_t>(parse_i64(m["cpus"]), 0, 1 << 20));
  impl->meta.created_unix_ns = parse_i64(m["created_unix_ns"]);
  impl->meta.created_monotonic_ns = parse_i64(m["created_monotonic_ns"]);
  impl->info.target.kind = m["target_kind"];
  impl->info.target.spec = m["target_spec"];
  impl->info.interval_ns = std::max<std::int64_t>(0, parse_i64(m["interval_ns"]));
  for (const auto& [k, v] : m) {
    if (k.rfind("note.", 0) == 0) impl->notes[k] = v;
  }

  for (const char* sql : {"SELECT id, value FROM text LIMIT 0",
                          "SELECT id, pid, tid, start_time_ticks, comm, process_name FROM thread "
                          "LIMIT 0",
                          "SELECT pid, name FROM process LIMIT 0"}) {
    if (!Stmt::prepare(raw, sql)) return not_ours;
  }
  auto range = Stmt::prepare(raw, "SELECT min(at_ns), max(at_ns) FROM tick");
  if (!range) return not_ours;
  rc = range->step();
  if (rc != SQLITE_ROW) return impl->corrupt(rc);
  if (!range->is_null(0)) impl->range = std::make_pair(range->i64(0), range->i64(1));
  // Every table the reader needs must be there, with its columns: checked by preparing now.
  constexpr const char* kThreadBase =
      "SELECT tick, thread, run_ns, run_delay_ns, utime_ns, stime_ns, majflt, blkio_ns, state, "
      "site, syscall_nr, a0, a1, a2, a3, a4, a5, fd_role, fd_detail, net_wait, futex_caller "
      "FROM thread_base LIMIT 0";
  for (const char* sql :
       {kThreadBase,
        *version == 1 ? "SELECT prev_poll_ago_ns, has_stat FROM thread_sample LIMIT 0"
                      : "SELECT tick, threads, run_ns, run_delay_ns, data FROM thread_pack LIMIT 0",
        "SELECT tick, thread, last_poll_ns FROM thread_end LIMIT 0",
        "SELECT tick, pid FROM pid_seen LIMIT 0",
        "SELECT fd_soft_limit FROM process_sample LIMIT 0",
        "SELECT rwnd_limited_us FROM socket_sample LIMIT 0",
        "SELECT sample FROM system_sample LIMIT 0", "SELECT sample FROM collector_sample LIMIT 0",
        "SELECT flags FROM tick LIMIT 0"}) {
    if (!Stmt::prepare(raw, sql)) return not_ours;
  }
  return RecordingReader(std::move(impl));
}

namespace {

// The WAIT columns from column c on (NULL reads as 0: no text).
WaitRow wait_columns(const Stmt& st, int c) {
  WaitRow r;
  r.state = st.i64(c);
  r.site = st.i64(c + 1);
  r.syscall_nr = st.i64(c + 2);
  for (int i = 0; i < 6; ++i) r.args[static_cast<std::size_t>(i)] = st.u64(c + 3 + i);
  r.fd_role = st.i64(c + 9);
  r.fd_detail = st.i64(c + 10);
  r.net_wait = st.i64(c + 11);
  r.futex_caller = st.i64(c + 12);
  return r;
}

}  // namespace

model::WaitObservation RecordingReader::Impl::read_wait(const WaitRow& r) const {
  model::WaitObservation w;
  w.state = r.state >= 32 && r.state < 127 ? static_cast<char>(r.state) : '?';
  w.where = r.site >= 0 && r.site <= static_cast<std::int64_t>(model::SyscallWhere::kInSyscall)
                ? static_cast<model::SyscallWhere>(r.site)
                : model::SyscallWhere::kUnknown;
  if (w.where == model::SyscallWhere::kInSyscall) {
    w.syscall_nr = static_cast<long>(std::clamp<std::int64_t>(r.syscall_nr, -1, 1 << 16));
    w.args = r.args;
  }
  w.fd_role = r.fd_role >= 0 && r.fd_role <= static_cast<std::int64_t>(model::FdRole::kOther)
                  ? static_cast<model::FdRole>(r.fd_role)
                  : model::FdRole::kUnknown;
  // Text ids start at 1: 0 (a NULL column) and unknown ids read as no text.
  w.fd_detail = text(r.fd_detail);
  w.process_waits_on_network = (r.net_wait & 1) != 0;
  w.frozen = (r.net_wait & 2) != 0;
  w.futex_caller = text(r.futex_caller);
  return w;
}

util::Result<void> RecordingReader::Impl::load_names() {
  sqlite3* raw = db.get();
  const util::Error not_ours{fmt::format("{} is not a chokepoint recording", path),
                             "pass a file written by chokepoint record or diagnose --record",
                             EINVAL};
  int rc = SQLITE_OK;
  texts.clear();
  threads.clear();
  process_names.clear();
  process_ppids.clear();
  auto text_rows = Stmt::prepare(raw, "SELECT id, value FROM text");
  if (!text_rows) return not_ours;
  while ((rc = text_rows->step()) == SQLITE_ROW) texts[text_rows->i64(0)] = text_rows->text(1);
  if (rc != SQLITE_DONE) return corrupt(rc);
  auto thread_rows =
      Stmt::prepare(raw, "SELECT id, pid, tid, start_time_ticks, comm, process_name FROM thread");
  if (!thread_rows) return not_ours;
  while ((rc = thread_rows->step()) == SQLITE_ROW) {
    Impl::Thread t;
    t.key = {static_cast<int>(thread_rows->i64(1)), static_cast<int>(thread_rows->i64(2)),
             thread_rows->u64(3)};
    t.comm = text(thread_rows->i64(4));
    t.process_name = text(thread_rows->i64(5));
    threads[thread_rows->i64(0)] = std::move(t);
  }
  if (rc != SQLITE_DONE) return corrupt(rc);
  auto procs = Stmt::prepare(
      raw, version >= 3 ? "SELECT pid, name, ppid FROM process" : "SELECT pid, name FROM process");
  if (!procs) return not_ours;
  while ((rc = procs->step()) == SQLITE_ROW) {
    const int pid = static_cast<int>(procs->i64(0));
    process_names[pid] = text(procs->i64(1));
    if (version >= 3 && !procs->is_null(2)) process_ppids[pid] = static_cast<int>(procs->i64(2));
  }
  if (rc != SQLITE_DONE) return corrupt(rc);
  return {};
}

util::Result<void> RecordingReader::read_ticks(std::int64_t to_ns,
                                               const std::function<bool(model::Tick&&)>& each) {
  Impl& r = *impl_;
  sqlite3* db = r.db.get();
  // One read transaction: every table as of one moment, while a writer may be adding ticks.
  if (auto b = exec(db, "BEGIN", r.path); !b) return r.corrupt(sqlite3_errcode(db));
  struct EndRead {
    sqlite3* db;
    ~EndRead() { sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr); }
  } end_read{db};
  if (auto names = r.load_names(); !names) return names.error();
  // One cursor per table, each in tick order; they advance together, tick by tick.
  struct Cursor {
    Stmt st;
    int rc = SQLITE_ROW;
    bool row() const { return rc == SQLITE_ROW; }
    void next() { rc = st.step(); }
    std::int64_t tick() const { return st.i64(0); }
  };
  const char* sqls[] = {
      "SELECT tick, thread, run_ns, run_delay_ns, utime_ns, stime_ns, majflt, blkio_ns, state, "
      "site, syscall_nr, a0, a1, a2, a3, a4, a5, fd_role, fd_detail, net_wait, futex_caller "
      "FROM thread_base ORDER BY tick, rowid",
      // Schema 1: a row per thread; schema 2: a packed blob per tick.
      r.version == 1
          ? "SELECT tick, thread, prev_poll_ago_ns, has_stat, run_ns, run_delay_ns, utime_ns, "
            "stime_ns, majflt, blkio_ns, state, site, syscall_nr, a0, a1, a2, a3, a4, a5, "
            "fd_role, fd_detail, net_wait, futex_caller FROM thread_sample ORDER BY rowid"
          : "SELECT tick, data FROM thread_pack ORDER BY tick",
      "SELECT tick, thread, last_poll_ns FROM thread_end ORDER BY rowid",
      "SELECT tick, pid FROM pid_seen ORDER BY rowid",
      "SELECT tick, pid, read_bytes, write_bytes, syscw, rss_bytes, anon_bytes, delay_cpu_ns, "
      "delay_blkio_ns, delay_swapin_ns, delay_reclaim_ns, delay_thrashing_ns, delay_compact_ns, "
      "open_fds, fd_soft_limit FROM process_sample ORDER BY rowid",
      "SELECT tick, pid, inode, state, server_side, local_addr, local_port, remote_addr, "
      "remote_port, recv_queue_bytes, send_queue_bytes, notsent_bytes, rtt_us, bytes_acked, "
      "sndbuf_limited_us, rwnd_limited_us FROM socket_sample ORDER BY rowid",
      "SELECT tick, sample FROM system_sample ORDER BY rowid",
      "SELECT tick, sample FROM collector_sample ORDER BY rowid",
  };
  constexpr std::size_t kCursors = std::size(sqls);
  std::array<Cursor, kCursors> cur;
  for (std::size_t i = 0; i < kCursors; ++i) {
    auto st = Stmt::prepare(db, sqls[i]);
    if (!st) return st.error();
    cur[i].st = std::move(*st);
    cur[i].next();
  }
  auto ticks = Stmt::prepare(db,
                             "SELECT id, at_ns, lock_credit_ns, runnable, flags FROM tick "
                             "ORDER BY id");
  if (!ticks) return ticks.error();
  Cursor& base = cur[0];
  Cursor& sample = cur[1];
  Cursor& end = cur[2];
  Cursor& pid = cur[3];
  Cursor& proc = cur[4];
  Cursor& sock = cur[5];
  Cursor& sys = cur[6];
  Cursor& coll = cur[7];
  // Recordings made before the exact mode have no exact_sample table.
  Cursor exact;
  exact.rc = SQLITE_DONE;
  if (auto st = Stmt::prepare(
          db, r.version >= 3 ? "SELECT tick, sample, waits, edges FROM exact_sample ORDER BY rowid"
              : r.version == 2 ? "SELECT tick, sample, waits FROM exact_sample ORDER BY rowid"
                               : "SELECT tick, sample FROM exact_sample ORDER BY rowid")) {
    exact.st = std::move(*st);
    exact.next();
  }
  // Schema 3's exact sums and edges refer to those of the ticks before.
  DeltaUnpacker<model::ExactWait> waits_unpacker;
  DeltaUnpacker<model::WakeEdge> edges_unpacker;
  // A packed blob (schema 2) that does not decode.
  const auto damaged = [&r](const char* what, std::int64_t tick) {
    return util::Error{
        fmt::format("reading {}: the {} of tick {} are damaged", r.path, what, tick),
        "the file was changed or damaged after it was written; replay a window before it (--to)",
        EINVAL};
  };
  std::unordered_map<std::int64_t, Counters> counters;  // by thread id
  std::set<int> named;                                  // processes whose name was given
  int rc = SQLITE_ROW;
  while ((rc = ticks->step()) == SQLITE_ROW) {
    model::Tick t;
    const std::int64_t id = ticks->i64(0);
    t.at_ns = ticks->i64(1);
    if (t.at_ns > to_ns) return {};
    t.lock_credit_ns = std::max<std::int64_t>(0, ticks->i64(2));
    if (!ticks->is_null(3)) {
      t.runnable = static_cast<std::uint32_t>(std::clamp<std::int64_t>(ticks->i64(3), 0, 1 << 30));
    }
    const std::int64_t flags = ticks->i64(4);
    t.closing = (flags & kFlagClosing) != 0;
    t.target_exited = (flags & kFlagExited) != 0;
    // Rows of ticks that no longer exist (or out of order, in a damaged file) are skipped.
    for (auto& c : cur) {
      while (c.row() && c.tick() < id) c.next();
    }
    while (exact.row() && exact.tick() < id) exact.next();
    for (; base.row() && base.tick() == id; base.next()) {
      auto th = r.threads.find(base.st.i64(1));
      if (th == r.threads.end()) continue;
      model::ThreadSample s;
      s.key = th->second.key;
      s.at_ns = t.at_ns;
      s.prev_poll_ns = t.at_ns;
      s.first = true;
      s.comm = th->second.comm;
      s.process_name = th->second.process_name;
      s.has_stat = true;
      Counters& c = counters[th->first];
      c = {base.st.u64(2),
           base.st.u64(3),
           base.st.u64(4),
           base.st.u64(5),
           base.st.u64(6),
           base.st.u64(7),
           r.read_wait(wait_columns(base.st, 8)),
           t.at_ns};
      s.run_ns = c.run_ns;
      s.run_delay_ns = c.run_delay_ns;
      s.utime_ns = c.utime_ns;
      s.stime_ns = c.stime_ns;
      s.majflt = c.majflt;
      s.blkio_delay_ns = c.blkio_ns;
      s.wait = c.wait;
      t.threads.push_back(std::move(s));
    }
    for (; end.row() && end.tick() == id; end.next()) {
      auto th = r.threads.find(end.st.i64(1));
      if (th == r.threads.end()) continue;
      t.ended.push_back(
          {th->second.key.pid, th->second.key.tid, end.st.i64(2), th->second.key.start_time_ticks});
    }
    // A thread that ran: its row's deltas added to its counters.
    const auto add_row = [&](const PackedThread& row) {
      auto th = r.threads.find(row.thread);
      if (th == r.threads.end()) return;
      auto c = counters.find(th->first);
      if (c == counters.end()) return;  // no base: rotated away, or a damaged file
      model::ThreadSample s;
      s.key = th->second.key;
      s.at_ns = t.at_ns;
      Counters& k = c->second;
      s.prev_poll_ns = row.prev_poll_ago_ns ? t.at_ns - *row.prev_poll_ago_ns : k.row_ns;
      k.row_ns = t.at_ns;
      s.has_stat = row.has_stat;
      k.run_ns += row.run_ns;
      k.run_delay_ns += row.run_delay_ns;
      s.run_ns = k.run_ns;
      s.run_delay_ns = k.run_delay_ns;
      if (s.has_stat) {
        k.utime_ns += row.utime_ns;
        k.stime_ns += row.stime_ns;
        k.majflt += row.majflt;
        k.blkio_ns += row.blkio_ns;
        if (row.wait) k.wait = r.read_wait(*row.wait);
        s.wait = k.wait;
      }
      s.utime_ns = k.utime_ns;
      s.stime_ns = k.stime_ns;
      s.majflt = k.majflt;
      s.blkio_delay_ns = k.blkio_ns;
      t.threads.push_back(std::move(s));
    };
    for (; sample.row() && sample.tick() == id; sample.next()) {
      const Stmt& q = sample.st;
      if (r.version >= 2) {
        auto rows = unpack_threads(q.blob(1));
        if (!rows) return damaged("thread rows", id);
        for (const auto& row : *rows) add_row(row);
        continue;
      }
      PackedThread row;
      row.thread = q.i64(1);
      if (!q.is_null(2)) row.prev_poll_ago_ns = q.i64(2);
      row.has_stat = q.i64(3) != 0;
      row.run_ns = q.u64(4);
      row.run_delay_ns = q.u64(5);
      if (row.has_stat) {
        row.utime_ns = q.u64(6);
        row.stime_ns = q.u64(7);
        row.majflt = q.u64(8);
        row.blkio_ns = q.u64(9);
        if (!q.is_null(10)) row.wait = wait_columns(q, 10);
      }
      add_row(row);
    }
    for (; pid.row() && pid.tick() == id; pid.next()) {
      t.new_pids.push_back(static_cast<int>(pid.st.i64(1)));
    }
    for (; proc.row() && proc.tick() == id; proc.next()) {
      const Stmt& q = proc.st;
      model::ProcessSample p;
      p.pid = static_cast<int>(q.i64(1));
      p.at_ns = t.at_ns;
      if (named.insert(p.pid).second) {
        auto n = r.process_names.find(p.pid);
        if (n != r.process_names.end()) p.name = n->second;
        auto pp = r.process_ppids.find(p.pid);
        if (pp != r.process_ppids.end()) p.ppid = pp->second;
      }
      if (!q.is_null(2)) p.io = model::ProcessIo{q.u64(2), q.u64(3), q.u64(4)};
      if (!q.is_null(5)) {
        p.has_status = true;
        p.rss_bytes = q.u64(5);
        p.anon_bytes = q.u64(6);
      }
      if (!q.is_null(7)) {
        p.delays =
            model::GroupDelays{q.u64(7), q.u64(8), q.u64(9), q.u64(10), q.u64(11), q.u64(12)};
      }
      p.open_fds = q.opt_u64(13);
      p.fd_soft_limit = q.opt_u64(14);
      t.processes.push_back(std::move(p));
    }
    for (; sock.row() && sock.tick() == id; sock.next()) {
      const Stmt& q = sock.st;
      model::SocketSample s;
      s.pid = static_cast<int>(q.i64(1));
      s.at_ns = t.at_ns;
      s.inode = q.u64(2);
      const std::int64_t state = q.i64(3);
      s.state = state >= 0 && state <= static_cast<std::int64_t>(model::SocketState::kListen)
                    ? static_cast<model::SocketState>(state)
                    : model::SocketState::kOther;
      s.server_side = q.i64(4) != 0;
      s.local_addr = r.text(q.i64(5));
      s.local_port = static_cast<std::uint16_t>(q.i64(6));
      s.remote_addr = r.text(q.i64(7));
      s.remote_port = static_cast<std::uint16_t>(q.i64(8));
      s.recv_queue_bytes = static_cast<std::uint32_t>(q.i64(9));
      s.send_queue_bytes = static_cast<std::uint32_t>(q.i64(10));
      s.notsent_bytes = static_cast<std::uint32_t>(q.i64(11));
      s.rtt_us = static_cast<std::uint32_t>(q.i64(12));
      s.bytes_acked = q.u64(13);
      s.sndbuf_limited_us = q.u64(14);
      s.rwnd_limited_us = q.u64(15);
      t.sockets.push_back(std::move(s));
    }
    for (; sys.row() && sys.tick() == id; sys.next()) {
      if (auto s = system_from(sys.st.text(1))) {
        s->at_ns = t.at_ns;
        t.system = std::move(s);
      }
    }
    for (; coll.row() && coll.tick() == id; coll.next()) {
      if (auto c = collector_from(coll.st.text(1))) t.collector = std::move(c);
    }
    for (; exact.row() && exact.tick() == id; exact.next()) {
      auto x = exact_from(exact.st.text(1));
      if (x && r.version >= 3) {
        auto waits = waits_unpacker.unpack(exact.st.blob(2));
        if (!waits) return damaged("exact sums", id);
        x->waits = std::move(*waits);
        auto edges = edges_unpacker.unpack(exact.st.blob(3));
        if (!edges) return damaged("wait-for edges", id);
        x->edges = std::move(*edges);
      } else if (x && r.version == 2) {
        auto waits = unpack_exact_waits(exact.st.blob(2));
        if (!waits) return damaged("exact sums", id);
        x->waits = std::move(*waits);
      }
      if (x) t.exact = std::move(x);
    }
    for (const auto& c : cur) {
      if (!c.row() && c.rc != SQLITE_DONE) return r.corrupt(c.rc);
    }
    if (!exact.row() && exact.rc != SQLITE_DONE) return r.corrupt(exact.rc);
    if (!each(std::move(t))) return {};
  }
  if (rc != SQLITE_DONE) return r.corrupt(rc);
  return {};
}

util::Result<model::Samples> read_all(const std::string& path) {
  auto reader = RecordingReader::open(path);
  if (!reader) return reader.error();
  model::Samples samples;
  samples.info = reader->info();
  auto ok = reader->read_ticks(std::numeric_limits<std::int64_t>::max(), [&](model::Tick&& t) {
    samples.ticks.push_back(std::move(t));
    return true;
  });
  if (!ok) return ok.error();
  return samples;
}

}  // namespace chokepoint::store
