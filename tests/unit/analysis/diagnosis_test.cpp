// Verdict rules on recorded-shape observations: each test builds the observation a real scenario
// produces (threads' time splits and system evidence) and checks the verdict, kind and fixes.
#include "analysis/diagnosis.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "analysis/rules/rule.h"
#include "support/thread_account.h"

namespace chokepoint::analysis {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

using model::Resource;

constexpr std::int64_t kWindowNs = 5'000'000'000;

model::ThreadAccount thread(int tid, std::initializer_list<std::pair<Resource, double>> shares,
                            const std::string& detail = "") {
  return test_support::thread_account(tid, shares, detail, kWindowNs);
}

model::Observation base(int cpus = 2) {
  model::Observation o;
  o.target = {"pid", "100", {100}};
  o.duration_ns = kWindowNs;
  o.system.cpus_online = cpus;
  o.system.cpus_allowed = cpus;
  o.system.cpu_utilization = 0.3;
  o.system.mem_available_bytes = 20ULL << 30;
  model::ProcessSummary p;
  p.pid = 100;
  p.name = "svc";
  p.rss_start_bytes = p.rss_end_bytes = p.rss_max_bytes = 50 << 20;
  o.processes.push_back(p);
  return o;
}

// A 2-core host whose cores were all busy, and `n` target threads each on a CPU and queued for
// one the given fractions of the window: what the host's other work left the target is the rest.
model::Observation busy_host(int n, double on_cpu, double cpu_wait) {
  auto o = base(2);
  o.system.cpu_utilization = 1.0;
  for (int i = 0; i < n; ++i)
    o.threads.push_back(thread(i, {{Resource::kOnCpu, on_cpu}, {Resource::kCpuWait, cpu_wait}}));
  return o;
}

const Bottleneck& primary(const Diagnosis& d) {
  return d.bottlenecks.front();
}

// Regression (issue 18): a stopped target read as "none" with no word that it was stopped. Its
// time is idle (no resource helps), the verdict stays none, and a finding names the state.
TEST(Verdict, StoppedTargetIsAFindingNotABottleneck) {
  auto o = base();
  for (int i = 0; i < 3; ++i) {
    auto t = thread(i, {});
    t.held_ns[static_cast<std::size_t>(model::Hold::kStopped)] = kWindowNs;
    o.threads.push_back(t);
  }
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kNone);
  EXPECT_NE(d.headroom.find("held for 100%"), std::string::npos) << d.headroom;
  ASSERT_EQ(d.findings.size(), 1u);
  EXPECT_EQ(d.findings[0].resource, FindingResource::kHeld);
  EXPECT_NE(d.findings[0].message.find("all 3 threads were stopped by a signal"), std::string::npos)
      << d.findings[0].message;
  EXPECT_NE(d.findings[0].hint.find("kill -CONT 100"), std::string::npos) << d.findings[0].hint;
}

// A thread frozen for a moment among busy ones: under 1% of the time, no finding.
TEST(Verdict, BriefHoldIsNoFinding) {
  auto o = base();
  auto t = thread(1, {{Resource::kOnCpu, 0.1}});
  t.held_ns[static_cast<std::size_t>(model::Hold::kFrozen)] = kWindowNs / 200;
  o.threads.push_back(t);
  for (const auto& f : diagnose(o).findings)
    EXPECT_NE(f.resource, FindingResource::kHeld) << f.message;
}

TEST(Verdict, FsyncPerRequestIsDisk) {
  auto o = base();
  for (int i = 0; i < 8; ++i)
    o.threads.push_back(thread(i, {{Resource::kDisk, 0.5}, {Resource::kOnCpu, 0.02}},
                               "fdatasync /data/commit.dat"));
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kDisk);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kFsync);
  EXPECT_NE(primary(d).fixes.front().find("group commit"), std::string::npos);
}

TEST(Verdict, WritesBlockedBehindSyncsAreFsync) {
  // Writers to a file another thread is syncing wait on the inode lock: the sync is the cause.
  auto o = base();
  for (int i = 0; i < 4; ++i)
    o.threads.push_back(thread(i, {{Resource::kDisk, 0.5}}, "write /data/commit.dat"));
  for (int i = 4; i < 6; ++i)
    o.threads.push_back(thread(i, {{Resource::kDisk, 0.5}}, "fdatasync /data/commit.dat"));
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kDisk);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kFsync);
}

