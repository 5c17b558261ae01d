#pragma once
// Parser for /proc/sysvipc/shm: the System V shared memory segments of the reader's IPC
// namespace. A pure function of the file's text: no I/O, never throws, safe on any input, callable
// from any thread.

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace chokepoint::collect::procfs {

// One row (ipc/shm.c sysvipc_shm_proc_show: key shmid perms size cpid lpid nattch uid gid cuid
// cgid atime dtime ctime rss swap; rss and swap, in bytes, since 2.6.32).
struct SysvShmSegment {
  std::int64_t key = 0;  // printed signed: IPC_PRIVATE is 0, others may be negative
  std::uint64_t shmid = 0;
  std::uint64_t size_bytes = 0;
  int creator_pid = 0;         // cpid
  int last_pid = 0;            // lpid: the last shmat/shmdt
  std::uint64_t attached = 0;  // nattch
  std::optional<std::uint64_t> rss_bytes;
};

// Skips the header line. nullopt when the header is missing or a row has fewer than 7 fields or a
// field that is not a number; an empty table (header only) is an empty vector.
std::optional<std::vector<SysvShmSegment>> parse_sysvipc_shm(std::string_view text);

}  // namespace chokepoint::collect::procfs
