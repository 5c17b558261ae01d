#include "collect/sampler/target.h"

#include <linux/magic.h>
#include <poll.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

namespace chokepoint::collect::sampler {

std::string kind_name(TargetSpec::Kind kind) {
  switch (kind) {
    case TargetSpec::Kind::kPid:
      return "pid";
    case TargetSpec::Kind::kName:
      return "name";
    case TargetSpec::Kind::kCgroup:
      return "cgroup";
    case TargetSpec::Kind::kCommand:
      return "command";
    case TargetSpec::Kind::kHost:
      return "host";
  }
  return "host";
}

std::string cgroup_procs_file(const std::string& cgroup_path) {
  for (const char* name : {"cgroup.procs", "tasks"}) {
    std::string f = cgroup_path + "/" + name;
    if (::access(f.c_str(), R_OK) == 0) return f;
  }
  return {};
}

std::vector<std::string> cgroups_with_processes_below(const std::string& cgroup_path,
                                                      std::size_t max_count) {
  std::vector<std::string> dirs;
  std::error_code ec;
  std::filesystem::recursive_directory_iterator it(
      cgroup_path, std::filesystem::directory_options::skip_permission_denied, ec);
  for (const std::filesystem::recursive_directory_iterator end; !ec && it != end;
       it.increment(ec)) {
    // Cgroup directories are real directories; a symbolic link is not followed.
    if (it->is_directory(ec) && !it->is_symlink(ec)) dirs.push_back(it->path().string());
  }
  std::sort(dirs.begin(), dirs.end());
  std::vector<std::string> out;
  for (const std::string& dir : dirs) {
    if (out.size() >= max_count) break;
    const std::string file = cgroup_procs_file(dir);
    if (file.empty()) continue;
    std::ifstream in(file);
    int pid = 0;
    if (in >> pid) out.push_back(dir);
  }
  return out;
}

namespace {

util::Result<std::vector<int>> read_cgroup_pids(const std::string& path) {
  std::string file = cgroup_procs_file(path);
  if (file.empty()) {
    return util::Error{path + " is not a cgroup: it has no cgroup.procs or tasks file",
                       "pass a directory under a cgroup mount, e.g. "
                       "/sys/fs/cgroup/system.slice/nginx.service (v2) or "
                       "/sys/fs/cgroup/memory/mygroup (v1); see /proc/PID/cgroup for a process's",
                       ENOTDIR};
  }
  std::ifstream in(file);
  if (!in) return util::errno_error("read " + file, "run as root to read this cgroup");
  std::set<int> pids;
  int pid = 0;
  while (in >> pid) pids.insert(pid);
  return std::vector<int>(pids.begin(), pids.end());
}

bool name_matches(const procfs::ProcFs& proc, int pid, const std::string& name) {
  auto st = proc.read_process_stat(pid);
  if (!st) return false;
  // comm is truncated to 15 bytes by the kernel.
  if (st->comm == name || (name.size() > 15 && st->comm == name.substr(0, 15))) return true;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink(proc.root() + "/" + std::to_string(pid) + "/exe", ec);
  return !ec && exe.filename() == name;
}

// pid and every descendant, from one scan of all processes' parent pids.
std::vector<int> with_descendants(const procfs::ProcFs& proc, int root_pid) {
  auto pids = proc.list_pids();
  std::vector<int> out;
  if (!pids) return out;
  std::multimap<int, int> children;
  for (int p : *pids) {
    auto st = proc.read_process_stat(p);
    if (st) children.emplace(st->ppid, p);
  }
  std::vector<int> stack = {root_pid};
  while (!stack.empty()) {
    int p = stack.back();
    stack.pop_back();
    out.push_back(p);
    auto [b, e] = children.equal_range(p);
    for (auto it = b; it != e; ++it) stack.push_back(it->second);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool alive(const procfs::ProcFs& proc, int pid) {
  // The state field of /proc/PID/stat is the group leader's, so the leader's own task stat says
  // the same; the process-wide file would also sum the CPU times of every thread (4% of
  // diagnose's CPU at 10,000 threads, with a re-resolve every 2 s).
  auto st = proc.read_task_stat(pid, pid);
  return st && st->state != 'Z' && st->state != 'X';
}

// Every live process of a kPid spec with more_pids (and their descendants with `children`),
// once each. Gone when all of them are gone.
std::vector<int> with_more_pids(const procfs::ProcFs& proc, const TargetSpec& spec) {
  std::set<int> out;
  std::vector<pid_t> roots = {spec.pid};
  roots.insert(roots.end(), spec.more_pids.begin(), spec.more_pids.end());
  for (pid_t root : roots) {
    if (!alive(proc, root)) continue;
    if (!spec.children) {
      out.insert(root);
      continue;
    }
    for (int p : with_descendants(proc, root)) out.insert(p);
  }
  return {out.begin(), out.end()};
}

}  // namespace

util::Result<void> validate(const TargetSpec& spec, const procfs::ProcFs& proc) {
  switch (spec.kind) {
    case TargetSpec::Kind::kPid:
    case TargetSpec::Kind::kCommand:
      if (spec.pid <= 0 || !alive(proc, spec.pid)) {
        return util::Error{"no process with pid " + std::to_string(spec.pid),
                           "check the pid with 'ps -e' or pgrep; or use --name NAME", ESRCH};
      }
      for (pid_t p : spec.more_pids) {
        if (p <= 0 || !alive(proc, p)) {
          return util::Error{"no process with pid " + std::to_string(p),
                             "check the pid with 'ps -e' or pgrep; or use --name NAME", ESRCH};
        }
      }
      return {};
    case TargetSpec::Kind::kName: {
      auto pids = resolve_pids(spec, proc);
      if (!pids) return pids.error();
      if (pids->empty()) {
        return util::Error{"no running process is named '" + spec.name + "'",
                           "names match the process's comm (see 'ps -eo comm') or its executable's "
                           "file name",
                           ESRCH};
      }
      return {};
    }
    case TargetSpec::Kind::kCgroup: {
      std::error_code ec;
      if (!std::filesystem::is_directory(spec.cgroup_path, ec)) {
        return util::Error{spec.cgroup_path + " is not a cgroup directory",
                           "pass a directory under a cgroup mount (see 'mount -t cgroup2' and "
                           "/proc/PID/cgroup)",
                           ENOTDIR};
      }
      // Any directory can hold a file named cgroup.procs: only a cgroup filesystem's is one.
      struct statfs fs {};
      if (::statfs(spec.cgroup_path.c_str(), &fs) != 0 ||
          (static_cast<unsigned long>(fs.f_type) != CGROUP2_SUPER_MAGIC &&
           static_cast<unsigned long>(fs.f_type) != CGROUP_SUPER_MAGIC)) {
        return util::Error{spec.cgroup_path + " is not a cgroup: it is not on a cgroup filesystem",
                           "pass a directory under a cgroup mount (see 'mount -t cgroup2', "
                           "'mount -t cgroup' and /proc/PID/cgroup)",
                           ENOTDIR};
      }
      auto pids = read_cgroup_pids(spec.cgroup_path);
      if (!pids) return pids.error();
      return {};
    }
    case TargetSpec::Kind::kHost:
      return {};
  }
  return {};
}

util::Result<std::vector<int>> resolve_pids(const TargetSpec& spec, const procfs::ProcFs& proc) {
  switch (spec.kind) {
    case TargetSpec::Kind::kPid:
    case TargetSpec::Kind::kCommand:
      if (!spec.more_pids.empty()) return with_more_pids(proc, spec);
      if (!alive(proc, spec.pid)) return std::vector<int>{};
      if (spec.children || spec.kind == TargetSpec::Kind::kCommand) {
        return with_descendants(proc, spec.pid);
      }
      return std::vector<int>{spec.pid};
    case TargetSpec::Kind::kName: {
      auto pids = proc.list_pids();
      if (!pids) return pids.error();
      std::vector<int> out;
      for (int p : *pids) {
        if (p != getpid() && name_matches(proc, p, spec.name)) out.push_back(p);
      }
      return out;
    }
    case TargetSpec::Kind::kCgroup:
      return read_cgroup_pids(spec.cgroup_path);
    case TargetSpec::Kind::kHost: {
      auto pids = proc.list_pids();
      if (!pids) return pids.error();
      std::vector<int> out;
      const int self = getpid();
      for (int p : *pids) {
        if (p != self) out.push_back(p);
      }
      return out;
    }
  }
  return std::vector<int>{};
}

TargetResolver::TargetResolver(TargetSpec spec, const procfs::ProcFs& proc)
    : spec_(std::move(spec)), proc_(proc) {
  // pidfd_open names a pid of our own pid namespace: the host's /proc only.
  single_ = spec_.kind == TargetSpec::Kind::kPid && !spec_.children && spec_.more_pids.empty() &&
            spec_.pid > 0 && proc_.root() == "/proc";
}

util::Result<std::vector<int>> TargetResolver::pids() {
  if (!single_) return resolve_pids(spec_, proc_);
  if (pidfd_.valid()) {
    // pidfd_poll (kernel/fork.c): readable once the thread group has exited (a zombie too);
    // hung up once it was reaped.
    pollfd p{pidfd_.get(), POLLIN, 0};
    if (::poll(&p, 1, 0) == 0) return std::vector<int>{spec_.pid};
    pidfd_.reset();
  }
  // Opened before the look: the pidfd then holds the process the look finds alive, or one that
  // exited before the look, which the next look sees exited and looks again.
#ifdef SYS_pidfd_open
  util::ScopedFd fd(static_cast<int>(::syscall(SYS_pidfd_open, spec_.pid, 0)));
#else
  util::ScopedFd fd;
#endif
  auto pids = resolve_pids(spec_, proc_);
  if (pids && !pids->empty()) pidfd_ = std::move(fd);
  return pids;
}

}  // namespace chokepoint::collect::sampler