// The same when sampling catches the writers mostly in write(2) and the syncs in under a quarter
// of the disk time: writes queued behind syncs of their own file are the syncs' cost. Writes to a
// file nobody syncs stay writes.
TEST(Verdict, WritesQueuedBehindAFewSyncsOfTheirFileAreFsync) {
  auto o = base();
  for (int i = 0; i < 7; ++i)
    o.threads.push_back(thread(i, {{Resource::kDisk, 0.5}}, "write /data/commit.dat"));
  o.threads.push_back(thread(7, {{Resource::kDisk, 0.7}}, "fdatasync /data/commit.dat"));
  auto d = diagnose(o);  // syncs 0.7 of 4.2 thread-windows: 17%
  EXPECT_EQ(d.verdict, Verdict::kDisk);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kFsync);

  auto other = base();
  for (int i = 0; i < 7; ++i)
    other.threads.push_back(thread(i, {{Resource::kDisk, 0.5}}, "write /data/bulk.dat"));
  other.threads.push_back(thread(7, {{Resource::kDisk, 0.7}}, "fdatasync /data/commit.dat"));
  EXPECT_EQ(primary(diagnose(other)).kind, BottleneckKind::kWrite);
}

// Writes to a file opened O_DSYNC (the sampler's "write O_DSYNC /path") are commits: each one
// waits for the device as an fdatasync does, and the fix is to batch them.
TEST(Verdict, ODsyncWritesAreFsync) {
  auto o = base();
  for (int i = 0; i < 8; ++i)
    o.threads.push_back(thread(i, {{Resource::kDisk, 0.6}}, "write O_DSYNC /data/commit.dat"));
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kDisk);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kFsync);
  EXPECT_NE(primary(d).fixes.front().find("one O_DSYNC write"), std::string::npos);
  // A plain write is not a sync, and a path cannot pass for the flag (paths start with '/').
  auto plain = base();
  for (int i = 0; i < 8; ++i)
    plain.threads.push_back(thread(i, {{Resource::kDisk, 0.6}}, "write /data/O_DSYNC x"));
  EXPECT_EQ(primary(diagnose(plain)).kind, BottleneckKind::kWrite);
}

TEST(Verdict, FsyncOfALogFileIsLogging) {
  auto o = base();
  for (int i = 0; i < 8; ++i)
    o.threads.push_back(thread(i, {{Resource::kDisk, 0.4}}, "fdatasync /tmp/lab/access.log"));
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kDisk);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kLog);
  EXPECT_NE(primary(d).fixes.front().find("asynchronously"), std::string::npos);
}

TEST(Verdict, LockHeldAcrossDiskIoIsDisk) {
  auto o = base();
  o.threads.push_back(thread(1, {{Resource::kDisk, 0.9}}, "fdatasync /tmp/lab/access.log"));
  for (int i = 2; i < 9; ++i)
    o.threads.push_back(thread(i, {{Resource::kLock, 0.9}}, "mutex 0x55d0"));
  o.lock_wait_behind_disk_ns = static_cast<std::int64_t>(7 * 0.85 * kWindowNs);
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kDisk);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kLog);
}

TEST(Verdict, LockBehindDiskEvidenceNeverSaysMoreThanAllTheSamples) {
  // Regression (docs/img/report-disk.png, 2026-12-05): the per-tick credit came to more than the
  // lock split, and the evidence said "119% of the samples of threads queued on a lock".
  auto o = base();
  o.threads.push_back(thread(1, {{Resource::kDisk, 0.9}}, "fdatasync /tmp/lab/disk.dat"));
  for (int i = 2; i < 9; ++i)
    o.threads.push_back(thread(i, {{Resource::kLock, 0.5}}, "mutex 0x55d0"));
  o.lock_wait_behind_disk_ns = static_cast<std::int64_t>(7 * 0.5 * 1.19 * kWindowNs);
  auto d = diagnose(o);
  ASSERT_EQ(d.verdict, Verdict::kDisk);
  bool said = false;
  for (const auto& e : primary(d).evidence) {
    if (e.find("of the samples of threads queued on a lock") == std::string::npos) continue;
    said = true;
    EXPECT_EQ(e.rfind("100% of the samples", 0), 0u) << e;
  }
  EXPECT_TRUE(said);
}

