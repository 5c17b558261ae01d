#include "collect/procfs/system.h"

#include <algorithm>
#include <limits>

namespace chokepoint::collect::procfs {

namespace {

constexpr std::uint64_t kSectorBytes = 512;  // diskstats counts 512-byte sectors, always
constexpr std::uint64_t kNsPerMs = 1'000'000;
constexpr std::uint64_t kNsPerUs = 1'000;

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
  return a > std::numeric_limits<std::uint64_t>::max() - b
             ? std::numeric_limits<std::uint64_t>::max()
             : a + b;
}

// "cpu  1 2 3 ..." or "cpu7 1 2 3 ...". cpu_field is the first token.
std::optional<CpuTimes> parse_cpu_line(std::string_view cpu_field,
                                       const std::vector<std::string_view>& values,
                                       const Units& units) {
  CpuTimes t;
  if (cpu_field.size() > 3) {
    auto n = parse_u64(cpu_field.substr(3));
    if (!n || *n > static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max())) {
      return std::nullopt;
    }
    t.cpu = static_cast<std::int32_t>(*n);
  }
  // user nice system idle are there on every kernel; the rest arrived over 2.5-2.6.33.
  if (values.size() < 4) return std::nullopt;
  std::uint64_t* slots[] = {&t.user_ns, &t.nice_ns,    &t.system_ns, &t.idle_ns,  &t.iowait_ns,
                            &t.irq_ns,  &t.softirq_ns, &t.steal_ns,  &t.guest_ns, &t.guest_nice_ns};
  for (std::size_t i = 0; i < values.size() && i < std::size(slots); ++i) {
    auto ticks = parse_u64(values[i]);
    if (!ticks) return std::nullopt;
    *slots[i] = ticks_to_ns(*ticks, units.ticks_per_sec);
  }
  return t;
}

template <typename Map>
std::optional<std::uint64_t> map_get(const Map& map, std::string_view name) {
  auto it = map.find(name);
  if (it == map.end()) return std::nullopt;
  return it->second;
}

}  // namespace

std::uint64_t CpuTimes::busy_ns() const {
  std::uint64_t sum = 0;
  for (auto v : {user_ns, nice_ns, system_ns, irq_ns, softirq_ns, steal_ns}) {
    sum = saturating_add(sum, v);
  }
  return sum;
}

std::uint64_t CpuTimes::total_ns() const {
  return saturating_add(saturating_add(busy_ns(), idle_ns), iowait_ns);
}

std::optional<SystemStat> parse_system_stat(std::string_view text, const Units& units) {
  SystemStat s;
  bool have_total = false;
  for (auto line : split_lines(text)) {
    // "intr" and "softirq" lines are long and unused: skip them before tokenizing.
    if (starts_with(line, "intr ") || starts_with(line, "softirq ")) continue;
    auto tokens = split_ws(line);
    if (tokens.empty()) continue;
    const auto key = tokens[0];
    if (starts_with(key, "cpu")) {
      std::vector<std::string_view> values(tokens.begin() + 1, tokens.end());
      auto cpu = parse_cpu_line(key, values, units);
      if (!cpu) return std::nullopt;
      if (cpu->cpu < 0) {
        s.total = *cpu;
        have_total = true;
      } else {
        s.cpus.push_back(*cpu);
      }
      continue;
    }
    std::uint64_t* slot = nullptr;
    if (key == "ctxt") slot = &s.ctxt;
    if (key == "processes") slot = &s.processes;
    if (key == "procs_running") slot = &s.procs_running;
    if (key == "procs_blocked") slot = &s.procs_blocked;
    if (key == "btime") slot = &s.btime_sec;
    if (slot == nullptr) continue;  // "page", "swap" (2.4), future lines
    if (tokens.size() != 2) return std::nullopt;
    auto v = parse_u64(tokens[1]);
    if (!v) return std::nullopt;
    *slot = *v;
  }
  if (!have_total) return std::nullopt;
  return s;
}

std::optional<std::uint64_t> Meminfo::get(std::string_view name) const {
  return map_get(values, name);
}

