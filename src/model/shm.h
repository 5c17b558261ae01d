#pragma once
// Shared memory against its limits, as the target sees it: System V segments of its IPC namespace
// (/proc/sysvipc/shm) against kernel.shmmax, shmall and shmmni, and the POSIX shared memory tmpfs
// of its mount namespace (/dev/shm) against its size. Read at the window's end; judged by
// analysis/rules/shared_memory.cpp.

#include <cstdint>
#include <optional>

namespace chokepoint::model {

struct ShmSample {
  bool sysv_read = false;  // /proc/sysvipc/shm of the target's IPC namespace was read
  std::uint64_t segments = 0;
  std::uint64_t segment_bytes = 0;  // their sizes, summed
  std::uint64_t segment_pages = 0;  // the same in pages, each segment rounded up (shmall's unit)
  std::uint64_t largest_bytes = 0;
  std::uint64_t target_segments = 0;  // created or last attached by a target process
  std::uint64_t target_bytes = 0;
  std::optional<std::uint64_t> shmmax_bytes;  // kernel.shmmax: the largest segment allowed
  std::optional<std::uint64_t> shmall_pages;  // kernel.shmall: all segments together, in pages
  std::optional<std::uint64_t> shmmni;        // kernel.shmmni: how many segments
  std::uint64_t page_size_bytes = 4096;
  // /dev/shm (statvfs through /proc/PID/root): nullopt when it is not mounted or unreadable.
  std::optional<std::uint64_t> posix_size_bytes, posix_used_bytes;
  std::uint64_t target_posix_fds = 0;  // fds of target processes open on files under /dev/shm
};

}  // namespace chokepoint::model
