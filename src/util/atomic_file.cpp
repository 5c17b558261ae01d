#include "util/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
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

Result<void> write_file_atomically(const std::string& path, std::string_view content) {
  const std::string dir = directory_of(path);
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
  // mkstemp creates 0600; give the file the mode a plain open(2) would (0666 minus the umask).
  mode_t mask = ::umask(0);
  ::umask(mask);
  if (::fchmod(fd.get(), 0666 & ~mask) != 0) return fail("cannot write");
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("cannot write");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail("cannot write");
  if (::close(fd.release()) != 0) return fail("cannot write");
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot replace");
  return {};
}

}  // namespace chokepoint::util