TEST(Verdict, LockPartlyBehindDiskIsStillDisk) {
  // The log scenario as measured: a third of the mutex-wait samples see the holder in fsync; the
  // rest of the time the lock is being handed to the next waiter.
  auto o = base();
  o.threads.push_back(thread(1, {{Resource::kDisk, 0.3}}, "fdatasync /tmp/lab/requests.log"));
  for (int i = 2; i < 20; ++i)
    o.threads.push_back(thread(i, {{Resource::kLock, 0.45}}, "mutex 0x55d0"));
  o.lock_wait_behind_disk_ns = static_cast<std::int64_t>(18 * 0.45 * 0.35 * kWindowNs);
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kDisk);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kLog);
  auto lock = std::find_if(d.bottlenecks.begin(), d.bottlenecks.end(),
                           [](const Bottleneck& b) { return b.resource == Verdict::kLock; });
  ASSERT_NE(lock, d.bottlenecks.end());
  EXPECT_EQ(lock->kind, BottleneckKind::kHeldAcrossIo);
  EXPECT_FALSE(lock->significant);
}

TEST(Verdict, LogLockWithFastFsyncIsStillDisk) {
  // Regression, from a real run of the log scenario (docs/verdicts/examples/log.txt before the
  // fix): fast fsyncs (0.08 ms await), so only 17% of the mutex-wait samples caught the holder in
  // fsync and the waiters' own time was 2% CPU, 1% run queue, 1% disk. It read as lock (mutex).
  auto o = base();
  for (int i = 1; i < 33; ++i) {
    o.threads.push_back(thread(i,
                               {{Resource::kLock, 0.37},
                                {Resource::kOnCpu, 0.02},
                                {Resource::kCpuWait, 0.01},
                                {Resource::kDisk, 0.01}},
                               "fsync /tmp/lab/requests.log"));
  }
  o.lock_wait_behind_disk_ns = static_cast<std::int64_t>(32 * 0.37 * 0.17 * kWindowNs);
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kDisk);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kLog);
}

TEST(Verdict, RareCoincidenceWithDiskLeavesTheLock) {
  auto o = base();
  o.threads.push_back(thread(1, {{Resource::kDisk, 0.05}}, "fsync /db"));
  for (int i = 2; i < 10; ++i)
    o.threads.push_back(thread(i, {{Resource::kLock, 0.8}}, "mutex 0x55d0"));
  o.lock_wait_behind_disk_ns = static_cast<std::int64_t>(8 * 0.8 * 0.05 * kWindowNs);
  EXPECT_EQ(diagnose(o).verdict, Verdict::kLock);
}

TEST(Verdict, ContendedMutexIsLockAndNamesIt) {
  auto o = base();
  o.threads.push_back(thread(1, {{Resource::kOnCpu, 0.9}}));
  for (int i = 2; i < 9; ++i)
    o.threads.push_back(
        thread(i, {{Resource::kLock, 0.85}, {Resource::kOnCpu, 0.1}}, "mutex 0x55d0c0a0"));
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kLock);
  EXPECT_NE(primary(d).fixes.front().find("mutex 0x55d0c0a0"), std::string::npos);
}

// The pipeline of issue 15: seven requesters sleep in sem_wait on semaphores of their own that
// one stage thread, on a CPU 97% of the time, posts. Alone the waits read as lock.
// With `durable_stage` the stage writes and fdatasyncs each job instead: in disk 90% of the time.
model::Observation semaphore_pipeline(bool with_graph, bool durable_stage = false) {
  auto o = base(2);
  auto stage = durable_stage ? thread(1, {{Resource::kDisk, 0.9}, {Resource::kOnCpu, 0.07}},
                                      "fdatasync /data/stage.dat")
                             : thread(1, {{Resource::kOnCpu, 0.97}});
  stage.comm = "lab-stage";
  o.threads.push_back(stage);
  model::WaitGraph g;
  for (int i = 2; i < 9; ++i) {
    auto t = thread(i, {{Resource::kLock, 0.85}, {Resource::kOnCpu, 0.01}},
                    "semaphore 0x7f00 (sem_wait)");
    t.comm = "lab-worker";
    const auto object = 0x7f00u + static_cast<std::uint64_t>(i) * 0x100;
    t.lock_objects_ns[{202, object}] = t.split[Resource::kLock];
    o.threads.push_back(t);
    model::WakeEdge e;
    e.waker_pid = e.wakee_pid = 100;
    e.waker_tid = 1;
    e.wakee_tid = i;
    e.syscall_nr = 202;
    e.object = object;
    e.ns = static_cast<std::uint64_t>(t.split[Resource::kLock]);
    e.count = 1000;
    g.edges.push_back(e);
  }
  if (with_graph) o.wait_graph = g;
  return o;
}