std::optional<Meminfo> parse_meminfo(std::string_view text) {
  // "MemTotal:       16384256 kB" (fs/proc/meminfo.c); HugePages_Total etc. have no unit.
  Meminfo m;
  for (auto line : split_lines(text)) {
    if (trim(line).empty()) continue;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    const auto tokens = split_ws(line.substr(colon + 1));
    if (tokens.empty() || tokens.size() > 2) return std::nullopt;
    auto v = parse_u64(tokens[0]);
    if (!v) return std::nullopt;
    if (tokens.size() == 2) {
      if (tokens[1] != "kB") return std::nullopt;
      *v = kib_to_bytes(*v);
    }
    m.values.insert_or_assign(std::string(line.substr(0, colon)), *v);
  }
  if (m.values.empty()) return std::nullopt;
  return m;
}

std::optional<std::uint64_t> Vmstat::get(std::string_view name) const {
  return map_get(values, name);
}

std::optional<std::uint64_t> Vmstat::workingset_refault_file() const {
  if (auto v = get("workingset_refault_file")) return v;
  return get("workingset_refault");  // before 5.9 (commit 170b04b7ae49) one counter, file only
}

std::optional<std::uint64_t> Vmstat::workingset_refault_anon() const {
  return get("workingset_refault_anon");
}

namespace {
// Sums reclaim counters named <prefix>_*: on 5.8+ the per-LRU pair <prefix>_anon + <prefix>_file
// covers every reclaimer; before, sum the per-reclaimer (and pre-4.8 per-zone) counters.
std::optional<std::uint64_t> reclaim_total(const Vmstat& vm, const std::string& prefix) {
  auto anon = vm.get(prefix + "_anon");
  auto file = vm.get(prefix + "_file");
  if (anon && file) return saturating_add(*anon, *file);
  std::optional<std::uint64_t> sum;
  for (const auto& [name, value] : vm.values) {
    if (!starts_with(name, prefix + "_")) continue;
    const std::string_view rest = std::string_view(name).substr(prefix.size() + 1);
    const bool counts_pages = (starts_with(rest, "kswapd") || starts_with(rest, "direct") ||
                               starts_with(rest, "khugepaged")) &&
                              rest != "direct_throttle";
    if (counts_pages) sum = saturating_add(sum.value_or(0), value);
  }
  return sum;
}
}  // namespace

std::optional<std::uint64_t> Vmstat::pgscan_total() const {
  return reclaim_total(*this, "pgscan");
}

std::optional<std::uint64_t> Vmstat::pgsteal_total() const {
  return reclaim_total(*this, "pgsteal");
}

std::optional<Vmstat> parse_vmstat(std::string_view text) {
  // mm/vmstat.c vmstat_show: "%s %lu\n".
  Vmstat vm;
  for (auto line : split_lines(text)) {
    const auto tokens = split_ws(line);
    if (tokens.empty()) continue;
    if (tokens.size() != 2) return std::nullopt;
    // A few node counters are signed in the kernel but printed "%lu": a transiently negative one
    // would print as a huge number, which parse_u64 accepts as-is.
    auto v = parse_u64(tokens[1]);
    if (!v) return std::nullopt;
    vm.values.insert_or_assign(std::string(tokens[0]), *v);
  }
  if (vm.values.empty()) return std::nullopt;
  return vm;
}

