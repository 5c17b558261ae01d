#include "collect/procfs/task.h"

#include <algorithm>
#include <limits>

namespace chokepoint::collect::procfs {

namespace {

std::optional<std::int32_t> parse_i32(std::string_view text) {
  auto v = parse_i64(text);
  if (!v || *v < std::numeric_limits<std::int32_t>::min() ||
      *v > std::numeric_limits<std::int32_t>::max()) {
    return std::nullopt;
  }
  return static_cast<std::int32_t>(*v);
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// "Key:\tvalue" -> {key, value}; nullopt when there is no ':'.
struct KeyValue {
  std::string_view key;
  std::string_view value;
};
std::optional<KeyValue> split_key_value(std::string_view line) {
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  return KeyValue{line.substr(0, colon), line.substr(colon + 1)};
}

// "1234 kB" -> bytes. status always prints kB for Vm* lines.
std::optional<std::uint64_t> parse_kb_value(std::string_view value) {
  auto tokens = split_ws(value);
  if (tokens.size() != 2 || tokens[1] != "kB") return std::nullopt;
  auto kib = parse_u64(tokens[0]);
  if (!kib) return std::nullopt;
  return kib_to_bytes(*kib);
}

// "type:[123]" -> 123.
std::optional<std::uint64_t> bracket_inode(std::string_view text, std::string_view prefix) {
  if (!starts_with(text, prefix) || text.size() < prefix.size() + 1 || text.back() != ']') {
    return std::nullopt;
  }
  return parse_u64(text.substr(prefix.size(), text.size() - prefix.size() - 1));
}

}  // namespace

std::optional<TaskStat> parse_task_stat(std::string_view text, const Units& units) {
  // "pid (comm) state ppid ...": comm is at most 16 bytes but may itself hold ") " and newlines,
  // so it runs from the first '(' to the LAST ')' in the line.
  const auto open = text.find('(');
  const auto close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open ||
      open < 2 || text[open - 1] != ' ') {
    return std::nullopt;
  }
  TaskStat s;
  auto pid = parse_i32(text.substr(0, open - 1));  // (1) pid
  if (!pid) return std::nullopt;
  s.pid = *pid;
  s.comm = std::string(text.substr(open + 1, close - open - 1));  // (2) comm

  // rest[0] is field (3); field (N) is rest[N - 3].
  const auto rest = split_ws(text.substr(close + 1));
  auto field = [&rest](int n) { return rest[static_cast<std::size_t>(n - 3)]; };
  // Every kernel since 2.6 prints at least up to (24) rss; older lines stop after (41) or so.
  if (rest.size() < 22) return std::nullopt;
  if (field(3).size() != 1) return std::nullopt;
  s.state = field(3)[0];  // (3) state