TEST(Verdict, AHandoffToOneThreadOnACpuIsSerialCpuNotLock) {
  auto d = diagnose(semaphore_pipeline(true));
  EXPECT_EQ(d.verdict, Verdict::kCpu);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kSerial);
  const auto& ev = primary(d).evidence;
  EXPECT_TRUE(std::any_of(ev.begin(), ev.end(), [](const std::string& e) {
    return e.find(
               "thread 'lab-worker' (tid 2) waits for thread 'lab-stage' (tid 1), which is "
               "on CPU 97% of the time") != std::string::npos;
  })) << ::testing::PrintToString(ev);
  ASSERT_EQ(primary(d).chains.size(), 1u);
  EXPECT_EQ(primary(d).chains[0].root_comm, "lab-stage");
  // The lock rule leaves the hand-off out and says so.
  for (const auto& b : d.bottlenecks) {
    if (b.resource != Verdict::kLock) continue;
    EXPECT_FALSE(b.significant);
    EXPECT_TRUE(std::any_of(b.evidence.begin(), b.evidence.end(), [](const std::string& e) {
      return e.find("100% of lock wait is a hand-off") != std::string::npos;
    })) << ::testing::PrintToString(b.evidence);
  }
}

TEST(Verdict, AHandoffToOneThreadInDiskIsDiskNotLock) {
  auto d = diagnose(semaphore_pipeline(true, true));
  EXPECT_EQ(d.verdict, Verdict::kDisk);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kFsync);
  // The waiters' lock time joins the stage's own disk time.
  EXPECT_GT(primary(d).share, 0.9);
  const auto& ev = primary(d).evidence;
  EXPECT_TRUE(std::any_of(ev.begin(), ev.end(), [](const std::string& e) {
    return e.find(
               "thread 'lab-worker' (tid 2) waits for thread 'lab-stage' (tid 1), which is "
               "in disk 90% of the time (7 threads waited for it") != std::string::npos;
  })) << ::testing::PrintToString(ev);
  ASSERT_EQ(primary(d).chains.size(), 1u);
  EXPECT_EQ(primary(d).chains[0].root_resource, Resource::kDisk);
  for (const auto& b : d.bottlenecks) {
    if (b.resource == Verdict::kLock) {
      EXPECT_FALSE(b.significant);
      EXPECT_TRUE(std::any_of(b.evidence.begin(), b.evidence.end(), [](const std::string& e) {
        return e.find("100% of lock wait is a hand-off, not contention (counted as disk)") !=
               std::string::npos;
      })) << ::testing::PrintToString(b.evidence);
    }
    // Not counted twice: cpu does not take it too.
    if (b.resource == Verdict::kCpu) {
      EXPECT_LT(b.share, 0.1);
    }
  }
}

TEST(Verdict, AStageInDiskThatWaitsForJobsOnALockKeepsItsChain) {
  // The stage also sleeps in sem_wait for the next job: it is one of "the threads that queued on
  // a lock", and its disk time made them look like they take turns doing IO under a lock, which
  // claimed all the lock time before the hand-off (1 run in 13 of the lab's verdict test).
  auto o = semaphore_pipeline(true, true);
  o.threads[0].split[Resource::kLock] = o.threads[0].split[Resource::kOnCpu] / 2;
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kDisk);
  ASSERT_EQ(primary(d).chains.size(), 1u);
  EXPECT_EQ(primary(d).chains[0].root_comm, "lab-stage");
  const auto& ev = primary(d).evidence;
  EXPECT_TRUE(std::any_of(ev.begin(), ev.end(), [](const std::string& e) {
    return e.find("waits for thread 'lab-stage' (tid 1), which is in disk") != std::string::npos;
  })) << ::testing::PrintToString(ev);
}

TEST(Verdict, WithoutTheWaitForGraphTheSameWaitsReadAsLock) {
  auto d = diagnose(semaphore_pipeline(false));
  EXPECT_EQ(d.verdict, Verdict::kLock);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kSemaphore);
}

TEST(Verdict, WaitersWakingEachOtherStayLockWithTheGraph) {
  // A contended mutex: each unlock wakes the next waiter, the holder changes among them.
  auto o = base();
  o.threads.push_back(thread(1, {{Resource::kOnCpu, 0.9}}));
  model::WaitGraph g;
  for (int i = 2; i < 9; ++i) {
    auto t = thread(i, {{Resource::kLock, 0.85}, {Resource::kOnCpu, 0.1}}, "mutex 0x55d0c0a0");
    t.lock_objects_ns[{202, 0x55d0c0a0}] = t.split[Resource::kLock];
    o.threads.push_back(t);
    model::WakeEdge e;
    e.waker_pid = e.wakee_pid = 100;
    e.waker_tid = i == 8 ? 2 : i + 1;
    e.wakee_tid = i;
    e.syscall_nr = 202;
    e.object = 0x55d0c0a0;
    e.ns = static_cast<std::uint64_t>(t.split[Resource::kLock]);
    e.count = 1000;
    g.edges.push_back(e);
  }
  o.wait_graph = g;
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kLock);
  EXPECT_TRUE(primary(d).chains.empty());
}

