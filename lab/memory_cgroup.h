#pragma once
// Puts the whole lab process into a fresh memory cgroup with a hard limit (the paging scenario),
// and takes it out and removes the cgroup again on destruction.
//
// The new cgroup is a child of the cgroup the process is in now (from /proc/self/cgroup), so it
// stays inside whatever hierarchy started us and the parent still accounts for it. cgroup v2 is
// used when the unified hierarchy offers the memory controller (memory.max), else v1
// (memory.limit_in_bytes). Call create() before starting threads: writing the pid to
// cgroup.procs moves every thread of the process, but memory charged earlier stays where it was.
// Move-only; not thread-safe.

#include <cstdint>
#include <string>

#include "util/result.h"

namespace chokepoint::lab {

class MemoryCgroup {
 public:
  // `cgroup_root` is where cgroupfs is mounted (normally /sys/fs/cgroup); `proc_root` is /proc.
  static util::Result<MemoryCgroup> create(std::int64_t limit_bytes,
                                           const std::string& cgroup_root = "/sys/fs/cgroup",
                                           const std::string& proc_root = "/proc");
  MemoryCgroup(MemoryCgroup&& other) noexcept;
  MemoryCgroup& operator=(MemoryCgroup&&) = delete;
  MemoryCgroup(const MemoryCgroup&) = delete;
  ~MemoryCgroup();

  const std::string& path() const { return path_; }
  bool is_v2() const { return v2_; }

 private:
  MemoryCgroup(std::string path, std::string parent, bool v2)
      : path_(std::move(path)), parent_(std::move(parent)), v2_(v2) {}
  std::string path_;    // the cgroup directory we created; empty once moved from
  std::string parent_;  // where the process was before, to move back to on destruction
  bool v2_ = false;
};

}  // namespace chokepoint::lab
