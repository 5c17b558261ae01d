#include "util/bounded_read.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "util/scoped_fd.h"

namespace chokepoint::util {

std::string size_text(std::size_t bytes) {
  if (bytes >= (1u << 20) && bytes % (1u << 20) == 0) return fmt::format("{} MiB", bytes >> 20);
  if (bytes >= (1u << 10) && bytes % (1u << 10) == 0) return fmt::format("{} KiB", bytes >> 10);
  return fmt::format("{} bytes", bytes);
}

Result<std::string> read_file_bounded(const std::string& path, std::size_t max_bytes, FileKind kind,
                                      const std::string& what) {
  const std::string hint = "give " + what;
  // O_NONBLOCK for kRegularOnly: opening a FIFO would otherwise wait for a writer forever.
  const int flags = O_RDONLY | O_CLOEXEC | (kind == FileKind::kRegularOnly ? O_NONBLOCK : 0);
  ScopedFd fd(::open(path.c_str(), flags));
  if (!fd.valid()) return errno_error(fmt::format("cannot open '{}'", path), hint);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error(fmt::format("cannot stat '{}'", path), hint);
  if (S_ISDIR(st.st_mode)) return Error{fmt::format("'{}' is a directory", path), hint, EISDIR};
  if (kind == FileKind::kRegularOnly && !S_ISREG(st.st_mode)) {
    return Error{fmt::format("'{}' is not a regular file", path), hint, EINVAL};
  }
  if (S_ISREG(st.st_mode) && st.st_size > 0 && static_cast<std::size_t>(st.st_size) > max_bytes) {
    return Error{
        fmt::format("'{}' is larger than {} ({} bytes)", path, size_text(max_bytes), st.st_size),
        hint + " (at most " + size_text(max_bytes) + ")", EFBIG};
  }
  // /proc files and pipes report size 0: read until EOF, but never past the cap.
  std::string out;
  char buf[65536];
  while (out.size() <= max_bytes) {
    const std::size_t want = std::min(sizeof buf, max_bytes + 1 - out.size());
    const ssize_t n = ::read(fd.get(), buf, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(fmt::format("cannot read '{}'", path), hint);
    }
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return Error{fmt::format("'{}' holds more than {}", path, size_text(max_bytes)),
               hint + " (at most " + size_text(max_bytes) + ")", EFBIG};
}

}  // namespace chokepoint::util