TEST(Verdict, UpstreamWaitsAreNetwork) {
  auto o = base();
  for (int i = 0; i < 8; ++i)
    o.threads.push_back(thread(i, {{Resource::kNetwork, 0.6}, {Resource::kOnCpu, 0.01}},
                               "read upstream 127.0.0.1:9001"));
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kNetwork);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kUpstream);
}

TEST(Verdict, FullSendBuffersAreBandwidth) {
  auto o = base();
  for (int i = 0; i < 8; ++i)
    o.threads.push_back(
        thread(i, {{Resource::kNetwork, 0.6}}, "sendto client 10.0.0.1:5000 (send buffer full)"));
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kNetwork);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kBandwidth);
}

TEST(Verdict, AllCoresBusyIsSaturatedCpu) {
  auto o = base(2);
  o.system.cpu_utilization = 0.99;
  for (int i = 0; i < 4; ++i)
    o.threads.push_back(thread(i, {{Resource::kOnCpu, 0.48}, {Resource::kCpuWait, 0.5}}));
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kCpu);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kSaturated);
}

TEST(Verdict, WaitingForCoresOthersUseIsContention) {
  // The target uses little CPU itself, but its threads queue for cores: a noisy neighbour.
  auto d = diagnose(busy_host(8, 0.03, 0.06));
  EXPECT_EQ(d.verdict, Verdict::kCpu);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kContended);
  EXPECT_NEAR(primary(d).share, 2.0 / 3.0, 0.01);
}

TEST(Verdict, DemandAboveTheCoresIsSaturatedEvenWhenShared) {
  // The target wants 2.4 cores of 2 (1.2 running, 1.2 queued): it saturates them itself, and
  // the evidence says how much the others took.
  auto d = diagnose(busy_host(4, 0.3, 0.3));
  EXPECT_EQ(d.verdict, Verdict::kCpu);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kSaturated);
  EXPECT_THAT(primary(d).evidence,
              Contains(HasSubstr("other processes kept 0.80 of the 2 cores busy beside it")));
}

TEST(Verdict, QueuedBehindOthersThatHoldMoreOfTheCoresIsContentionWhateverTheDemand) {
  // Beside `stress-ng --cpu 4` (h-flaky11): the target ran 0.3 cores and had 1.62 threads queued,
  // a demand of 1.92 of 2 cores, which read saturated although the hogs held 1.7 of the cores:
  // each queued thread waits longer behind them, so the queue is theirs first.
  auto d = diagnose(busy_host(6, 0.05, 0.27));
  EXPECT_EQ(d.verdict, Verdict::kCpu);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kContended);
  EXPECT_THAT(primary(d).evidence,
              Contains(HasSubstr("other processes kept 1.70 of the 2 cores busy, more than the "
                                 "target's own 0.30")));
}

TEST(Verdict, UnderACpusetTheHostsOtherCoresAreNotWhatTheTargetQueuesFor) {
  // The same threads allowed one core of two: the other core's work is not in its way, so its
  // demand (1.92 of 1 core) saturates the core it has.
  auto o = busy_host(6, 0.05, 0.27);
  o.system.cpus_allowed = 1;
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kCpu);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kSaturated);
}

TEST(Verdict, LockWhoseWaitersWorkInFsyncIsDisk) {
  // No coincidence was sampled, but the threads that queue on the lock do fsyncs, not CPU work.
  auto o = base();
  for (int i = 1; i < 12; ++i) {
    o.threads.push_back(
        thread(i, {{Resource::kLock, 0.5}, {Resource::kDisk, 0.03}, {Resource::kOnCpu, 0.01}},
               "mutex 0x77"));
  }
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kDisk);
}

TEST(Verdict, ListenOverflowsOutrankANoisyNeighbour) {
  auto o = busy_host(8, 0.03, 0.05);
  o.system.listen_overflows = 200;
  o.system.passive_opens = 20;
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kNetwork);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kBacklog);
}

