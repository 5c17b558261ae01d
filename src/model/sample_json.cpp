#include "model/sample_json.h"

#include <cstdint>
#include <optional>

namespace chokepoint::model {
namespace {

nlohmann::json opt_json(const std::optional<std::uint64_t>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

nlohmann::json shm_json(const ShmSample& m) {
  return {{"sysv_read", m.sysv_read},
          {"segments", m.segments},
          {"segment_bytes", m.segment_bytes},
          {"segment_pages", m.segment_pages},
          {"largest_bytes", m.largest_bytes},
          {"target_segments", m.target_segments},
          {"target_bytes", m.target_bytes},
          {"shmmax_bytes", opt_json(m.shmmax_bytes)},
          {"shmall_pages", opt_json(m.shmall_pages)},
          {"shmmni", opt_json(m.shmmni)},
          {"posix_size_bytes", opt_json(m.posix_size_bytes)},
          {"posix_used_bytes", opt_json(m.posix_used_bytes)},
          {"target_posix_fds", m.target_posix_fds}};
}

nlohmann::json rlimit_processes_json(const RlimitSample& r) {
  nlohmann::json processes = nlohmann::json::array();
  for (const auto& p : r.processes) {
    processes.push_back({{"pid", p.pid},
                         {"uid", p.uid},
                         {"nproc_soft", opt_json(p.nproc_soft)},
                         {"uid_tasks", p.uid_tasks},
                         {"nproc_exempt", p.nproc_exempt},
                         {"memlock_soft_bytes", opt_json(p.memlock_soft_bytes)},
                         {"locked_bytes", p.locked_bytes},
                         {"memlock_exempt", p.memlock_exempt},
                         {"stack_soft_bytes", opt_json(p.stack_soft_bytes)},
                         {"stack_bytes", p.stack_bytes},
                         {"core_soft_bytes", opt_json(p.core_soft_bytes)}});
  }
  return processes;
}

}  // namespace chokepoint::model