  auto ppid = parse_i32(field(4));          // (4) ppid
  auto minflt = parse_u64(field(10));       // (10) minflt
  auto majflt = parse_u64(field(12));       // (12) majflt
  auto utime = parse_u64(field(14));        // (14) utime, clock ticks
  auto stime = parse_u64(field(15));        // (15) stime, clock ticks
  auto priority = parse_i64(field(18));     // (18) priority
  auto nice = parse_i64(field(19));         // (19) nice
  auto num_threads = parse_i64(field(20));  // (20) num_threads
  auto start = parse_u64(field(22));        // (22) starttime, clock ticks since boot
  auto vsize = parse_u64(field(23));        // (23) vsize, bytes
  auto rss = parse_i64(field(24));          // (24) rss, pages (printed signed)
  if (!ppid || !minflt || !majflt || !utime || !stime || !priority || !nice || !num_threads ||
      !start || !vsize || !rss) {
    return std::nullopt;
  }
  s.ppid = *ppid;
  s.minflt = *minflt;
  s.majflt = *majflt;
  s.utime_ns = ticks_to_ns(*utime, units.ticks_per_sec);
  s.stime_ns = ticks_to_ns(*stime, units.ticks_per_sec);
  s.priority = *priority;
  s.nice = *nice;
  s.num_threads = *num_threads;
  s.start_time_ticks = *start;
  s.start_time_ns = ticks_to_ns(*start, units.ticks_per_sec);
  s.vsize_bytes = *vsize;
  s.rss_bytes =
      *rss > 0 ? pages_to_bytes(static_cast<std::uint64_t>(*rss), units.page_size_bytes) : 0;
  if (rest.size() >= 39 - 2) {  // (39) processor, since Linux 2.2.8
    auto cpu = parse_i32(field(39));
    if (!cpu) return std::nullopt;
    s.processor = *cpu;
  }
  if (rest.size() >= 42 - 2) {  // (42) delayacct_blkio_ticks, since Linux 2.6.18
    auto blkio = parse_u64(field(42));
    if (!blkio) return std::nullopt;
    s.delayacct_blkio_ns = ticks_to_ns(*blkio, units.ticks_per_sec);
  }
  return s;
}

std::optional<Schedstat> parse_schedstat(std::string_view text) {
  // "run_ns run_delay_ns timeslices\n" (Documentation/scheduler/sched-stats.rst).
  auto f = parse_u64_fields<3>(text);
  if (!f) return std::nullopt;
  return Schedstat{(*f)[0], (*f)[1], (*f)[2]};
}

std::optional<TaskStatus> parse_task_status(std::string_view text) {
  TaskStatus s;
  bool have_name = false, have_state = false, have_tgid = false, have_pid = false,
       have_ppid = false, have_uid = false;
  for (auto line : split_lines(text)) {
    auto kv = split_key_value(line);
    if (!kv) continue;
    const auto key = kv->key;
    if (key == "Name") {
      // "Name:\t<comm>": strip only the tab, since a comm can end in a space.
      auto value = kv->value;
      if (!value.empty() && value.front() == '\t') value.remove_prefix(1);
      // The kernel escapes '\n' as "\n" and '\' as "\\" here (proc_task_name: seq_escape_str
      // with only "\n\\"); undone so the name holds the comm's raw bytes, as stat's (2) does.
      s.name.clear();
      for (std::size_t i = 0; i < value.size(); ++i) {
        if (value[i] == '\\' && i + 1 < value.size() &&
            (value[i + 1] == 'n' || value[i + 1] == '\\')) {
          s.name += value[i + 1] == 'n' ? '\n' : '\\';
          ++i;
        } else {
          s.name += value[i];
        }
      }
      have_name = true;
      continue;
    }
    const auto value = trim(kv->value);
    if (key == "State") {  // "S (sleeping)"
      if (value.empty()) return std::nullopt;
      s.state = value[0];
      have_state = true;
    } else if (key == "Tgid" || key == "Pid" || key == "PPid") {
      auto v = parse_i64(value);
      if (!v || *v < 0 || *v > std::numeric_limits<std::int32_t>::max()) return std::nullopt;
      const auto id = static_cast<std::int32_t>(*v);
      if (key == "Tgid") s.tgid = id, have_tgid = true;
      if (key == "Pid") s.pid = id, have_pid = true;
      if (key == "PPid") s.ppid = id, have_ppid = true;
    } else if (key == "Uid") {  // "real effective saved fs"
      auto tokens = split_ws(value);
      if (tokens.empty()) return std::nullopt;
      auto uid = parse_u64(tokens[0]);
      if (!uid || *uid > std::numeric_limits<std::uint32_t>::max()) return std::nullopt;
      s.uid = static_cast<std::uint32_t>(*uid);
      have_uid = true;
    } else if (key == "VmRSS" || key == "VmHWM" || key == "RssAnon" || key == "VmLck" ||
               key == "VmStk") {
      auto bytes = parse_kb_value(value);
      if (!bytes) return std::nullopt;
      (key == "VmRSS"   ? s.vm_rss_bytes
       : key == "VmHWM" ? s.vm_hwm_bytes
       : key == "VmLck" ? s.vm_lck_bytes
       : key == "VmStk" ? s.vm_stk_bytes
                        : s.rss_anon_bytes) = *bytes;
    } else if (key == "CapEff") {  // 16 hex digits
      auto v = parse_hex_u64(value);
      if (!v) return std::nullopt;
      s.cap_eff = *v;
    } else if (key == "Threads") {
      auto v = parse_i64(value);
      if (!v) return std::nullopt;
      s.threads = *v;
    } else if (key == "voluntary_ctxt_switches" || key == "nonvoluntary_ctxt_switches") {
      auto v = parse_u64(value);
      if (!v) return std::nullopt;
      (key == "voluntary_ctxt_switches" ? s.voluntary_ctxt_switches
                                        : s.nonvoluntary_ctxt_switches) = *v;
    }
  }
  if (!have_name || !have_state || !have_tgid || !have_pid || !have_ppid || !have_uid) {
    return std::nullopt;
  }
  return s;
}

std::optional<TaskIo> parse_task_io(std::string_view text) {
  // "rchar: N" lines, in this order since 2.6.20 (proc(5) /proc/pid/io).
  TaskIo io;
  struct Slot {
    std::string_view key;
    std::uint64_t* value;
    bool seen;
  };
  Slot slots[] = {{"rchar", &io.rchar, false},
                  {"wchar", &io.wchar, false},
                  {"syscr", &io.syscr, false},
                  {"syscw", &io.syscw, false},
                  {"read_bytes", &io.read_bytes, false},
                  {"write_bytes", &io.write_bytes, false},
                  {"cancelled_write_bytes", &io.cancelled_write_bytes, false}};
  for (auto line : split_lines(text)) {
    auto kv = split_key_value(line);
    if (!kv) continue;
    for (auto& slot : slots) {
      if (kv->key != slot.key) continue;
      auto v = parse_u64(trim(kv->value));
      if (!v) return std::nullopt;
      *slot.value = *v;
      slot.seen = true;
    }
  }
  for (const auto& slot : slots) {
    if (!slot.seen) return std::nullopt;
  }
  return io;
}

std::optional<SyscallState> parse_syscall(std::string_view text) {
  // proc(5) /proc/pid/syscall: "running", "-1 sp pc", or "nr arg1..arg6 sp pc" (args in hex).
  const auto tokens = split_ws(text);
  SyscallState s;
  if (tokens.size() == 1 && tokens[0] == "running") return s;
  if (tokens.size() == 3 && tokens[0] == "-1") {
    auto sp = parse_hex_u64(tokens[1]);
    auto pc = parse_hex_u64(tokens[2]);
    if (!sp || !pc) return std::nullopt;
    s.kind = SyscallState::Kind::kNotInSyscall;
    s.sp = *sp;
    s.pc = *pc;
    return s;
  }
  if (tokens.size() != 9) return std::nullopt;
  auto nr = parse_i64(tokens[0]);
  if (!nr || *nr < 0) return std::nullopt;
  s.kind = SyscallState::Kind::kInSyscall;
  s.nr = *nr;
  for (std::size_t i = 0; i < 6; ++i) {
    auto arg = parse_hex_u64(tokens[1 + i]);
    if (!arg) return std::nullopt;
    s.args[i] = *arg;
  }
  auto sp = parse_hex_u64(tokens[7]);
  auto pc = parse_hex_u64(tokens[8]);
  if (!sp || !pc) return std::nullopt;
  s.sp = *sp;
  s.pc = *pc;
  return s;
}

std::optional<std::uint32_t> parse_fdinfo_flags(std::string_view text) {
  for (std::string_view line : split_lines(text)) {
    constexpr std::string_view kKey = "flags:";
    if (line.substr(0, kKey.size()) != kKey) continue;
    const std::string_view digits = trim(line.substr(kKey.size()));
    if (digits.empty() || digits.size() > 11) return std::nullopt;  // 32 bits: 11 octal digits
    std::uint64_t v = 0;
    for (char c : digits) {
      if (c < '0' || c > '7') return std::nullopt;
      v = v * 8 + static_cast<std::uint64_t>(c - '0');
    }
    if (v > UINT32_MAX) return std::nullopt;
    return static_cast<std::uint32_t>(v);
  }
  return std::nullopt;
}

std::string parse_wchan(std::string_view text) {
  // Since 4.x the kernel prints the symbol, or "0" when the task is running, the caller may not
  // see it (ptrace-read check), or the address has no symbol.
  const auto name = trim(text);
  if (name == "0") return {};
  return std::string(name);
}

std::vector<std::string> parse_kernel_stack(std::string_view text) {
  std::vector<std::string> names;
  while (!text.empty()) {
    const std::size_t end = std::min(text.find('\n'), text.size());
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(std::min(end + 1, text.size()));
    const std::size_t name_at = line.find("] ");
    if (name_at == std::string_view::npos) continue;
    std::string_view name = line.substr(name_at + 2);
    name = trim(name.substr(0, name.find('+')));
    if (!name.empty()) names.emplace_back(name);
  }
  return names;
}

std::optional<FdTarget> parse_fd_target(std::string_view link_text) {
  if (link_text.empty()) return std::nullopt;
  FdTarget t;
  t.deleted = strip_deleted_suffix(link_text);
  t.path = std::string(link_text);
  if (auto inode = bracket_inode(link_text, "socket:[")) {
    t.kind = FdTarget::Kind::kSocket;
    t.inode = *inode;
  } else if (auto pipe_inode = bracket_inode(link_text, "pipe:[")) {
    t.kind = FdTarget::Kind::kPipe;
    t.inode = *pipe_inode;
  } else if (starts_with(link_text, "anon_inode:")) {
    // fs/anon_inodes.c names: "[eventfd]", "[eventpoll]", "[timerfd]", "[signalfd]", "inotify",
    // "[io_uring]", "bpf-map", "[pidfd]", ...
    const auto name = link_text.substr(11);
    if (name == "[eventfd]") {
      t.kind = FdTarget::Kind::kEventfd;
    } else if (name == "[eventpoll]") {
      t.kind = FdTarget::Kind::kEpoll;
    } else if (name == "[timerfd]") {
      t.kind = FdTarget::Kind::kTimerfd;
    } else if (name == "[signalfd]") {
      t.kind = FdTarget::Kind::kSignalfd;
    } else {
      t.kind = FdTarget::Kind::kAnonOther;
    }
  } else if (starts_with(link_text, "/dev/") && !starts_with(link_text, "/dev/shm/")) {
    t.kind = FdTarget::Kind::kDevice;
  } else if (link_text.front() == '/') {
    t.kind = FdTarget::Kind::kRegularFile;
  } else {
    // "net:[4026531840]", "mnt:[...]", "pidfd:[...]" (6.9+), ...: keep the inode when there is one.
    t.kind = FdTarget::Kind::kOther;
    const auto bracket = link_text.find(":[");
    if (bracket != std::string_view::npos) {
      if (auto inode = bracket_inode(link_text, link_text.substr(0, bracket + 2))) t.inode = *inode;
    }
  }
  return t;
}

std::string_view fd_kind_name(FdTarget::Kind kind) {
  switch (kind) {
    case FdTarget::Kind::kRegularFile:
      return "regular_file";
    case FdTarget::Kind::kSocket:
      return "socket";
    case FdTarget::Kind::kPipe:
      return "pipe";
    case FdTarget::Kind::kEventfd:
      return "eventfd";
    case FdTarget::Kind::kEpoll:
      return "epoll";
    case FdTarget::Kind::kTimerfd:
      return "timerfd";
    case FdTarget::Kind::kSignalfd:
      return "signalfd";
    case FdTarget::Kind::kAnonOther:
      return "anon_other";
    case FdTarget::Kind::kDevice:
      return "device";
    case FdTarget::Kind::kOther:
      return "other";
  }
  return "other";
}

const Limit* Limits::find(std::string_view name) const {
  for (const auto& limit : limits) {
    if (limit.name == name) return &limit;
  }
  return nullptr;
}

std::optional<Limits> parse_limits(std::string_view text) {
  // fs/proc/base.c proc_pid_limits: a header "Limit  Soft Limit  Hard Limit  Units", then
  // "%-25s %-20s %-20s %-10s" per limit, where a value is a number or "unlimited". Names are words
  // without digits, so the first numeric or "unlimited" token ends the name.
  const auto lines = split_lines(text);
  if (lines.empty() || !starts_with(lines[0], "Limit")) return std::nullopt;
  auto parse_value = [](std::string_view token) -> std::optional<std::uint64_t> {
    if (token == "unlimited") return kUnlimited;
    return parse_u64(token);
  };
  Limits out;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const auto tokens = split_ws(lines[i]);
    if (tokens.empty()) continue;
    std::size_t first_value = 0;
    while (first_value < tokens.size() && !parse_value(tokens[first_value])) ++first_value;
    if (first_value == 0 || first_value + 1 >= tokens.size()) return std::nullopt;
    auto hard = parse_value(tokens[first_value + 1]);
    if (!hard || tokens.size() > first_value + 3) return std::nullopt;
    Limit limit;
    for (std::size_t k = 0; k < first_value; ++k) {
      if (k > 0) limit.name += ' ';
      limit.name += tokens[k];
    }
    limit.soft = *parse_value(tokens[first_value]);
    limit.hard = *hard;
    if (tokens.size() == first_value + 3) limit.units = std::string(tokens[first_value + 2]);
    out.limits.push_back(std::move(limit));
  }
  if (out.limits.empty()) return std::nullopt;
  return out;
}

