// The service rules on observations built by hand: the findings that need a situation a short
// integration test cannot make cheaply (a serializable workload that retries, a client reading
// slowly) and the order of the fixes fold_services gives the verdict.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "analysis/services.h"

namespace chokepoint::analysis {
namespace {

using model::ServiceKind;
using model::ServiceObservation;

ServiceObservation postgres(double secs) {
  ServiceObservation s;
  s.kind = ServiceKind::kPostgres;
  s.endpoint = "/tmp:5432/postgres as postgres";
  s.duration_ns = static_cast<std::int64_t>(secs * 1e9);
  s.samples_ok = 30;
  s.activity_samples = 30;
  s.backend_waits[100] = {{"active", 30}};
  return s;
}

// A 2 s observation of a service read `samples` times.
ServiceObservation two_seconds_of(ServiceKind kind, std::string endpoint, int samples) {
  ServiceObservation s;
  s.kind = kind;
  s.endpoint = std::move(endpoint);
  s.duration_ns = 2'000'000'000;
  s.samples_ok = samples;
  return s;
}

const ServiceFinding* find(const ServiceReport& r, const std::string& text) {
  for (const auto& f : r.findings) {
    if (f.message.find(text) != std::string::npos) return &f;
  }
  return nullptr;
}

TEST(ServicePostgres, RollbacksUnderSerializableAreRetriedSerializationFailures) {
  ServiceObservation s = postgres(3);
  s.settings["default_transaction_isolation"] = "serializable";
  s.counters_first = {{"xact_commit", 1000}, {"xact_rollback", 10}};
  s.counters_last = {{"xact_commit", 1300}, {"xact_rollback", 160}};  // 100/s and 50/s
  const auto reports = assess_services({s});
  ASSERT_EQ(reports.size(), 1U);
  const ServiceFinding* f = find(reports[0], "rollbacks/s");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->warning);
  EXPECT_EQ(f->resource, model::Resource::kLock);
  EXPECT_NE(f->message.find("50.0 rollbacks/s (33% of transactions)"), std::string::npos)
      << f->message;
  EXPECT_NE(f->message.find("an upper bound"), std::string::npos);

  // Under read committed the same rollbacks are the application's own: no finding.
  s.settings["default_transaction_isolation"] = "read committed";
  EXPECT_EQ(find(assess_services({s})[0], "rollbacks/s"), nullptr);
}

TEST(ServicePostgres, TheTopStatementIsCpuEvidenceAndItsFixGoesFirst) {
  ServiceObservation s = postgres(2);
  s.settings["pg_stat_statements"] = "loaded";
  s.counters_first = {
      {"stmt:1:calls", 0}, {"stmt:1:total_ms", 0}, {"stmt:2:calls", 100}, {"stmt:2:total_ms", 10}};
  s.counters_last = {{"stmt:1:calls", 300},
                     {"stmt:1:total_ms", 3000},  // 1,500 ms/s, 10 ms each
                     {"stmt:2:calls", 700},
                     {"stmt:2:total_ms", 70}};
  s.settings["stmt:1:query"] = "SELECT * FROM items WHERE k = $1";
  s.settings["stmt:2:query"] = "SELECT 1";
  const auto reports = assess_services({s});
  const ServiceFinding* top = find(reports[0], "SELECT * FROM items WHERE k = $1");
  ASSERT_NE(top, nullptr);
  EXPECT_TRUE(top->warning);
  EXPECT_NE(top->message.find("1500 ms/s, 150 calls/s, 10.00 ms each"), std::string::npos)
      << top->message;
  // The 2% statement is below the notable share: not listed.
  EXPECT_EQ(find(reports[0], "SELECT 1"), nullptr);

  Diagnosis d;
  d.verdict = Verdict::kCpu;
  Bottleneck b;
  b.resource = Verdict::kCpu;
  b.fixes = {"profile the hot code"};
  d.bottlenecks.push_back(b);
  fold_services(d, reports);
  ASSERT_GE(d.bottlenecks[0].fixes.size(), 2U);
  EXPECT_NE(d.bottlenecks[0].fixes[0].find("EXPLAIN ANALYZE it"), std::string::npos)
      << d.bottlenecks[0].fixes[0];
  EXPECT_EQ(d.bottlenecks[0].fixes.back(), "profile the hot code");
}

TEST(ServicePostgres, WithoutPgStatStatementsTheReportSaysHowToLoadIt) {
  ServiceObservation s = postgres(2);
  s.settings["pg_stat_statements"] =
      "postgres probe: relation \"pg_stat_statements\" does not exist";
  const auto reports = assess_services({s});
  const ServiceFinding* f = find(reports[0], "no per-query times");
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(f->warning);
  EXPECT_NE(f->fix.find("shared_preload_libraries"), std::string::npos);
}

TEST(ServiceRedis, ALargeClientOutputBufferIsAFinding) {
  ServiceObservation s = two_seconds_of(ServiceKind::kRedis, "127.0.0.1:6379", 2);
  s.gauges["client_recent_max_output_buffer"] = {0, 48.0 * 1024 * 1024, 0, 0};
  const auto reports = assess_services({s});
  const ServiceFinding* f = find(reports[0], "output buffer reached 48.0 MiB");
  ASSERT_NE(f, nullptr) << "findings: " << reports[0].findings.size();
  EXPECT_EQ(f->resource, model::Resource::kNetwork);
  EXPECT_NE(f->fix.find("CLIENT LIST"), std::string::npos);
  s.gauges["client_recent_max_output_buffer"] = {0, 16 * 1024, 0, 0};
  EXPECT_EQ(find(assess_services({s})[0], "output buffer"), nullptr);
}

// HAProxy queues in a backend only when no server can take the request, so a queue seen at any
// sample means every server that takes sessions was at its maxconn then, even if no sample caught
// its scur at the limit (a read between a session ending and the queued one taking its slot).
TEST(ServiceHaproxy, ABackendQueueMeansItsServersWereFullEvenIfNoSampleSawIt) {
  ServiceObservation s = two_seconds_of(ServiceKind::kHaproxy, "/run/haproxy.sock", 40);
  s.gauges["backend:app:qcur"] = {0, 12, 4.5, 3};
  s.gauges["server:app/web1:scur"] = {0, 0, 0, 0};  // never caught at its limit
  s.gauges["server:app/web1:slim"] = {1, 1, 1, 1};
  s.settings["server:app/web1:status"] = "no check";
  s.gauges["server:app/web2:scur"] = {0, 0, 0, 0};  // down: it takes nothing, so is not full
  s.gauges["server:app/web2:slim"] = {1, 1, 1, 1};
  s.settings["server:app/web2:status"] = "DOWN";
  s.gauges["server:app/web3:scur"] = {0, 3, 1, 0};  // no maxconn: never full
  const auto reports = assess_services({s});
  const ServiceFinding* f = find(reports[0], "backend app: up to 12 requests queued");
  ASSERT_NE(f, nullptr) << "findings: " << reports[0].findings.size();
  EXPECT_TRUE(f->warning);
  EXPECT_NE(f->message.find("1 of 3 servers at their maxconn"), std::string::npos) << f->message;

  // Without a queue, only a sample at the limit counts a server as full.
  s.gauges["backend:app:qcur"] = {0, 0, 0, 0};
  EXPECT_EQ(find(assess_services({s})[0], "queued"), nullptr);
}

}  // namespace
}  // namespace chokepoint::analysis
