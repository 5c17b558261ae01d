// Shared memory: System V segments against kernel.shmmni (how many), kernel.shmall (all of them,
// in pages) and kernel.shmmax (the largest), and POSIX shared memory against the size of the
// /dev/shm tmpfs. A service past one of them fails in shmget() (ENOSPC, EINVAL) or in a write to
// its shm_open() file (ENOSPC, or SIGBUS through a mapping), usually at start-up or when it grows
// a pool. A finding, not a bottleneck, and only for a target that uses shared memory.
// See docs/verdicts/shared-memory.md.
#include <fmt/format.h>

#include "analysis/rules/rule.h"

namespace chokepoint::analysis::rules {
namespace {

// Near: at least this share of a limit in use.
constexpr double kNearLimit = 0.8;

bool near(std::uint64_t used, std::uint64_t limit) {
  return limit > 0 && static_cast<double>(used) >= kNearLimit * static_cast<double>(limit);
}

}  // namespace

RuleResult shared_memory(const Context& ctx) {
  RuleResult out;
  if (!ctx.obs.system.shm) return out;
  const auto& m = *ctx.obs.system.shm;
  const auto add = [&](std::string message, std::string hint) {
    out.findings.push_back(
        {FindingResource::kSharedMemory, Severity::kWarning, std::move(message), std::move(hint)});
  };
  const std::string mine = fmt::format("the target holds {} of them ({})", m.target_segments,
                                       bytes(static_cast<double>(m.target_bytes)));
  if (m.sysv_read && m.target_segments > 0) {
    if (m.shmmni && near(m.segments, *m.shmmni)) {
      add(fmt::format("{} System V shared memory segments exist of kernel.shmmni {} ({}); {}: "
                      "shmget() fails with ENOSPC at the limit",
                      m.segments, *m.shmmni,
                      percent(static_cast<double>(m.segments) / static_cast<double>(*m.shmmni)),
                      mine),
          fmt::format("raise kernel.shmmni (sysctl -w kernel.shmmni={}), or remove segments "
                      "nobody attaches (ipcs -m; ipcrm -m ID)",
                      std::max<std::uint64_t>(4096, *m.shmmni * 2)));
    }
    if (m.shmall_pages && near(m.segment_pages, *m.shmall_pages)) {
      add(fmt::format(
              "System V shared memory segments take {} pages ({}) of kernel.shmall {} "
              "pages ({}); {}: shmget() fails with ENOSPC at the limit",
              m.segment_pages, bytes(static_cast<double>(m.segment_bytes)), *m.shmall_pages,
              percent(static_cast<double>(m.segment_pages) / static_cast<double>(*m.shmall_pages)),
              mine),
          fmt::format("raise kernel.shmall (in {}-byte pages: sysctl -w kernel.shmall={})",
                      m.page_size_bytes, *m.shmall_pages * 2));
    }
    if (m.shmmax_bytes && near(m.largest_bytes, *m.shmmax_bytes)) {
      add(fmt::format("the largest System V segment is {} of kernel.shmmax {}: a larger one fails "
                      "with EINVAL",
                      bytes(static_cast<double>(m.largest_bytes)),
                      bytes(static_cast<double>(*m.shmmax_bytes))),
          "raise kernel.shmmax (sysctl -w kernel.shmmax=BYTES) above the largest segment the "
          "service asks for");
    }
  }
  if (m.target_posix_fds > 0 && m.posix_size_bytes && m.posix_used_bytes &&
      near(*m.posix_used_bytes, *m.posix_size_bytes)) {
    add(fmt::format("/dev/shm (POSIX shared memory, where the target has {} file{} open) holds {} "
                    "of its {} ({}): writes fail with ENOSPC, and touching a new page of a "
                    "mapping kills the process with SIGBUS",
                    m.target_posix_fds, m.target_posix_fds == 1 ? "" : "s",
                    bytes(static_cast<double>(*m.posix_used_bytes)),
                    bytes(static_cast<double>(*m.posix_size_bytes)),
                    percent(static_cast<double>(*m.posix_used_bytes) /
                            static_cast<double>(*m.posix_size_bytes))),
        "raise its size (mount -o remount,size=2G /dev/shm; a container's --shm-size), or remove "
        "files nobody uses (ls -l /dev/shm)");
  }
  return out;
}

}  // namespace chokepoint::analysis::rules
