#pragma once
// Resource limits (setrlimit(2), /proc/PID/limits) of the target's processes against what each
// one uses: RLIMIT_NPROC against the tasks (processes and threads) of the process's real uid,
// RLIMIT_MEMLOCK against its mlock()ed memory (VmLck), RLIMIT_STACK against its main thread's
// stack (VmStk), and RLIMIT_CORE, which has no use to be near but says whether a crash leaves a
// core. Read at the window's end; judged by analysis/rules/rlimits.cpp. A limit is nullopt when
// it is unlimited or unreadable.

#include <cstdint>
#include <optional>
#include <vector>

namespace chokepoint::model {

struct ProcessRlimits {
  int pid = 0;
  std::uint32_t uid = 0;  // the real uid, which RLIMIT_NPROC counts against
  std::optional<std::uint64_t> nproc_soft;
  std::uint64_t uid_tasks = 0;  // tasks of that uid on the host (all namespaces), threads included
  std::optional<std::uint64_t> memlock_soft_bytes;
  std::uint64_t locked_bytes = 0;  // VmLck
  std::optional<std::uint64_t> stack_soft_bytes;
  std::uint64_t stack_bytes = 0;  // VmStk
  std::optional<std::uint64_t> core_soft_bytes;
  // root (and CAP_SYS_RESOURCE/CAP_SYS_ADMIN for nproc, CAP_IPC_LOCK for memlock) is exempt from
  // the nproc and memlock limits: the effective capabilities (CapEff) hold them.
  bool nproc_exempt = false;
  bool memlock_exempt = false;
};

struct RlimitSample {
  std::vector<ProcessRlimits> processes;
};

}  // namespace chokepoint::model
