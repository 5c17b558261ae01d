#include "collect/procfs/freezer.h"

#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <vector>

namespace chokepoint::collect::procfs {
namespace {

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// mountinfo(5)'s root field names the part of the hierarchy mounted: a path from /proc/PID/cgroup
// is relative to the hierarchy's root, so strip the mount's root from it.
std::string join(const std::string& mount, const std::string& root, const std::string& path) {
  std::string rel = path;
  if (root != "/" && rel.compare(0, root.size(), root) == 0) rel = rel.substr(root.size());
  return mount + rel;
}

bool has_option(const std::string& options, const std::string& name) {
  std::stringstream ss(options);
  std::string o;
  while (std::getline(ss, o, ',')) {
    if (o == name) return true;
  }
  return false;
}

}  // namespace

FreezerReader::FreezerReader(const ProcFs& proc) : proc_(proc) {
  auto text = proc.read_text("self/mountinfo", false);
  if (!text) return;
  std::stringstream lines(*text);
  std::string line;
  while (std::getline(lines, line)) {
    // "36 35 0:31 / /sys/fs/cgroup/freezer rw,relatime shared:9 - cgroup cgroup rw,freezer"
    const auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::stringstream head(line.substr(0, dash)), tail(line.substr(dash + 3));
    std::string id, parent, dev, root, mount, fstype, source, super;
    head >> id >> parent >> dev >> root >> mount;
    tail >> fstype >> source >> super;
    if (fstype == "cgroup2" && v2_mount_.empty()) {
      v2_mount_ = mount;
      v2_root_ = root;
    } else if (fstype == "cgroup" && has_option(super, "freezer") && v1_mount_.empty()) {
      v1_mount_ = mount;
      v1_root_ = root;
    }
  }
  const auto absent = [](const std::string& path) {
    return ::access(path.c_str(), F_OK) != 0 && errno == ENOENT;
  };
  v2_root_unfreezable_ =
      !v2_mount_.empty() && absent(join(v2_mount_, v2_root_, "/") + "/cgroup.events");
  v1_root_unfreezable_ =
      !v1_mount_.empty() && absent(join(v1_mount_, v1_root_, "/") + "/freezer.state");
}

bool FreezerReader::read_state(const std::string& cgroup_text, bool& read_any) {
  std::stringstream lines(cgroup_text);
  std::string line;
  while (std::getline(lines, line)) {
    // cgroups(7): "hierarchy-ID:controller-list:cgroup-path"; v2 is "0::/path".
    const auto c1 = line.find(':');
    const auto c2 = line.find(':', c1 + 1);
    if (c1 == std::string::npos || c2 == std::string::npos) continue;
    const std::string controllers = line.substr(c1 + 1, c2 - c1 - 1);
    const std::string path = line.substr(c2 + 1);
    const bool root = path == "/";
    if (controllers.empty() && line.compare(0, c1, "0") == 0 && !v2_mount_.empty()) {
      if (root && v2_root_unfreezable_) continue;
      read_any = true;
      std::ifstream events(join(v2_mount_, v2_root_, path) + "/cgroup.events");
      std::string key;
      int value = 0;
      while (events >> key >> value) {
        if (key == "frozen" && value == 1) return true;
      }
    } else if (has_option(controllers, "freezer") && !v1_mount_.empty()) {
      if (root && v1_root_unfreezable_) continue;
      read_any = true;
      const std::string state = first_line(join(v1_mount_, v1_root_, path) + "/freezer.state");
      if (state == "FROZEN" || state == "FREEZING") return true;
    }
  }
  return false;
}

bool FreezerReader::frozen(int pid, std::int64_t now_ns) {
  if (v2_mount_.empty() && v1_mount_.empty()) return false;
  auto text = proc_.read_text(std::to_string(pid) + "/cgroup", true);
  if (!text) return false;
  return frozen_in(*text, now_ns);
}

bool FreezerReader::frozen_in(const std::string& cgroup_text, std::int64_t now_ns) {
  if (!available()) return false;
  auto it = cache_.find(cgroup_text);
  if (it != cache_.end() && (it->second.lasting || now_ns - it->second.at_ns < kCacheNs))
    return it->second.frozen;
  if (cache_.size() > 4096) cache_.clear();  // a bound for hosts with many cgroups
  bool read_any = false;
  const bool f = read_state(cgroup_text, read_any);
  cache_[cgroup_text] = {f, now_ns, !read_any};
  return f;
}

}  // namespace chokepoint::collect::procfs
