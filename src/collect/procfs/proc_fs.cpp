#include "collect/procfs/proc_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "util/scoped_fd.h"

namespace chokepoint::collect::procfs {

namespace {

using util::Error;
using util::Result;

// Parses the text at root/relative with parse(text) -> optional<T>.
template <typename T, typename Parse>
Result<T> read_parsed(const ProcFs& fs, const std::string& relative, bool per_task, Parse parse) {
  auto text = fs.read_text(relative, per_task);
  if (!text) return text.error();
  auto parsed = parse(std::string_view(*text));
  if (!parsed) return parse_error(fs.root() + "/" + relative);
  return T(std::move(*parsed));
}

std::string task_rel(int pid, int tid, std::string_view name) {
  return std::to_string(pid) + "/task/" + std::to_string(tid) + "/" + std::string(name);
}

std::string proc_rel(int pid, std::string_view name) {
  return std::to_string(pid) + "/" + std::string(name);
}

std::optional<int> parse_pid_name(const char* name) {
  auto v = parse_u64(name);
  if (!v || *v == 0 || *v > static_cast<std::uint64_t>(INT_MAX)) return std::nullopt;
  return static_cast<int>(*v);
}

Result<std::vector<int>> list_numeric(const std::string& dir, bool per_task) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    const int err = errno;
    return util::errno_error("cannot list " + dir, err, read_error_hint(err, per_task));
  }
  std::vector<int> ids;
  int err = 0;
  for (;;) {
    errno = 0;  // readdir returns NULL both at the end and on error; only errno tells them apart
    const dirent* entry = ::readdir(d);
    if (entry == nullptr) {
      err = errno;
      break;
    }
    if (auto id = parse_pid_name(entry->d_name)) ids.push_back(*id);
  }
  ::closedir(d);
  // readdir of a task dir whose task exited mid-listing ends with ENOENT: report it as vanished.
  if (err != 0) return util::errno_error("cannot list " + dir, err, read_error_hint(err, per_task));
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace

bool is_vanished(const util::Error& error) {
  return error.errno_value == ENOENT || error.errno_value == ESRCH;
}

bool is_permission_denied(const util::Error& error) {
  return error.errno_value == EACCES || error.errno_value == EPERM;
}

std::string read_error_hint(int errno_value, bool per_task) {
  switch (errno_value) {
    case ENOENT:
    case ESRCH:
      return per_task ? "the task exited (or its pid is gone); drop it and go on"
                      : "this kernel does not provide the file (an older kernel or a missing "
                        "CONFIG_ option)";
    case EACCES:
    case EPERM:
      return "run as root or as the process's owner (files such as syscall, io and fd need "
             "ptrace access to the task)";
    case EOPNOTSUPP:
      return "the kernel has this feature compiled in but disabled";
    default:
      return {};
  }
}

util::Error parse_error(const std::string& path) {
  return Error{"cannot parse " + path + ": unexpected format",
               "this kernel's format is not understood; please report it with the file's text",
               EBADMSG};
}

ProcFs::ProcFs(std::string root, Units units) : root_(std::move(root)), units_(units) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

std::string ProcFs::task_path(int pid, int tid, std::string_view name) const {
  return root_ + "/" + task_rel(pid, tid, name);
}

Result<std::string> ProcFs::read_text(std::string_view relative_path, bool per_task) const {
  const std::string path = root_ + "/" + std::string(relative_path);
  util::ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    const int err = errno;
    return util::errno_error("cannot open " + path, err, read_error_hint(err, per_task));
  }
  // /proc files report size 0, so read until EOF; most fit in the first 4 KiB read.
  std::string text;
  std::size_t used = 0;
  text.resize(4096);
  for (;;) {
    if (used == text.size()) text.resize(text.size() * 2);
    const ssize_t n = ::read(fd.get(), text.data() + used, text.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      return util::errno_error("cannot read " + path, err, read_error_hint(err, per_task));
    }
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  text.resize(used);
  return text;
}

Result<std::vector<int>> ProcFs::list_pids() const {
  return list_numeric(root_, false);
}

Result<std::vector<int>> ProcFs::list_tids(int pid) const {
  return list_numeric(root_ + "/" + std::to_string(pid) + "/task", true);
}

Result<TaskStat> ProcFs::read_task_stat(int pid, int tid) const {
  return read_parsed<TaskStat>(*this, task_rel(pid, tid, "stat"), true,
                               [this](std::string_view t) { return parse_task_stat(t, units_); });
}

Result<Schedstat> ProcFs::read_task_schedstat(int pid, int tid) const {
  return read_parsed<Schedstat>(*this, task_rel(pid, tid, "schedstat"), true, parse_schedstat);
}

Result<TaskStatus> ProcFs::read_task_status(int pid, int tid) const {
  return read_parsed<TaskStatus>(*this, task_rel(pid, tid, "status"), true, parse_task_status);
}

Result<TaskIo> ProcFs::read_task_io(int pid, int tid) const {
  return read_parsed<TaskIo>(*this, task_rel(pid, tid, "io"), true, parse_task_io);
}

Result<SyscallState> ProcFs::read_task_syscall(int pid, int tid) const {
  return read_parsed<SyscallState>(*this, task_rel(pid, tid, "syscall"), true, parse_syscall);
}

Result<std::string> ProcFs::read_task_wchan(int pid, int tid) const {
  auto text = read_text(task_rel(pid, tid, "wchan"), true);
  if (!text) return text.error();
  return parse_wchan(*text);
}

Result<TaskStat> ProcFs::read_process_stat(int pid) const {
  return read_parsed<TaskStat>(*this, proc_rel(pid, "stat"), true,
                               [this](std::string_view t) { return parse_task_stat(t, units_); });
}

Result<TaskStatus> ProcFs::read_process_status(int pid) const {
  return read_parsed<TaskStatus>(*this, proc_rel(pid, "status"), true, parse_task_status);
}

Result<TaskIo> ProcFs::read_process_io(int pid) const {
  return read_parsed<TaskIo>(*this, proc_rel(pid, "io"), true, parse_task_io);
}

Result<Limits> ProcFs::read_limits(int pid) const {
  return read_parsed<Limits>(*this, proc_rel(pid, "limits"), true, parse_limits);
}

Result<std::vector<CgroupEntry>> ProcFs::read_cgroup(int pid) const {
  return read_parsed<std::vector<CgroupEntry>>(*this, proc_rel(pid, "cgroup"), true, parse_cgroup);
}

Result<std::vector<FdEntry>> ProcFs::read_fd_targets(int pid) const {
  const std::string dir = root_ + "/" + proc_rel(pid, "fd");
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    const int err = errno;
    return util::errno_error("cannot list " + dir, err, read_error_hint(err, true));
  }
  std::vector<FdEntry> out;
  char buf[PATH_MAX];
  int err = 0;
  for (;;) {
    errno = 0;
    const dirent* entry = ::readdir(d);
    if (entry == nullptr) {
      err = errno;
      break;
    }
    auto fd = parse_u64(entry->d_name);
    if (!fd || *fd > static_cast<std::uint64_t>(INT_MAX)) continue;
    const ssize_t n = ::readlinkat(::dirfd(d), entry->d_name, buf, sizeof(buf));
    if (n < 0) {
      const int link_err = errno;
      if (link_err == ENOENT) continue;  // closed since readdir listed it
      // The entry lives in the DIR's buffer: name it before closedir frees that.
      const std::string path = dir + "/" + entry->d_name;
      ::closedir(d);
      return util::errno_error("cannot readlink " + path, link_err,
                               read_error_hint(link_err, true));
    }
    // A target longer than PATH_MAX comes back truncated; the kind is still right.
    auto target = parse_fd_target(std::string_view(buf, static_cast<std::size_t>(n)));
    if (target) out.push_back(FdEntry{static_cast<int>(*fd), std::move(*target)});
  }
  ::closedir(d);
  if (err != 0) return util::errno_error("cannot list " + dir, err, read_error_hint(err, true));
  std::sort(out.begin(), out.end(), [](const FdEntry& a, const FdEntry& b) { return a.fd < b.fd; });
  return out;
}

