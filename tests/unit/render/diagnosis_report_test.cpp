// The diagnosis report, text and JSON (schema 1), pinned byte for byte by golden files in
// tests/fixtures/render/: a change to the wording, the layout or a JSON name shows up here.
// CHOKEPOINT_UPDATE_GOLDEN=1 rewrites the files (and skips); review the diff before committing.
#include "render/diagnosis_report.h"

#include <gtest/gtest.h>

#include <string>

#include "support/golden.h"
#include "support/thread_account.h"

namespace chokepoint::render {
namespace {

using model::Resource;

constexpr std::int64_t kWindowNs = 5'000'000'000;

model::ThreadAccount thread(int tid, std::initializer_list<std::pair<Resource, double>> shares,
                            const std::string& detail) {
  return test_support::thread_account(tid, shares, detail, kWindowNs);
}

model::Observation base() {
  model::Observation o;
  o.target = {"pid", "100", {100}};
  o.duration_ns = kWindowNs;
  o.interval_ns = 50'000'000;
  o.system.cpus_online = 2;
  o.system.cpus_allowed = 2;
  o.system.cpu_utilization = 0.3;
  o.system.mem_available_bytes = 20ULL << 30;
  model::ProcessSummary p;
  p.pid = 100;
  p.name = "svc";
  p.threads = 10;
  p.rss_start_bytes = p.rss_end_bytes = p.rss_max_bytes = 50 << 20;
  p.open_fds = 950;
  p.fd_soft_limit = 1024;
  o.processes.push_back(p);
  o.sources.push_back({"schedstat", true, "exact on-CPU and run-queue time per thread", ""});
  o.sources.push_back({"psi", false, "not enabled", "boot with psi=1"});
  return o;
}

// A disk verdict with a lock runner-up and a finding about fds.
model::Observation disk_and_lock() {
  model::Observation o = base();
  for (int i = 0; i < 6; ++i) {
    o.threads.push_back(thread(i, {{Resource::kDisk, 0.5}, {Resource::kOnCpu, 0.02}},
                               "fdatasync /data/commit.dat"));
  }
  for (int i = 6; i < 10; ++i) {
    o.threads.push_back(
        thread(i, {{Resource::kLock, 0.4}, {Resource::kOnCpu, 0.05}}, "mutex 0x55d0c0a0"));
  }
  return o;
}

// Nothing limits the service: the verdict is none, with the headroom.
model::Observation idle() {
  model::Observation o = base();
  o.threads.push_back(thread(1, {{Resource::kOnCpu, 0.05}}, ""));
  return o;
}

void expect_golden(const std::string& name, const std::string& actual) {
  test_support::expect_matches_golden(std::string(CHOKEPOINT_FIXTURES_DIR) + "/render/" + name,
                                      actual);
}

TEST(DiagnosisReport, DiskVerdictTextMatchesTheGoldenFile) {
  const auto o = disk_and_lock();
  expect_golden("diagnosis_disk.txt", diagnosis_text(o, analysis::diagnose(o)));
}

TEST(DiagnosisReport, DiskVerdictJsonMatchesTheGoldenFile) {
  const auto o = disk_and_lock();
  expect_golden("diagnosis_disk.json", diagnosis_json(o, analysis::diagnose(o)).dump(2) + "\n");
}

TEST(DiagnosisReport, NoneVerdictTextMatchesTheGoldenFile) {
  const auto o = idle();
  expect_golden("diagnosis_none.txt", diagnosis_text(o, analysis::diagnose(o)));
}

TEST(DiagnosisReport, NoneVerdictJsonMatchesTheGoldenFile) {
  const auto o = idle();
  expect_golden("diagnosis_none.json", diagnosis_json(o, analysis::diagnose(o)).dump(2) + "\n");
}

}  // namespace
}  // namespace chokepoint::render