TEST(Verdict, GrowingAnonMemoryIsTheLeakNotMappedFilePages) {
  // The paging scenario maps a file: RSS grows with cached file pages, anonymous memory does not.
  auto o = base(2);
  for (int i = 0; i < 4; ++i) o.threads.push_back(thread(i, {{Resource::kOnCpu, 0.05}}));
  o.processes[0].rss_start_bytes = 10ULL << 20;
  o.processes[0].rss_end_bytes = o.processes[0].rss_max_bytes = 70ULL << 20;
  o.processes[0].anon_start_bytes = 4ULL << 20;
  o.processes[0].anon_end_bytes = o.processes[0].anon_max_bytes = 4ULL << 20;
  EXPECT_EQ(diagnose(o).verdict, Verdict::kNone);
  o.processes[0].anon_end_bytes = o.processes[0].anon_max_bytes = 400ULL << 20;
  EXPECT_EQ(diagnose(o).verdict, Verdict::kMemory);
}

TEST(Verdict, OneBusyThreadIsSerialCpu) {
  auto o = base(2);
  o.threads.push_back(thread(1, {{Resource::kOnCpu, 0.97}}));
  for (int i = 2; i < 9; ++i) o.threads.push_back(thread(i, {{Resource::kOnCpu, 0.01}}));
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kCpu);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kSerial);
  EXPECT_NE(primary(d).fixes.front().find("parallelize"), std::string::npos);
}

TEST(Verdict, SerialNeedsASecondCore) {
  // On one core a busy thread is simply the CPU being used: saturated, not serial.
  auto o = base(1);
  o.system.cpus_allowed = 1;
  o.threads.push_back(thread(1, {{Resource::kOnCpu, 0.97}}));
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kCpu);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kSaturated);
}

TEST(Verdict, ModerateLoadIsNoneWithHeadroom) {
  auto o = base(2);
  for (int i = 0; i < 8; ++i)
    o.threads.push_back(
        thread(i, {{Resource::kOnCpu, 0.05}, {Resource::kDisk, 0.01}}, "write /tmp/x"));
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kNone);
  EXPECT_NE(d.headroom.find("headroom"), std::string::npos);
}

TEST(Verdict, IdleServerIsNone) {
  auto o = base(2);
  for (int i = 0; i < 4; ++i) o.threads.push_back(thread(i, {}));
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kNone);
}

TEST(Verdict, ListenOverflowsAreBacklog) {
  auto o = base(2);
  for (int i = 0; i < 4; ++i) o.threads.push_back(thread(i, {{Resource::kSleep, 0.9}}));
  o.system.listen_overflows = 400;
  o.system.passive_opens = 300;
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kNetwork);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kBacklog);
  EXPECT_NE(primary(d).fixes.front().find("backlog"), std::string::npos);
}

TEST(Verdict, GrowingRssIsALeakWithTimeToLimit) {
  auto o = base(2);
  for (int i = 0; i < 4; ++i) o.threads.push_back(thread(i, {{Resource::kOnCpu, 0.05}}));
  o.processes[0].rss_start_bytes = 100ULL << 20;
  o.processes[0].rss_end_bytes = o.processes[0].rss_max_bytes = 600ULL << 20;
  o.system.mem_available_bytes = 2ULL << 30;
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kMemory);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kLeak);
  bool has_time =
      std::any_of(primary(d).evidence.begin(), primary(d).evidence.end(),
                  [](const std::string& e) { return e.find("reaches") != std::string::npos; });
  EXPECT_TRUE(has_time);
}

// A leak's share is the fraction of the free memory its growth eats per hour, not time: it must
// not print as "of busy time", nor outrank a time bottleneck because the fraction is large.
model::Observation saturated_with_leak(std::uint64_t mem_available_bytes) {
  auto o = base(2);
  o.system.cpu_utilization = 0.99;
  for (int i = 0; i < 4; ++i)
    o.threads.push_back(thread(i, {{Resource::kOnCpu, 0.48}, {Resource::kCpuWait, 0.5}}));
  // +100 MiB in the 5 s window: 20 MiB/s, 72 GiB an hour.
  o.processes[0].anon_start_bytes = 100ULL << 20;
  o.processes[0].anon_end_bytes = o.processes[0].anon_max_bytes = 200ULL << 20;
  o.system.mem_available_bytes = mem_available_bytes;
  return o;
}

TEST(Verdict, ALeakThatLastsHoursRanksAfterTheTimeBottleneck) {
  // 1 TiB free: 20 MiB/s takes 14.6 h. The leak is significant and stays in the list, second.
  auto d = diagnose(saturated_with_leak(1ULL << 40));
  EXPECT_EQ(d.verdict, Verdict::kCpu);
  ASSERT_GE(d.bottlenecks.size(), 2U);
  EXPECT_EQ(d.bottlenecks[1].kind, BottleneckKind::kLeak);
  EXPECT_TRUE(d.bottlenecks[1].significant);
  EXPECT_LT(d.bottlenecks[1].share, 0.1);
  EXPECT_EQ(share_text(d.bottlenecks[1]), "free memory runs out in 14.6 h");
  EXPECT_EQ(share_text(primary(d)).find("of busy time") != std::string::npos, true);
}

