#include "lab/memory_cgroup.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

namespace chokepoint::lab {
namespace {

bool write_file(const std::string& path, const std::string& value) {
  std::ofstream out(path);
  if (!out) return false;
  out << value;
  out.flush();
  return static_cast<bool>(out);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The path of our cgroup in a hierarchy, from /proc/self/cgroup (see cgroups(7)): lines are
// "ID:CONTROLLERS:PATH"; v2 is "0::PATH", v1 memory is "N:memory:PATH" (maybe "memory,..." ).
std::string own_cgroup(const std::string& proc_root, bool v2) {
  std::istringstream lines(read_file(proc_root + "/self/cgroup"));
  std::string line;
  while (std::getline(lines, line)) {
    std::size_t a = line.find(':');
    std::size_t b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string controllers = line.substr(a + 1, b - a - 1);
    std::string path = line.substr(b + 1);
    if (v2 && line.compare(0, a, "0") == 0 && controllers.empty()) return path;
    if (!v2) {
      std::istringstream cs(controllers);
      std::string c;
      while (std::getline(cs, c, ',')) {
        if (c == "memory") return path;
      }
    }
  }
  return "/";
}

const char* kHint =
    "the paging scenario needs root and a cgroup memory controller (v2 memory.max or v1 "
    "/sys/fs/cgroup/memory); run as root, or pick another scenario";

}  // namespace

util::Result<MemoryCgroup> MemoryCgroup::create(std::int64_t limit_bytes,
                                                const std::string& cgroup_root,
                                                const std::string& proc_root) {
  // Which hierarchy has the memory controller: the unified one at the root or at unified/, or v1.
  std::string v2_mount;
  for (const std::string& candidate : {cgroup_root, cgroup_root + "/unified"}) {
    std::string controllers = read_file(candidate + "/cgroup.controllers");
    std::istringstream cs(controllers);
    std::string c;
    while (cs >> c) {
      if (c == "memory") v2_mount = candidate;
    }
    if (!v2_mount.empty()) break;
  }
  bool v2 = !v2_mount.empty();
  std::string mount = v2 ? v2_mount : cgroup_root + "/memory";
  if (!v2 && access((mount + "/cgroup.procs").c_str(), F_OK) != 0) {
    return util::Error{"no memory cgroup controller under " + cgroup_root, kHint, 0};
  }
  std::string own = own_cgroup(proc_root, v2);
  std::string parent = mount + (own == "/" ? "" : own);
  std::string path = parent + "/chokepoint-lab-" + std::to_string(getpid());
  if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return util::errno_error("cannot create memory cgroup " + path, kHint);
  }
  MemoryCgroup cg(path, parent, v2);
  std::string limit = std::to_string(limit_bytes);
  bool ok = v2 ? write_file(path + "/memory.max", limit) &&
                     (write_file(path + "/memory.swap.max", "0"), true)
               : write_file(path + "/memory.limit_in_bytes", limit);
  if (!ok) {
    return util::Error{
        "cannot set the memory limit of " + path,
        v2 ? "enable the memory controller in the parent's cgroup.subtree_control" : kHint, 0};
  }
  if (!write_file(path + "/cgroup.procs", std::to_string(getpid()))) {
    return util::Error{"cannot move the lab into " + path,
                       "on cgroup v2 a process may only join a leaf cgroup whose parent delegates "
                       "the memory controller; run as root",
                       0};
  }
  return cg;
}

MemoryCgroup::MemoryCgroup(MemoryCgroup&& other) noexcept
    : path_(std::move(other.path_)), parent_(std::move(other.parent_)), v2_(other.v2_) {
  other.path_.clear();
}

MemoryCgroup::~MemoryCgroup() {
  if (path_.empty()) return;
  // A cgroup with tasks cannot be removed: move the whole process back first (cgroups(7)).
  write_file(parent_ + "/cgroup.procs", std::to_string(getpid()));
  if (rmdir(path_.c_str()) != 0) {
    // Charged page cache can keep a v1 memcg busy for a moment; drop it and retry once.
    if (!v2_) write_file(path_ + "/memory.force_empty", "0");
    rmdir(path_.c_str());
  }
}

}  // namespace chokepoint::lab
