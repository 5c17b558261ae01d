#include "collect/procfs/task_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>

#include "collect/procfs/proc_fs.h"

namespace chokepoint::collect::procfs {

namespace {

using util::Error;
using util::Result;

constexpr TaskFile kAllFiles[] = {TaskFile::kStat,  TaskFile::kSchedstat, TaskFile::kSyscall,
                                  TaskFile::kWchan, TaskFile::kIo,        TaskFile::kStatus};

std::size_t index_of(TaskFile file) {
  return static_cast<std::size_t>(std::countr_zero(static_cast<unsigned>(file)));
}

const char* file_name(TaskFile file) {
  switch (file) {
    case TaskFile::kStat:
      return "stat";
    case TaskFile::kSchedstat:
      return "schedstat";
    case TaskFile::kSyscall:
      return "syscall";
    case TaskFile::kWchan:
      return "wchan";
    case TaskFile::kIo:
      return "io";
    case TaskFile::kStatus:
      return "status";
  }
  return "?";
}

// Files whose refusal (EACCES/EPERM) is reported per read instead of failing open(): they are
// guarded by a ptrace access check, unlike stat and schedstat, which anyone may read.
bool may_be_refused(TaskFile file) {
  return file == TaskFile::kSyscall || file == TaskFile::kWchan || file == TaskFile::kIo;
}

}  // namespace

Result<TaskFiles> TaskFiles::open(const std::string& root, int pid, int tid, unsigned which,
                                  Units units, int task_dir_fd) {
  TaskFiles files(root + "/" + std::to_string(pid) + "/task/" + std::to_string(tid), pid, tid,
                  units);
  auto opened = files.open_more(which, task_dir_fd);
  if (!opened) return opened.error();
  return files;
}

Result<void> TaskFiles::open_more(unsigned which, int task_dir_fd) {
  for (TaskFile file : kAllFiles) {
    if ((which & static_cast<unsigned>(file)) == 0) continue;
    Slot& slot = slots_[index_of(file)];
    if (slot.fd.valid() || slot.open_errno != 0) continue;
    if (task_dir_fd >= 0) {
      const std::string rel = std::to_string(tid_) + "/" + file_name(file);
      slot.fd.reset(::openat(task_dir_fd, rel.c_str(), O_RDONLY | O_CLOEXEC));
    } else {
      const std::string path = base_path_ + "/" + file_name(file);
      slot.fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    }
    if (slot.fd.valid()) continue;
    const int err = errno;
    if ((err == EACCES || err == EPERM) && may_be_refused(file)) {
      slot.open_errno = err;
      continue;
    }
    return util::errno_error("cannot open " + base_path_ + "/" + file_name(file), err,
                             read_error_hint(err, true));
  }
  return {};
}

int TaskFiles::open_count() const {
  int n = 0;
  for (const auto& s : slots_) n += s.fd.valid() ? 1 : 0;
  return n;
}

const TaskFiles::Slot& TaskFiles::slot(TaskFile file) const {
  return slots_[index_of(file)];
}

bool TaskFiles::is_open(TaskFile file) const {
  return slot(file).fd.valid();
}

Result<std::string_view> TaskFiles::read_raw(TaskFile file, std::span<char> buffer) const {
  const Slot& s = slot(file);
  // Paths are built only on the error paths: the hot path allocates nothing.
  auto path = [&] { return base_path_ + "/" + file_name(file); };
  if (!s.fd.valid()) {
    if (s.open_errno != 0) {
      return util::errno_error("cannot open " + path(), s.open_errno,
                               read_error_hint(s.open_errno, true));
    }
    return Error{"internal: " + path() + " was not opened by TaskFiles::open",
                 "pass its TaskFile bit in `which`", EBADF};
  }
  // One pread at offset 0 regenerates the file (seq_file restarts at position 0), and a file
  // that fits in the buffer comes back whole from one call.
  ssize_t n;
  do {
    n = ::pread(s.fd.get(), buffer.data(), buffer.size(), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    const int err = errno;
    return util::errno_error("cannot read " + path(), err, read_error_hint(err, true));
  }
  if (static_cast<std::size_t>(n) == buffer.size()) {
    return Error{"cannot read " + path() + ": it does not fit in " + std::to_string(buffer.size()) +
                     " bytes",
                 "pass a buffer of at least kTaskFileBufferBytes", EOVERFLOW};
  }
  return std::string_view(buffer.data(), static_cast<std::size_t>(n));
}

namespace {
template <typename T, typename Parse>
Result<T> parse_raw(Result<std::string_view> raw, const std::string& base_path, const char* name,
                    Parse parse) {
  if (!raw) return raw.error();
  auto parsed = parse(*raw);
  if (!parsed) return parse_error(base_path + "/" + name);
  return T(std::move(*parsed));
}
}  // namespace

Result<TaskStat> TaskFiles::stat(std::span<char> buffer) const {
  return parse_raw<TaskStat>(read_raw(TaskFile::kStat, buffer), base_path_, "stat",
                             [this](std::string_view t) { return parse_task_stat(t, units_); });
}

Result<Schedstat> TaskFiles::schedstat(std::span<char> buffer) const {
  return parse_raw<Schedstat>(read_raw(TaskFile::kSchedstat, buffer), base_path_, "schedstat",
                              parse_schedstat);
}

Result<SyscallState> TaskFiles::syscall(std::span<char> buffer) const {
  return parse_raw<SyscallState>(read_raw(TaskFile::kSyscall, buffer), base_path_, "syscall",
                                 parse_syscall);
}

Result<std::string> TaskFiles::wchan(std::span<char> buffer) const {
  auto raw = read_raw(TaskFile::kWchan, buffer);
  if (!raw) return raw.error();
  return parse_wchan(*raw);
}

Result<TaskIo> TaskFiles::io(std::span<char> buffer) const {
  return parse_raw<TaskIo>(read_raw(TaskFile::kIo, buffer), base_path_, "io", parse_task_io);
}

Result<TaskStatus> TaskFiles::status(std::span<char> buffer) const {
  return parse_raw<TaskStatus>(read_raw(TaskFile::kStatus, buffer), base_path_, "status",
                               parse_task_status);
}

}  // namespace chokepoint::collect::procfs
