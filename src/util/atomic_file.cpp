#include "util/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <vector>

#include "util/scoped_fd.h"

namespace chokepoint::util {

Result<void> write_file_atomically(const std::string& path, std::string_view content) {
  // mkstemp in the destination's directory, so that rename(2) stays within one filesystem.
  std::string temp = path + ".XXXXXX";
  std::vector<char> name(temp.begin(), temp.end());
  name.push_back('\0');
  ScopedFd fd(mkostemp(name.data(), O_CLOEXEC));
  if (!fd.valid()) {
    return errno_error("cannot create a file next to '" + path + "'",
                       "check that the directory exists and is writable");
  }
  temp.assign(name.data());
  auto fail = [&](const char* what) {
    Error e = errno_error(std::string(what) + " '" + temp + "'", "check the free space and quota");
    unlink(temp.c_str());
    return e;
  };
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("cannot write");
    done += static_cast<std::size_t>(n);
  }
  // Files from mkstemp are 0600; outputs are meant to be shared like any other file we write.
  mode_t mask = umask(0);
  umask(mask);
  fchmod(fd.get(), 0666 & ~mask);
  if (fsync(fd.get()) != 0) return fail("cannot flush");
  fd.reset();
  if (rename(temp.c_str(), path.c_str()) != 0) {
    Error e = errno_error("cannot rename '" + temp + "' to '" + path + "'",
                          "check that the destination is not a directory");
    unlink(temp.c_str());
    return e;
  }
  return {};
}

}  // namespace chokepoint::util
