// PostgreSQL's wait events refine the kernel's split for its backends.
#include "model/service.h"

#include <gtest/gtest.h>

namespace chokepoint::model {
namespace {

TEST(PostgresWaitResource, FollowsTheWaitEventTypes) {
  EXPECT_EQ(postgres_wait_resource("Lock:transactionid"), Resource::kLock);
  EXPECT_EQ(postgres_wait_resource("BufferPin:BufferPin"), Resource::kLock);
  EXPECT_EQ(postgres_wait_resource("LWLock:BufferMapping"), Resource::kLock);
  EXPECT_EQ(postgres_wait_resource("LWLock:WALWrite"), Resource::kDisk);
  EXPECT_EQ(postgres_wait_resource("IO:DataFileRead"), Resource::kDisk);
  EXPECT_EQ(postgres_wait_resource("active"), Resource::kOnCpu);
  EXPECT_EQ(postgres_wait_resource("Client:ClientRead"), Resource::kIdle);
  EXPECT_EQ(postgres_wait_resource("idle in transaction"), Resource::kIdle);
  EXPECT_EQ(postgres_wait_resource("Timeout:PgSleep"), Resource::kSleep);
  EXPECT_FALSE(postgres_wait_resource("Activity:WalWriterMain"));
  EXPECT_FALSE(postgres_wait_resource("IPC:BgWorkerStartup"));
}

ThreadAccount backend(int pid, std::int64_t idle_ns, std::int64_t cpu_ns) {
  ThreadAccount t;
  t.key = {pid, pid, 1};
  t.split[Resource::kIdle] = idle_ns;
  t.split[Resource::kOnCpu] = cpu_ns;
  return t;
}

TEST(ApplyServiceWaits, MovesTheLockShareOfIdleTimeAndKeepsTheKernelsCpu) {
  std::vector<ThreadAccount> threads = {backend(10, 900, 100), backend(11, 1000, 0),
                                        backend(12, 1000, 0)};
  ServiceObservation pg;
  pg.kind = ServiceKind::kPostgres;
  pg.backend_waits[10] = {{"Lock:transactionid", 6}, {"active", 2}, {"Client:ClientRead", 2}};
  pg.backend_waits[11] = {{"Lock:transactionid", 10}};  // more than its idle time allows
  ServiceObservation redis;
  redis.kind = ServiceKind::kRedis;
  redis.backend_waits[12] = {{"Lock:transactionid", 10}};  // only PostgreSQL's count
  const auto moved = apply_service_waits(threads, {pg, redis});
  EXPECT_EQ(threads[0].split[Resource::kLock], 600);  // 60% of the wall time of 1,000
  EXPECT_EQ(threads[0].split[Resource::kIdle], 300);
  EXPECT_EQ(threads[0].split[Resource::kOnCpu], 100);
  EXPECT_EQ(threads[0].split.total_ns(), 1000);
  EXPECT_EQ(threads[0].details[static_cast<std::size_t>(Resource::kLock)].at(
                "postgres Lock:transactionid"),
            600);
  EXPECT_EQ(threads[1].split[Resource::kLock], 1000);
  EXPECT_EQ(threads[1].split[Resource::kIdle], 0);
  EXPECT_EQ(threads[2].split[Resource::kLock], 0);
  EXPECT_EQ(moved, 1600);
}

TEST(ApplyServiceWaits, AThreadOfAMultiThreadedProcessIsNotABackend) {
  std::vector<ThreadAccount> threads = {backend(10, 1000, 0)};
  threads[0].key.tid = 11;
  ServiceObservation pg;
  pg.kind = ServiceKind::kPostgres;
  pg.backend_waits[10] = {{"Lock:transactionid", 1}};
  EXPECT_EQ(apply_service_waits(threads, {pg}), 0);
}

}  // namespace
}  // namespace chokepoint::model
