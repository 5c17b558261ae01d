#pragma once
// ProcFs reads /proc, or a copy of it: every path is taken relative to the root it was built with,
// so tests run on tests/fixtures/proc/<case>. Each read_* opens, reads and closes one file and
// parses it with the pure parsers of task.h, system.h and net.h; for repeated per-thread sampling
// use TaskFiles (task_files.h), which keeps the files open.
//
// Errors: a task that exited reads as an Error whose errno_value is ENOENT or ESRCH (is_vanished()
// tells), so callers can drop it quietly; EACCES/EPERM carry the hint "run as root or as the
// process's owner"; text that does not parse is errno_value EBADMSG.
//
// Thread-safety: a ProcFs is immutable after construction; all methods are const and may be called
// from any thread at once.

#include <string>
#include <string_view>
#include <vector>

#include "collect/procfs/net.h"
#include "collect/procfs/system.h"
#include "collect/procfs/task.h"
#include "collect/procfs/text.h"
#include "util/result.h"

namespace chokepoint::collect::procfs {

inline constexpr const char* kDefaultRoot = "/proc";

// True when the error means the task (or the file) is gone: ENOENT or ESRCH.
bool is_vanished(const util::Error& error);
// True when the error means we may not look: EACCES or EPERM.
bool is_permission_denied(const util::Error& error);

// One open fd of a process and what it points at.
struct FdEntry {
  int fd = -1;
  FdTarget target;
};

class ProcFs {
 public:
  explicit ProcFs(std::string root = kDefaultRoot, Units units = Units::host());

  const std::string& root() const { return root_; }
  const Units& units() const { return units_; }

  // The whole text of root/relative_path. per_task selects the hints (vanished task vs. a file
  // this kernel lacks).
  util::Result<std::string> read_text(std::string_view relative_path, bool per_task) const;

  // Numeric entries of root (processes) and of root/PID/task (threads), ascending.
  util::Result<std::vector<int>> list_pids() const;
  util::Result<std::vector<int>> list_tids(int pid) const;

  // One thread: root/PID/task/TID/<file>.
  util::Result<TaskStat> read_task_stat(int pid, int tid) const;
  util::Result<Schedstat> read_task_schedstat(int pid, int tid) const;
  util::Result<TaskStatus> read_task_status(int pid, int tid) const;
  util::Result<TaskIo> read_task_io(int pid, int tid) const;
  util::Result<SyscallState> read_task_syscall(int pid, int tid) const;
  util::Result<std::string> read_task_wchan(int pid, int tid) const;  // "" when not sleeping

  // One process: root/PID/<file> (stat and io sum the threads, live and exited).
  util::Result<TaskStat> read_process_stat(int pid) const;
  util::Result<TaskStatus> read_process_status(int pid) const;
  util::Result<TaskIo> read_process_io(int pid) const;
  util::Result<Limits> read_limits(int pid) const;
  util::Result<std::vector<CgroupEntry>> read_cgroup(int pid) const;
  // readlink of every root/PID/fd/N, ascending by fd. An fd closed between listing and readlink is
  // skipped. Needs ptrace-read access to the process (root, or its owner).
  util::Result<std::vector<FdEntry>> read_fd_targets(int pid) const;
  // readlink of one root/PID/fd/FD: what a thread blocked in read(fd, ...) waits on, for one
  // syscall instead of a directory walk. ENOENT when the fd (or the process) is gone.
  util::Result<FdTarget> read_fd_target(int pid, int fd) const;
  // root/PID/fdinfo/FD's open flags (parse_fdinfo_flags): whether a file is O_DSYNC or O_SYNC.
  // ENOENT when the fd (or the process) is gone.
  util::Result<std::uint32_t> read_fd_flags(int pid, int fd) const;
  // readlink of root/PID/exe: the path of the process's executable, as its maps lines name it (an
  // executable replaced or unlinked since it started loses the kernel's " (deleted)"). Needs
  // ptrace-read access to the process (root, or its owner); a kernel thread has none (ENOENT).
  util::Result<std::string> read_exe(int pid) const;

  // The system (and, for net/*, the reader's network namespace).
  util::Result<SystemStat> read_system_stat() const;
  util::Result<Meminfo> read_meminfo() const;
  util::Result<Vmstat> read_vmstat() const;
  util::Result<std::vector<DiskStats>> read_diskstats() const;
  util::Result<std::vector<NetDevStats>> read_net_dev() const;
  util::Result<NetCounters> read_net_snmp() const;
  util::Result<NetCounters> read_net_netstat() const;
  util::Result<Sockstat> read_sockstat() const;
  // resource is "cpu", "memory" or "io". A kernel without PSI (no file) or with PSI disabled (the
  // file exists but reads fail with EOPNOTSUPP) is a value: Pressure{supported = false}.
  util::Result<Pressure> read_pressure(std::string_view resource) const;
  util::Result<LoadAvg> read_loadavg() const;
  util::Result<FileNr> read_file_nr() const;
  util::Result<std::uint64_t> read_file_max() const;

  // "<root>/<pid>/task/<tid>/<name>", used by TaskFiles too.
  std::string task_path(int pid, int tid, std::string_view name) const;

 private:
  std::string root_;
  Units units_;
};

// The hint for a failed read of a /proc file, by errno: vanished task, permission, missing file.
std::string read_error_hint(int errno_value, bool per_task);
// Pressure{supported = false} with its reason when a pressure file failed with ENOENT (PSI compiled
// out) or EOPNOTSUPP (PSI disabled); nullopt for any other errno, which stays an error.
std::optional<Pressure> unsupported_pressure(int errno_value, const std::string& path);
// The Error for text that did not parse.
util::Error parse_error(const std::string& path);

}  // namespace chokepoint::collect::procfs