TEST(Verdict, ALeaksHourlyFractionIsNotComparedWithATimeShare) {
  // Disk is 40% of busy time; the leak eats 2/3 of the free memory an hour (1.5 h to the limit).
  // 0.67 > 0.4 would put the leak first if the two were compared; the disk comes first.
  auto o = base(2);
  for (int i = 0; i < 4; ++i) {
    o.threads.push_back(
        thread(i, {{Resource::kOnCpu, 0.3}, {Resource::kDisk, 0.2}, {Resource::kIdle, 0.5}},
               "fdatasync /data/log"));
  }
  o.processes[0].anon_start_bytes = 100ULL << 20;
  o.processes[0].anon_end_bytes = o.processes[0].anon_max_bytes = 200ULL << 20;
  o.system.mem_available_bytes = 105ULL << 30;
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kDisk);
  ASSERT_GE(d.bottlenecks.size(), 2U);
  EXPECT_EQ(d.bottlenecks[1].kind, BottleneckKind::kLeak);
  EXPECT_GT(d.bottlenecks[1].share, primary(d).share);
  EXPECT_EQ(share_text(d.bottlenecks[1]), "free memory runs out in 90 min");
}

TEST(Verdict, ALeakThatRunsOutWithinTheHourComesFirst) {
  // 20 GiB free: 20 MiB/s takes 17 min, before any CPU fix pays off.
  auto d = diagnose(saturated_with_leak(20ULL << 30));
  EXPECT_EQ(d.verdict, Verdict::kMemory);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kLeak);
  ASSERT_TRUE(primary(d).limit_in_s.has_value());
  EXPECT_NEAR(*primary(d).limit_in_s, 1024.0, 1.0);
  EXPECT_EQ(share_text(primary(d)), "free memory runs out in 17 min");
  // Its confidence is not cut by a margin against a time share it cannot be compared with.
  EXPECT_DOUBLE_EQ(primary(d).confidence, 0.8);
}

TEST(Verdict, ShareTextSaysWhatEachShareMeasures) {
  EXPECT_EQ(share_text(BottleneckKind::kFsync, 0.42), "42% of busy time");
  EXPECT_EQ(share_text(BottleneckKind::kBacklog, 0.03), "3% of connection attempts dropped");
  EXPECT_EQ(share_text(BottleneckKind::kLeak, 0.25), "eats 25% of the free memory per hour");
  EXPECT_EQ(share_text(BottleneckKind::kLeak, 1.0), "eats all the free memory within the hour");
  EXPECT_EQ(share_basis_name(share_basis(BottleneckKind::kLeak)), "free_memory_per_hour");
  EXPECT_EQ(kind_from_name("held-across-io"), BottleneckKind::kHeldAcrossIo);
  EXPECT_EQ(kind_from_name("busy"), BottleneckKind::kBusy);
  EXPECT_FALSE(kind_from_name("leaky").has_value());
}

TEST(Verdict, PlateauedRssIsNoLeak) {
  auto o = base(2);
  for (int i = 0; i < 4; ++i) o.threads.push_back(thread(i, {{Resource::kOnCpu, 0.05}}));
  o.processes[0].rss_start_bytes = 100ULL << 20;
  o.processes[0].rss_end_bytes = 102ULL << 20;
  o.processes[0].rss_max_bytes = 102ULL << 20;
  EXPECT_EQ(diagnose(o).verdict, Verdict::kNone);
}

TEST(Verdict, MajorFaultsArePaging) {
  auto o = base(2);
  for (int i = 0; i < 4; ++i) {
    auto t = thread(i, {{Resource::kMemory, 0.6}, {Resource::kOnCpu, 0.1}}, "major page fault");
    t.majflt = 2000;
    o.threads.push_back(t);
  }
  auto d = diagnose(o);
  EXPECT_EQ(d.verdict, Verdict::kMemory);
  EXPECT_EQ(primary(d).kind, BottleneckKind::kPaging);
}

