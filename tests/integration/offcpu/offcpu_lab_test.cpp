// The off-CPU tracer and its profile on chokepoint-lab under wrk load (see lab/README.md):
// - lock: workers queue on LabStore::update's mutex; the futex waits must be in LabStore::update,
//   and their wakers (the unlock) in LabStore::update too.
// - disk: every request appends and fdatasyncs in lab_commit_record; the fdatasync waits must be
//   under lab_commit_record.
// Needs root, BPF and wrk; skips with the reason otherwise. About 4 s per test.

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "collect/bpf/offcpu_profile.h"
#include "collect/bpf/offcpu_tracer.h"
#include "support/background.h"
#include "support/lab_process.h"
#include "support/offcpu_support.h"
#include "symbolize/symbolizer.h"

namespace chokepoint::collect::bpf {
namespace {

using test_support::Background;
using test_support::LabProcess;

struct Traced {
  profile::Profile blocked;      // WakerLayout::kNone
  profile::Profile with_wakers;  // WakerLayout::kAppended
};

// Starts the lab with `lab_args`, drives it with wrk `wrk_args` and traces it for 2.5 s.
// Sets *skip to the reason when this machine cannot run the test.
std::optional<Traced> trace_lab(const std::vector<std::string>& lab_args,
                                std::vector<std::string> wrk_args, std::string* skip) {
  if (std::string why = test_support::offcpu_unavailable(); !why.empty()) {
    *skip = why;
    return std::nullopt;
  }
  if (::access("/usr/bin/wrk", X_OK) != 0) {
    *skip = "needs wrk (scripts/setup)";
    return std::nullopt;
  }
  auto lab = LabProcess::start(lab_args);
  EXPECT_TRUE(lab) << lab.error().message;
  if (!lab) return std::nullopt;
  auto sym = symbolize::Symbolizer::create();
  EXPECT_TRUE(sym) << sym.error().message;
  if (!sym) return std::nullopt;
  EXPECT_TRUE((*sym)->attach(lab->pid()));

  OffCpuOptions o;
  o.tgids = {lab->pid()};
  auto tracer = OffCpuTracer::create(o);
  EXPECT_TRUE(tracer) << tracer.error().message << "\n" << tracer.error().hint;
  if (!tracer) return std::nullopt;

  wrk_args.push_back("-d4s");
  wrk_args.push_back("http://127.0.0.1:" + std::to_string(lab->port()) + "/");
  auto load = Background::start("wrk", wrk_args);
  EXPECT_TRUE(load) << load.error().message;
  if (!load) return std::nullopt;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // past connection setup
  EXPECT_TRUE((*tracer)->start());
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  auto result = (*tracer)->stop();
  EXPECT_TRUE(result) << result.error().message;
  if (!result) return std::nullopt;

  Traced t;
  OffCpuProfileOptions po;
  po.attached_pids = {lab->pid()};
  t.blocked = to_profile(*result, **sym, po);
  po.wakers = WakerLayout::kAppended;
  t.with_wakers = to_profile(*result, **sym, po);
  return t;
}

bool has_frame(const profile::Stack& s, const std::string& needle, std::size_t from = 0,
               std::size_t to = std::string::npos) {
  for (std::size_t i = from; i < s.frames.size() && i < to; ++i) {
    if (s.frames[i].name.find(needle) != std::string::npos) return true;
  }
  return false;
}

std::size_t marker_index(const profile::Stack& s) {
  for (std::size_t i = 0; i < s.frames.size(); ++i) {
    if (s.frames[i].name == kWokenByMarker) return i;
  }
  return s.frames.size();
}

std::string describe(const profile::Stack& s) {
  std::string out;
  for (const auto& f : s.frames) out += "\n    " + f.name;
  return out;
}

TEST(OffCpuLab, LockWaitsNameTheFunctionThatTakesTheLockAndTheHolder) {
  std::string skip;
  auto t = trace_lab(
      {"--scenario", "lock", "--port", "0"},
      {"-t1", "-c16", "-s", std::string(CHOKEPOINT_SOURCE_DIR) + "/bench/lab/keys_random.lua"},
      &skip);
  if (!skip.empty()) GTEST_SKIP() << skip;
  ASSERT_TRUE(t);

  // Futex waits of the lab's threads: the mutex, and (elsewhere) idle pool waits.
  std::uint64_t futex_ns = 0, in_update_ns = 0;
  const profile::Stack* heaviest_futex = nullptr;
  for (const auto& s : t->blocked.stacks) {
    if (!has_frame(s, "futex_wait")) continue;
    futex_ns += s.value;
    if (has_frame(s, "LabStore::update")) in_update_ns += s.value;
    if (!heaviest_futex || s.value > heaviest_futex->value) heaviest_futex = &s;
  }
  ASSERT_GT(futex_ns, 0u) << "no futex waits traced";
  EXPECT_GE(static_cast<double>(in_update_ns), 0.8 * static_cast<double>(futex_ns))
      << "only " << in_update_ns << " of " << futex_ns
      << " ns of futex waits are under LabStore::update; heaviest:" << describe(*heaviest_futex);

  // The lock's waiters are woken by the holder's unlock, in LabStore::update too.
  std::uint64_t lock_ns = 0, woken_by_update_ns = 0;
  for (const auto& s : t->with_wakers.stacks) {
    std::size_t m = marker_index(s);
    if (!has_frame(s, "LabStore::update", 0, m) || !has_frame(s, "futex_wait", 0, m)) continue;
    lock_ns += s.value;
    if (has_frame(s, "LabStore::update", m)) woken_by_update_ns += s.value;
  }
  EXPECT_GE(static_cast<double>(woken_by_update_ns), 0.8 * static_cast<double>(lock_ns))
      << woken_by_update_ns << " of " << lock_ns
      << " ns of lock waits were woken from LabStore::update";
}

TEST(OffCpuLab, DiskWaitsNameTheFunctionThatCallsFdatasync) {
  std::string skip;
  auto t = trace_lab({"--scenario", "disk", "--port", "0"}, {"-t1", "-c16"}, &skip);
  if (!skip.empty()) GTEST_SKIP() << skip;
  ASSERT_TRUE(t);

  std::uint64_t sync_ns = 0, in_commit_ns = 0;
  const profile::Stack* heaviest = nullptr;
  for (const auto& s : t->blocked.stacks) {
    if (!has_frame(s, "fdatasync")) continue;
    sync_ns += s.value;
    if (has_frame(s, "lab_commit_record")) in_commit_ns += s.value;
    if (!heaviest || s.value > heaviest->value) heaviest = &s;
  }
  ASSERT_GT(sync_ns, 0u) << "no fdatasync waits traced";
  EXPECT_GE(static_cast<double>(in_commit_ns), 0.9 * static_cast<double>(sync_ns))
      << "only " << in_commit_ns << " of " << sync_ns
      << " ns of fdatasync waits are under lab_commit_record; heaviest:" << describe(*heaviest);
  // Disk waits are long: the lab's 16 requests in flight spend most of the 2.5 s blocked.
  EXPECT_GT(sync_ns, 1'000'000'000u);
  EXPECT_EQ(t->blocked.lost_samples, 0u);
}

}  // namespace
}  // namespace chokepoint::collect::bpf
