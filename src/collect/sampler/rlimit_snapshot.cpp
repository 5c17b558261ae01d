#include "collect/sampler/rlimit_snapshot.h"

#include <map>

namespace chokepoint::collect::sampler {
namespace {

// include/uapi/linux/capability.h
constexpr int kCapIpcLock = 14;
constexpr int kCapSysAdmin = 21;
constexpr int kCapSysResource = 24;

bool has_cap(std::uint64_t cap_eff, int cap) {
  return (cap_eff >> cap) & 1U;
}

std::optional<std::uint64_t> soft(const procfs::Limits& limits, std::string_view name) {
  const procfs::Limit* l = limits.find(name);
  if (l == nullptr || l->soft == procfs::kUnlimited) return std::nullopt;
  return l->soft;
}

}  // namespace

std::optional<model::RlimitSample> take_rlimit_snapshot(const procfs::ProcFs& proc,
                                                        const std::vector<int>& pids) {
  model::RlimitSample out;
  for (int pid : pids) {
    if (out.processes.size() >= kRlimitMaxProcesses) break;
    auto limits = proc.read_limits(pid);
    auto status = proc.read_process_status(pid);
    if (!limits || !status) continue;  // gone since it was listed
    model::ProcessRlimits p;
    p.pid = pid;
    p.uid = status->uid;
    p.nproc_soft = soft(*limits, "Max processes");
    p.memlock_soft_bytes = soft(*limits, "Max locked memory");
    p.stack_soft_bytes = soft(*limits, "Max stack size");
    p.core_soft_bytes = soft(*limits, "Max core file size");
    p.locked_bytes = status->vm_lck_bytes.value_or(0);
    p.stack_bytes = status->vm_stk_bytes.value_or(0);
    // kernel/fork.c copy_process: root of the initial user namespace, CAP_SYS_RESOURCE and
    // CAP_SYS_ADMIN pass RLIMIT_NPROC; mm/mlock.c: CAP_IPC_LOCK passes RLIMIT_MEMLOCK.
    p.nproc_exempt = p.uid == 0 || has_cap(status->cap_eff, kCapSysResource) ||
                     has_cap(status->cap_eff, kCapSysAdmin);
    p.memlock_exempt = has_cap(status->cap_eff, kCapIpcLock);
    out.processes.push_back(p);
  }
  if (out.processes.empty()) return std::nullopt;

  // RLIMIT_NPROC counts every task (process or thread) whose real uid is the process's: one walk
  // of the host's processes for the uids that have a limit to be near.
  std::map<std::uint32_t, std::uint64_t> tasks;
  for (const auto& p : out.processes) {
    if (p.nproc_soft && !p.nproc_exempt) tasks[p.uid] = 0;
  }
  if (!tasks.empty()) {
    if (auto all = proc.list_pids()) {
      for (int pid : *all) {
        auto st = proc.read_process_status(pid);
        if (!st) continue;
        if (auto it = tasks.find(st->uid); it != tasks.end() && st->threads > 0)
          it->second += static_cast<std::uint64_t>(st->threads);
      }
    }
    for (auto& p : out.processes) {
      if (auto it = tasks.find(p.uid); it != tasks.end()) p.uid_tasks = it->second;
    }
  }
  return out;
}

}  // namespace chokepoint::collect::sampler
