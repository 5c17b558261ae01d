#include "util/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <optional>
#include <vector>

#include "util/scoped_fd.h"

namespace chokepoint::util {

namespace {

std::string directory_of(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

std::string hint_for(int e, const std::string& dir) {
  switch (e) {
    case ENOENT:
    case ENOTDIR:
      return "the directory " + dir + " does not exist: create it or pick another path";
    case EACCES:
    case EPERM:
    case EROFS:
      return "the directory " + dir + " is not writable: pick another path or fix its permissions";
    case ENOSPC:
    case EDQUOT:
      return "the disk is full: free space or write elsewhere";
    default:
      return "pick another output path";
  }
}

}  // namespace

Result<void> check_writable(const std::string& path) {
  const std::string dir = directory_of(path);
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    int e = errno;
    return errno_error("cannot write " + path, e, hint_for(e, dir));
  }
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return Error{"cannot write " + path + ": it is a directory",
                 "give a file name, e.g. " + path + "/profile.svg", EISDIR};
  }
  return {};
}

namespace {

// Writes all of content to fd (EINTR retried); false with errno set on failure.
bool write_all(int fd, std::string_view content) {
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// The preferred way: an unnamed file (O_TMPFILE) that gets a name only once it is complete, so
// that a SIGKILL at any point leaves no temporary behind. nullopt when the file system has no
// O_TMPFILE (then the named temporary below is used).
std::optional<Result<void>> write_unnamed_then_link(const std::string& path,
                                                    std::string_view content,
                                                    const std::string& dir, mode_t mode) {
  ScopedFd fd(::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, mode));
  if (!fd.valid()) {
    if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL) return std::nullopt;
    int e = errno;
    return errno_error("cannot write " + path, e, hint_for(e, dir));
  }
  auto fail = [&](const char* what) {
    int e = errno;
    return errno_error(std::string(what) + " " + path, e, hint_for(e, dir));
  };
  if (!write_all(fd.get(), content) || ::fsync(fd.get()) != 0) return fail("cannot write");
  // linkat(2) with AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; through /proc/self/fd it does not.
  const std::string self = "/proc/self/fd/" + std::to_string(fd.get());
  if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0) return {};
  if (errno != EEXIST) {
    if (errno == ENOENT && ::access("/proc/self/fd", F_OK) != 0) return std::nullopt;  // no /proc
    return fail("cannot write");
  }
  // The target exists: link under a temporary name and rename over it. Only these two calls
  // apart can a kill leave the temporary.
  for (int attempt = 0; attempt < 100; ++attempt) {
    const std::string tmp =
        path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(attempt);
    if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, tmp.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      if (errno == EEXIST) continue;
      return fail("cannot write");
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      Result<void> r = fail("cannot replace");
      ::unlink(tmp.c_str());
      return r;
    }
    return Result<void>{};
  }
  errno = EEXIST;
  return fail("cannot write");
}

}  // namespace

Result<void> write_file_atomically(const std::string& path, std::string_view content) {
  const std::string dir = directory_of(path);
  // The mode a plain open(2) would give (0666 minus the umask).
  mode_t mask = ::umask(0);
  ::umask(mask);
  if (auto r = write_unnamed_then_link(path, content, dir, 0666 & ~mask)) return *r;
  std::string tmp = path + ".tmp.XXXXXX";
  std::vector<char> name(tmp.begin(), tmp.end());
  name.push_back('\0');
  ScopedFd fd(mkostemp(name.data(), O_CLOEXEC));
  if (!fd.valid()) {
    int e = errno;
    return errno_error("cannot write " + path, e, hint_for(e, dir));
  }
  tmp.assign(name.data());
  auto fail = [&](const char* what) {
    int e = errno;
    ::unlink(tmp.c_str());
    return errno_error(std::string(what) + " " + path, e, hint_for(e, dir));
  };
  // mkstemp creates 0600.
  if (::fchmod(fd.get(), 0666 & ~mask) != 0) return fail("cannot write");
  if (!write_all(fd.get(), content)) return fail("cannot write");
  if (::fsync(fd.get()) != 0) return fail("cannot write");
  if (::close(fd.release()) != 0) return fail("cannot write");
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot replace");
  return {};
}

}  // namespace chokepoint::util