Result<FdTarget> ProcFs::read_fd_target(int pid, int fd) const {
  const std::string path = root_ + "/" + proc_rel(pid, "fd/" + std::to_string(fd));
  char buf[PATH_MAX];
  const ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf));
  if (n < 0) {
    const int err = errno;
    return util::errno_error("cannot readlink " + path, err, read_error_hint(err, true));
  }
  auto target = parse_fd_target(std::string_view(buf, static_cast<std::size_t>(n)));
  if (!target) return parse_error(path);
  return std::move(*target);
}

Result<std::uint32_t> ProcFs::read_fd_flags(int pid, int fd) const {
  return read_parsed<std::uint32_t>(*this, proc_rel(pid, "fdinfo/" + std::to_string(fd)), true,
                                    parse_fdinfo_flags);
}

Result<std::string> ProcFs::read_exe(int pid) const {
  const std::string path = root_ + "/" + proc_rel(pid, "exe");
  char buf[PATH_MAX];
  const ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf));
  if (n < 0) {
    const int err = errno;
    return util::errno_error("cannot readlink " + path, err, read_error_hint(err, true));
  }
  std::string_view exe(buf, static_cast<std::size_t>(n));
  strip_deleted_suffix(exe);
  return std::string(exe);
}

Result<SystemStat> ProcFs::read_system_stat() const {
  return read_parsed<SystemStat>(
      *this, "stat", false, [this](std::string_view t) { return parse_system_stat(t, units_); });
}

