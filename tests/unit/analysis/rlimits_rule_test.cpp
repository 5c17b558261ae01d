// The rlimits rule: processes near RLIMIT_NPROC, RLIMIT_MEMLOCK and RLIMIT_STACK, the ones the
// kernel exempts, and limits with room, which must stay silent.
#include <gtest/gtest.h>

#include <string>

#include "analysis/diagnosis.h"

namespace chokepoint::analysis {
namespace {

model::ProcessRlimits healthy() {
  model::ProcessRlimits p;
  p.pid = 100;
  p.uid = 1000;
  p.nproc_soft = 4096;
  p.uid_tasks = 300;
  p.memlock_soft_bytes = 8 << 20;
  p.locked_bytes = 0;
  p.stack_soft_bytes = 8 << 20;
  p.stack_bytes = 132 << 10;
  p.core_soft_bytes = 0;
  return p;
}

std::vector<Finding> rlimit_findings(const std::vector<model::ProcessRlimits>& processes) {
  model::Observation o;
  o.target = {"pid", "100", {100}};
  o.duration_ns = 1'000'000'000;
  o.system.cpus_online = 2;
  model::ProcessSummary s;
  s.pid = 100;
  s.name = "svc";
  o.processes.push_back(s);
  o.system.rlimits = model::RlimitSample{processes};
  std::vector<Finding> out;
  for (const auto& f : diagnose(o).findings) {
    if (f.resource == FindingResource::kRlimits) out.push_back(f);
  }
  return out;
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(RlimitsRule, RoomIsSilent) {
  EXPECT_TRUE(rlimit_findings({healthy()}).empty());
  auto unlimited = healthy();
  unlimited.nproc_soft.reset();
  unlimited.memlock_soft_bytes.reset();
  unlimited.stack_soft_bytes.reset();
  unlimited.uid_tasks = 1'000'000;
  EXPECT_TRUE(rlimit_findings({unlimited}).empty());
}

TEST(RlimitsRule, NprocNearTheLimitOncePerUid) {
  auto p = healthy();
  p.uid_tasks = 3900;  // 95%
  auto second = p;
  second.pid = 101;
  auto f = rlimit_findings({p, second});
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].message,
            "uid 1000 runs 3900 tasks (processes and threads) against the RLIMIT_NPROC of pid 100 "
            "(svc), 4096 (95%): fork(), clone() and pthread_create() fail with EAGAIN at the "
            "limit");
  EXPECT_TRUE(has(f[0].hint, "LimitNPROC=")) << f[0].hint;
  p.nproc_exempt = true;  // root or CAP_SYS_RESOURCE: the kernel does not enforce it
  EXPECT_TRUE(rlimit_findings({p}).empty());
}

TEST(RlimitsRule, MemlockAndStackNearTheirLimits) {
  auto p = healthy();
  p.locked_bytes = 7 << 20;
  p.stack_bytes = 7 << 20;
  auto f = rlimit_findings({p});
  ASSERT_EQ(f.size(), 2u);
  EXPECT_TRUE(has(f[0].message,
                  "pid 100 (svc) has 7.0 MiB of memory locked (VmLck) of its "
                  "RLIMIT_MEMLOCK 8.0 MiB (88%)"))
      << f[0].message;
  EXPECT_TRUE(has(f[0].hint, "LimitMEMLOCK=")) << f[0].hint;
  EXPECT_TRUE(has(f[1].message,
                  "the main thread of pid 100 (svc) uses 7.0 MiB of stack (VmStk) "
                  "of its RLIMIT_STACK 8.0 MiB (88%): a deeper call past the limit "
                  "is a SIGSEGV"))
      << f[1].message;
  p.memlock_exempt = true;  // CAP_IPC_LOCK
  EXPECT_EQ(rlimit_findings({p}).size(), 1u);
}

}  // namespace
}  // namespace chokepoint::analysis