std::optional<std::vector<CgroupEntry>> parse_cgroup(std::string_view text) {
  // cgroups(7): "hierarchy-ID:controller-list:cgroup-path"; the path may itself contain ':'.
  std::vector<CgroupEntry> out;
  for (auto line : split_lines(text)) {
    if (line.empty()) continue;
    const auto first = line.find(':');
    if (first == std::string_view::npos) return std::nullopt;
    const auto second = line.find(':', first + 1);
    if (second == std::string_view::npos) return std::nullopt;
    auto id = parse_i64(line.substr(0, first));
    if (!id || *id < 0 || *id > std::numeric_limits<std::int32_t>::max()) return std::nullopt;
    CgroupEntry entry;
    entry.hierarchy_id = static_cast<std::int32_t>(*id);
    auto controllers = line.substr(first + 1, second - first - 1);
    while (!controllers.empty()) {
      auto comma = controllers.find(',');
      auto name = controllers.substr(0, comma);
      if (!name.empty()) entry.controllers.emplace_back(name);
      if (comma == std::string_view::npos) break;
      controllers.remove_prefix(comma + 1);
    }
    entry.path = std::string(line.substr(second + 1));
    out.push_back(std::move(entry));
  }
  if (out.empty()) return std::nullopt;
  return out;
}

std::optional<std::string> cgroup_v2_path(const std::vector<CgroupEntry>& entries) {
  for (const auto& e : entries) {
    if (e.hierarchy_id == 0 && e.controllers.empty()) return e.path;
  }
  return std::nullopt;
}

}  // namespace chokepoint::collect::procfs
