// The cost of one system call to a process that is not traced, for `bench/exact/exact_bench.py
// BUILD hooks`: best of 7 loops of N calls, in ns per call. getppid stands for a system call no
// hook wants (it pays only for what is attached to every call); pwrite of one byte to a regular
// file for a file system call of a process outside the target (it pays for the file-call hook's
// program, which returns after one task-storage lookup).
//
// Usage: chokepoint-bench-syscalls getppid|pwrite N
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

int main(int argc, char** argv) {
  const std::string what = argc == 3 ? argv[1] : "";
  const long n = argc == 3 ? std::atol(argv[2]) : 0;
  if ((what != "getppid" && what != "pwrite") || n <= 0) {
    fmt::print(stderr, "usage: chokepoint-bench-syscalls getppid|pwrite N\n");
    return 2;
  }
  int fd = -1;
  char path[] = "/var/tmp/chokepoint-bench-syscalls.XXXXXX";
  if (what == "pwrite") {
    fd = mkstemp(path);
    if (fd < 0) {
      fmt::print(stderr, "error: cannot create {}: {}\n", path, std::strerror(errno));
      return 1;
    }
    unlink(path);
  }
  double best = std::numeric_limits<double>::max();
  for (int round = 0; round < 7; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < n; ++i) {
      if (fd < 0) {
        syscall(SYS_getppid);
      } else if (pwrite(fd, "x", 1, 0) != 1) {
        fmt::print(stderr, "error: pwrite: {}\n", std::strerror(errno));
        return 1;
      }
    }
    const std::chrono::duration<double, std::nano> d = std::chrono::steady_clock::now() - t0;
    best = std::min(best, d.count() / static_cast<double>(n));
  }
  fmt::print("{} {:.0f} ns\n", what, best);
  if (fd >= 0) close(fd);
  return 0;
}
