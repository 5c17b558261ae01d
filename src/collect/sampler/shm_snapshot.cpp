#include "collect/sampler/shm_snapshot.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <string>
#include <thread>

#include "collect/procfs/ipc.h"
#include "collect/procfs/text.h"
#include "util/scoped_fd.h"

namespace chokepoint::collect::sampler {
namespace {

// Reads /proc/sysvipc/shm and kernel.shm* of the caller's IPC namespace.
void read_sysv(const procfs::ProcFs& proc, const std::set<int>& pids, model::ShmSample& s) {
  const auto number = [&](std::string_view path) -> std::optional<std::uint64_t> {
    auto text = proc.read_text(path, false);
    if (!text) return std::nullopt;
    return procfs::parse_u64(procfs::trim(*text));
  };
  s.shmmax_bytes = number("sys/kernel/shmmax");
  s.shmall_pages = number("sys/kernel/shmall");
  s.shmmni = number("sys/kernel/shmmni");
  auto text = proc.read_text("sysvipc/shm", false);
  if (!text) return;
  auto segments = procfs::parse_sysvipc_shm(*text);
  if (!segments) return;
  s.sysv_read = true;
  for (const auto& seg : *segments) {
    ++s.segments;
    s.segment_bytes += seg.size_bytes;
    s.segment_pages += (seg.size_bytes + s.page_size_bytes - 1) / s.page_size_bytes;
    s.largest_bytes = std::max(s.largest_bytes, seg.size_bytes);
    if (pids.count(seg.creator_pid) > 0 || pids.count(seg.last_pid) > 0) {
      ++s.target_segments;
      s.target_bytes += seg.size_bytes;
    }
  }
}

bool same_namespace(const procfs::ProcFs& proc, int pid, const char* kind) {
  struct stat theirs {};
  struct stat ours {};
  const std::string base = proc.root() + "/";
  return ::stat((base + std::to_string(pid) + "/ns/" + kind).c_str(), &theirs) == 0 &&
         ::stat((base + "self/ns/" + kind).c_str(), &ours) == 0 && theirs.st_ino == ours.st_ino &&
         theirs.st_dev == ours.st_dev;
}

}  // namespace

std::optional<model::ShmSample> take_shm_snapshot(const procfs::ProcFs& proc,
                                                  const std::vector<int>& pids,
                                                  const FdTargetsOf& fds_of) {
  model::ShmSample s;
  if (const long page = sysconf(_SC_PAGESIZE); page > 0)
    s.page_size_bytes = static_cast<std::uint64_t>(page);
  const std::set<int> target(pids.begin(), pids.end());
  const int pid = pids.empty() ? 0 : pids.front();

  if (pid == 0 || same_namespace(proc, pid, "ipc")) {
    read_sysv(proc, target, s);
  } else {
    // setns changes only the calling thread's namespace, and /proc/sysvipc and /proc/sys/kernel
    // show the namespace of the thread that opens them.
    const std::string ns_path = proc.root() + "/" + std::to_string(pid) + "/ns/ipc";
    util::ScopedFd ns_fd(::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (ns_fd.valid()) {
      std::thread worker([&] {
        if (::setns(ns_fd.get(), CLONE_NEWIPC) == 0) read_sysv(proc, target, s);
      });
      worker.join();
    }
  }

  // /proc/PID/root is the target's root in its own mount namespace.
  const std::string shm_dir = pid == 0 ? std::string("/dev/shm")
                                       : proc.root() + "/" + std::to_string(pid) + "/root/dev/shm";
  struct statvfs vfs {};
  if (::statvfs(shm_dir.c_str(), &vfs) == 0 && vfs.f_blocks > 0) {
    const std::uint64_t unit = vfs.f_frsize != 0 ? vfs.f_frsize : vfs.f_bsize;
    s.posix_size_bytes = procfs::saturating_mul(vfs.f_blocks, unit);
    s.posix_used_bytes =
        procfs::saturating_mul(vfs.f_blocks - std::min(vfs.f_bfree, vfs.f_blocks), unit);
  }
  for (int p : pids) {
    const auto* fds = fds_of(p);
    if (fds == nullptr) continue;
    for (const auto& fd : *fds) {
      if (fd.target.kind == procfs::FdTarget::Kind::kRegularFile &&
          fd.target.path.rfind("/dev/shm/", 0) == 0)
        ++s.target_posix_fds;
    }
  }
  if (!s.sysv_read && !s.posix_size_bytes) return std::nullopt;
  return s;
}

}  // namespace chokepoint::collect::sampler