TEST(Verdict, PagingEvidenceCarriesTaskstatsDelays) {
  auto o = base(2);
  for (int i = 0; i < 4; ++i) {
    auto t = thread(i, {{Resource::kMemory, 0.6}, {Resource::kOnCpu, 0.1}}, "major page fault");
    t.majflt = 2000;
    o.threads.push_back(t);
  }
  auto& p = o.processes.front();
  p.has_delays = true;
  p.delay_swapin_ns = 250'000'000;
  p.delay_reclaim_ns = 1'500'000'000;
  p.delay_thrashing_ns = 3'000'000'000;
  auto d = diagnose(o);
  ASSERT_EQ(d.verdict, Verdict::kMemory);
  const auto& ev = primary(d).evidence;
  EXPECT_NE(std::find(ev.begin(), ev.end(),
                      "delay accounting: the target's threads stalled 0.25 s in swap-in, 1.50 s in "
                      "direct reclaim, 3.00 s thrashing (refaults) and 0.00 s in compaction "
                      "(taskstats, exact)"),
            ev.end());
  // Without taskstats data the line is left out rather than shown as zeros.
  p.has_delays = false;
  p.delay_swapin_ns = p.delay_reclaim_ns = p.delay_thrashing_ns = 0;
  const Diagnosis without = diagnose(o);
  for (const auto& line : primary(without).evidence) {
    EXPECT_EQ(line.find("delay accounting"), std::string::npos) << line;
  }
}

TEST(Verdict, TiesFollowTheLatencyHierarchy) {
  auto o = base(2);
  for (int i = 0; i < 4; ++i) o.threads.push_back(thread(i, {{Resource::kDisk, 0.3}}, "fsync /db"));
  for (int i = 4; i < 8; ++i)
    o.threads.push_back(thread(i, {{Resource::kNetwork, 0.31}}, "read upstream 1.2.3.4:5"));
  EXPECT_EQ(diagnose(o).verdict, Verdict::kNetwork);
}

TEST(Verdict, SharesSumToOne) {
  auto o = base(2);
  o.threads.push_back(
      thread(1, {{Resource::kDisk, 0.3}, {Resource::kOnCpu, 0.2}, {Resource::kLock, 0.1}}, "x"));
  auto d = diagnose(o);
  double sum = 0;
  for (std::size_t i = 0; i < model::kResourceCount; ++i)
    sum += d.split.share(static_cast<Resource>(i));
  EXPECT_NEAR(sum, 1.0, 1e-9);
}

TEST(Findings, FdsNearTheLimitAreReported) {
  auto o = base(2);
  o.threads.push_back(thread(1, {}));
  o.processes[0].open_fds = 950;
  o.processes[0].fd_soft_limit = 1024;
  auto d = diagnose(o);
  ASSERT_FALSE(d.findings.empty());
  EXPECT_EQ(d.findings[0].resource, FindingResource::kFds);
  EXPECT_NE(d.findings[0].hint.find("raise the limit"), std::string::npos);
}

// An idle hand-off goes to the rule of the state its root worked in: a root thread's own state
// (run-queue time is cpu's), a group of short-lived threads' largest working state (idle and
// sleep left out), none for a root that was idle or asleep. Before, only a group mostly on a CPU
// was shown (by cpu), so a joiner's chain to threads that queued on a mutex was lost.
TEST(HandoffResource, IsTheStateTheRootWorkedIn) {
  using rules::handoff_resource;
  model::Handoff root;
  root.chain.root_resource = Resource::kCpuWait;
  EXPECT_EQ(handoff_resource(root), Resource::kOnCpu);
  root.chain.root_resource = Resource::kDisk;
  EXPECT_EQ(handoff_resource(root), Resource::kDisk);
  root.chain.root_resource = Resource::kIdle;
  EXPECT_EQ(handoff_resource(root), std::nullopt);
  root.chain.root_resource = std::nullopt;
  EXPECT_EQ(handoff_resource(root), std::nullopt);

  model::Handoff group;
  group.chain.root_short_lived = 300;
  group.chain.root_resource = Resource::kIdle;  // their largest state, a wait before the join
  group.chain.root_split[Resource::kIdle] = 50;
  group.chain.root_split[Resource::kLock] = 35;
  group.chain.root_split[Resource::kOnCpu] = 20;
  group.chain.root_split[Resource::kCpuWait] = 10;
  EXPECT_EQ(handoff_resource(group), Resource::kLock);  // 35 against 20 + 10
  group.chain.root_split[Resource::kCpuWait] = 20;
  EXPECT_EQ(handoff_resource(group), Resource::kOnCpu);  // 40 against 35
  model::Handoff idle_group;
  idle_group.chain.root_short_lived = 3;
  idle_group.chain.root_split[Resource::kIdle] = 10;
  EXPECT_EQ(handoff_resource(idle_group), std::nullopt);
}

}  // namespace
}  // namespace chokepoint::analysis