std::optional<std::vector<DiskStats>> parse_diskstats(std::string_view text) {
  std::vector<DiskStats> out;
  for (auto line : split_lines(text)) {
    const auto tokens = split_ws(line);
    if (tokens.empty()) continue;
    if (tokens.size() < 14) return std::nullopt;
    DiskStats d;
    auto major = parse_u64(tokens[0]);
    auto minor = parse_u64(tokens[1]);
    if (!major || !minor || *major > UINT32_MAX || *minor > UINT32_MAX) return std::nullopt;
    d.major = static_cast<std::uint32_t>(*major);
    d.minor = static_cast<std::uint32_t>(*minor);
    d.name = std::string(tokens[2]);
    std::uint64_t v[17] = {};  // fields (4)..(20)
    const std::size_t n = std::min<std::size_t>(tokens.size(), 20) - 3;
    for (std::size_t i = 0; i < n; ++i) {
      auto parsed = parse_u64(tokens[3 + i]);
      if (!parsed) return std::nullopt;
      v[i] = *parsed;
    }
    d.reads = v[0];                                           // (4)
    d.reads_merged = v[1];                                    // (5)
    d.read_bytes = saturating_mul(v[2], kSectorBytes);        // (6)
    d.read_time_ns = saturating_mul(v[3], kNsPerMs);          // (7)
    d.writes = v[4];                                          // (8)
    d.writes_merged = v[5];                                   // (9)
    d.write_bytes = saturating_mul(v[6], kSectorBytes);       // (10)
    d.write_time_ns = saturating_mul(v[7], kNsPerMs);         // (11)
    d.in_flight = v[8];                                       // (12)
    d.io_time_ns = saturating_mul(v[9], kNsPerMs);            // (13)
    d.weighted_io_time_ns = saturating_mul(v[10], kNsPerMs);  // (14)
    if (n >= 15) {
      d.discards = v[11];                                     // (15)
      d.discards_merged = v[12];                              // (16)
      d.discard_bytes = saturating_mul(v[13], kSectorBytes);  // (17)
      d.discard_time_ns = saturating_mul(v[14], kNsPerMs);    // (18)
    }
    if (n >= 17) {
      d.flushes = v[15];                                  // (19)
      d.flush_time_ns = saturating_mul(v[16], kNsPerMs);  // (20)
    }
    out.push_back(std::move(d));
  }
  return out;
}

std::optional<Pressure> parse_pressure(std::string_view text) {
  // kernel/sched/psi.c: "some avg10=%lu.%02lu avg60=... avg300=... total=%llu" then "full ...".
  Pressure p;
  for (auto line : split_lines(text)) {
    const auto tokens = split_ws(line);
    if (tokens.empty()) continue;
    if (tokens.size() != 5 || (tokens[0] != "some" && tokens[0] != "full")) return std::nullopt;
    PressureLine pl;
    bool seen[4] = {};
    for (std::size_t i = 1; i < tokens.size(); ++i) {
      const auto eq = tokens[i].find('=');
      if (eq == std::string_view::npos) return std::nullopt;
      const auto key = tokens[i].substr(0, eq);
      const auto value = tokens[i].substr(eq + 1);
      if (key == "total") {
        auto us = parse_u64(value);
        if (!us) return std::nullopt;
        pl.total_ns = saturating_mul(*us, kNsPerUs);
        seen[3] = true;
        continue;
      }
      auto avg = parse_decimal(value);
      if (!avg) return std::nullopt;
      if (key == "avg10")
        pl.avg10 = *avg, seen[0] = true;
      else if (key == "avg60")
        pl.avg60 = *avg, seen[1] = true;
      else if (key == "avg300")
        pl.avg300 = *avg, seen[2] = true;
      else
        return std::nullopt;
    }
    if (!(seen[0] && seen[1] && seen[2] && seen[3])) return std::nullopt;
    (tokens[0] == "some" ? p.some : p.full) = pl;
  }
  if (!p.some) return std::nullopt;
  return p;
}

std::optional<LoadAvg> parse_loadavg(std::string_view text) {
  // proc(5) /proc/loadavg: three averages, "runnable/total", the last pid allocated.
  const auto tokens = split_ws(text);
  if (tokens.size() != 5) return std::nullopt;
  LoadAvg l;
  auto l1 = parse_decimal(tokens[0]);
  auto l5 = parse_decimal(tokens[1]);
  auto l15 = parse_decimal(tokens[2]);
  const auto slash = tokens[3].find('/');
  if (!l1 || !l5 || !l15 || slash == std::string_view::npos) return std::nullopt;
  auto runnable = parse_u64(tokens[3].substr(0, slash));
  auto total = parse_u64(tokens[3].substr(slash + 1));
  auto last = parse_i64(tokens[4]);
  if (!runnable || !total || !last) return std::nullopt;
  l.load1 = *l1;
  l.load5 = *l5;
  l.load15 = *l15;
  l.runnable = *runnable;
  l.total_tasks = *total;
  l.last_pid = *last;
  return l;
}

std::optional<FileNr> parse_file_nr(std::string_view text) {
  auto f = parse_u64_fields<3>(text);
  if (!f) return std::nullopt;
  return FileNr{(*f)[0], (*f)[1], (*f)[2]};
}

std::optional<std::uint64_t> parse_file_max(std::string_view text) {
  return parse_u64(trim(text));
}

}  // namespace chokepoint::collect::procfs
