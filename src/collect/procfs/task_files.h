#pragma once
// TaskFiles keeps one thread's /proc files open so that sampling it again costs one pread() per
// file instead of open/read/close: the sampler's per-thread cost is a few syscalls.
//
// Ownership: a TaskFiles owns its fds (util::ScopedFd) and closes them when destroyed; it is
// move-only. The kept fds stay bound to the task they were opened for, never to a later task that
// reuses the tid: once the task is reaped every read fails with ESRCH (is_vanished() is true).
//
// Buffers: reads go into a caller-provided buffer (kTaskFileBufferBytes is enough for any of these
// files), so one buffer can serve every thread and nothing is allocated per read except the
// strings inside the parsed structs (comm, wchan).
//
// Thread-safety: reads are const and use pread at offset 0, so concurrent reads of one TaskFiles
// are safe as long as each caller passes its own buffer.

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "collect/procfs/task.h"
#include "collect/procfs/text.h"
#include "util/result.h"
#include "util/scoped_fd.h"

namespace chokepoint::collect::procfs {

// The files a TaskFiles may hold, as bits of a mask.
enum class TaskFile : unsigned {
  kStat = 1u << 0,
  kSchedstat = 1u << 1,
  kSyscall = 1u << 2,
  kWchan = 1u << 3,
  kIo = 1u << 4,
  kStatus = 1u << 5,
};
constexpr unsigned operator|(TaskFile a, TaskFile b) {
  return static_cast<unsigned>(a) | static_cast<unsigned>(b);
}
constexpr unsigned operator|(unsigned a, TaskFile b) {
  return a | static_cast<unsigned>(b);
}
// stat + schedstat + syscall: what the sampler needs every time a thread has run.
inline constexpr unsigned kSamplerFiles =
    TaskFile::kStat | TaskFile::kSchedstat | TaskFile::kSyscall;

inline constexpr std::size_t kTaskFileBufferBytes = 4096;

class TaskFiles {
 public:
  // Opens root/PID/task/TID/<file> for every file in `which` (a mask of TaskFile bits).
  // Fails when the task is gone (ENOENT/ESRCH, is_vanished()) or when stat or schedstat cannot be
  // opened. syscall, wchan and io may be refused (EACCES/EPERM: they need ptrace access); that
  // does not fail open(): the refused file's reads return that error, with its hint, every time.
  // With task_dir_fd (an fd of root/PID/task, e.g. O_PATH|O_DIRECTORY), files are opened with
  // openat(task_dir_fd, "TID/<file>"): the kernel walks two components instead of the whole
  // path, about a fifth cheaper per open on /proc (measured at 10,000 threads). The fd is only
  // used during the call.
  static util::Result<TaskFiles> open(const std::string& root, int pid, int tid, unsigned which,
                                      Units units = Units::host(), int task_dir_fd = -1);

  // Opens the files of `which` that are not open yet (a sampler opens stat and syscall only once a
  // thread has run). Same errors as open(); files opened before a failure stay open.
  util::Result<void> open_more(unsigned which, int task_dir_fd = -1);
  // Fds this object holds.
  int open_count() const;

  TaskFiles(TaskFiles&&) noexcept = default;
  TaskFiles& operator=(TaskFiles&&) noexcept = default;
  TaskFiles(const TaskFiles&) = delete;
  TaskFiles& operator=(const TaskFiles&) = delete;

  int pid() const { return pid_; }
  int tid() const { return tid_; }
  // True when the file was requested and opened.
  bool is_open(TaskFile file) const;

  // The file's current text, in buffer. Fails with EBADF-like "not opened" when the file was not
  // requested, EOVERFLOW when the buffer was too small, or the read's errno.
  util::Result<std::string_view> read_raw(TaskFile file, std::span<char> buffer) const;

  util::Result<TaskStat> stat(std::span<char> buffer) const;
  util::Result<Schedstat> schedstat(std::span<char> buffer) const;
  util::Result<SyscallState> syscall(std::span<char> buffer) const;
  util::Result<std::string> wchan(std::span<char> buffer) const;  // "" when not sleeping
  util::Result<TaskIo> io(std::span<char> buffer) const;
  util::Result<TaskStatus> status(std::span<char> buffer) const;

 private:
  static constexpr std::size_t kFileCount = 6;
  struct Slot {
    util::ScopedFd fd;
    int open_errno = 0;  // nonzero when open was refused (EACCES/EPERM)
  };
  TaskFiles(std::string base_path, int pid, int tid, Units units)
      : base_path_(std::move(base_path)), pid_(pid), tid_(tid), units_(units) {}
  const Slot& slot(TaskFile file) const;

  std::string base_path_;  // root/PID/task/TID, for error messages
  int pid_ = 0;
  int tid_ = 0;
  Units units_;
  std::array<Slot, kFileCount> slots_;
};

}  // namespace chokepoint::collect::procfs