Result<Meminfo> ProcFs::read_meminfo() const {
  return read_parsed<Meminfo>(*this, "meminfo", false, parse_meminfo);
}

Result<Vmstat> ProcFs::read_vmstat() const {
  return read_parsed<Vmstat>(*this, "vmstat", false, parse_vmstat);
}

Result<std::vector<DiskStats>> ProcFs::read_diskstats() const {
  return read_parsed<std::vector<DiskStats>>(*this, "diskstats", false, parse_diskstats);
}

Result<std::vector<NetDevStats>> ProcFs::read_net_dev() const {
  return read_parsed<std::vector<NetDevStats>>(*this, "net/dev", false, parse_net_dev);
}

Result<NetCounters> ProcFs::read_net_snmp() const {
  return read_parsed<NetCounters>(*this, "net/snmp", false, parse_net_counters);
}

Result<NetCounters> ProcFs::read_net_netstat() const {
  return read_parsed<NetCounters>(*this, "net/netstat", false, parse_net_counters);
}

Result<Sockstat> ProcFs::read_sockstat() const {
  return read_parsed<Sockstat>(*this, "net/sockstat", false,
                               [this](std::string_view t) { return parse_sockstat(t, units_); });
}

std::optional<Pressure> unsupported_pressure(int errno_value, const std::string& path) {
  Pressure p;
  p.supported = false;
  if (errno_value == ENOENT) {
    p.unsupported_reason = "no " + path + ": the kernel is built without PSI (CONFIG_PSI)";
    return p;
  }
  if (errno_value == EOPNOTSUPP) {
    // psi_open() fails with EOPNOTSUPP when PSI is compiled in but off (psi=0, or
    // CONFIG_PSI_DEFAULT_DISABLED without psi=1 on the kernel command line).
    p.unsupported_reason = "PSI is disabled on this kernel; boot with psi=1 to enable " + path;
    return p;
  }
  return std::nullopt;
}

Result<Pressure> ProcFs::read_pressure(std::string_view resource) const {
  const std::string relative = "pressure/" + std::string(resource);
  auto text = read_text(relative, false);
  if (!text) {
    if (auto unsupported = unsupported_pressure(text.error().errno_value, root_ + "/" + relative)) {
      return std::move(*unsupported);
    }
    return text.error();
  }
  auto parsed = parse_pressure(*text);
  if (!parsed) return parse_error(root_ + "/" + relative);
  return std::move(*parsed);
}

Result<LoadAvg> ProcFs::read_loadavg() const {
  return read_parsed<LoadAvg>(*this, "loadavg", false, parse_loadavg);
}

Result<FileNr> ProcFs::read_file_nr() const {
  return read_parsed<FileNr>(*this, "sys/fs/file-nr", false, parse_file_nr);
}

Result<std::uint64_t> ProcFs::read_file_max() const {
  return read_parsed<std::uint64_t>(*this, "sys/fs/file-max", false, parse_file_max);
}

}  // namespace chokepoint::collect::procfs
