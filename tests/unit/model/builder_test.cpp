#include "model/builder.h"

#include <gtest/gtest.h>
#include <linux/futex.h>
#include <sys/syscall.h>

#include <stdexcept>
#include <string>
#include <tuple>

#include "support/socket_sample.h"

namespace chokepoint::model {
namespace {

constexpr std::int64_t kMs = 1'000'000;

WaitObservation in_syscall(long nr, FdRole role = FdRole::kUnknown, std::string detail = "") {
  WaitObservation w;
  w.state = 'S';
  w.where = SyscallWhere::kInSyscall;
  w.syscall_nr = nr;
  w.fd_role = role;
  w.fd_detail = std::move(detail);
  return w;
}

WaitObservation mutex_wait() {
  WaitObservation w = in_syscall(SYS_futex);
  w.args = {0x1000, FUTEX_WAIT_PRIVATE, 2, 0, 0, 0};
  return w;
}

ThreadSample first(int tid, std::int64_t at, WaitObservation wait) {
  ThreadSample s;
  s.key = {100, tid, 7};
  s.at_ns = at;
  s.prev_poll_ns = at;
  s.first = true;
  s.comm = "worker";
  s.process_name = "svc";
  s.has_stat = true;
  s.wait = std::move(wait);
  return s;
}

ThreadSample poll(int tid, std::int64_t at, std::int64_t prev, std::uint64_t run_ns,
                  WaitObservation wait) {
  ThreadSample s;
  s.key = {100, tid, 7};
  s.at_ns = at;
  s.prev_poll_ns = prev;
  s.run_ns = run_ns;
  s.has_stat = true;
  s.wait = std::move(wait);
  return s;
}

RecordingInfo info() {
  RecordingInfo i;
  i.target = {"pid", "100", {}};
  i.interval_ns = 100 * kMs;
  return i;
}

std::int64_t detail_ns(const ThreadAccount& a, Resource r, const std::string& detail) {
  const auto& d = a.details[static_cast<std::size_t>(r)];
  auto it = d.find(detail);
  return it == d.end() ? 0 : it->second;
}

// The same threads with the same split and details, in the same order.
void expect_same_threads(const Observation& got, const Observation& want) {
  ASSERT_EQ(got.threads.size(), want.threads.size());
  for (std::size_t i = 0; i < want.threads.size(); ++i) {
    EXPECT_EQ(got.threads[i].key, want.threads[i].key);
    EXPECT_EQ(got.threads[i].split.ns, want.threads[i].split.ns);
    EXPECT_EQ(got.threads[i].details, want.threads[i].details);
  }
}

TEST(BuildObservation, QuietTimeStaysInTheLastWaitAndTheRunIntervalTakesTheNewOne) {
  // Asleep from 0; the polls until 800 ms found it unchanged (no records); at 1000 ms it had run
  // 100 ms and sat in fdatasync.
  std::vector<Tick> ticks(3);
  ticks[0].at_ns = 0;
  ticks[0].new_pids = {100};
  ticks[0].threads.push_back(first(1, 0, in_syscall(SYS_nanosleep)));
  ticks[1].at_ns = 1000 * kMs;
  ticks[1].threads.push_back(poll(1, 1000 * kMs, 800 * kMs, 100 * kMs,
                                  in_syscall(SYS_fdatasync, FdRole::kRegularFile, "/data/log")));
  ticks[2].at_ns = 1500 * kMs;
  ticks[2].closing = true;
  Observation obs = build_observation(info(), ticks);
  ASSERT_EQ(obs.threads.size(), 1u);
  const ThreadAccount& a = obs.threads[0];
  EXPECT_EQ(obs.duration_ns, 1500 * kMs);
  EXPECT_EQ(obs.target.pids, std::vector<int>{100});
  EXPECT_EQ(a.split.total_ns(), 1500 * kMs);
  EXPECT_EQ(a.split[Resource::kSleep], 800 * kMs);
  EXPECT_EQ(a.split[Resource::kOnCpu], 100 * kMs);
  // The run interval's off-CPU part and the quiet time after it: the disk sync.
  EXPECT_EQ(a.split[Resource::kDisk], 600 * kMs);
  EXPECT_EQ(detail_ns(a, Resource::kDisk, "fdatasync /data/log"), 600 * kMs);
  EXPECT_EQ(a.comm, "worker");
  EXPECT_EQ(a.process_name, "svc");
}

// Issue 16: a pool thread between a parked wait (condvar: idle) and fdatasync (disk), whose first
// interval is the task iterator's 1 s gap. Its closing read found it in fdatasync; before the
// ratio estimator that one read made all 950 ms of the interval's off-CPU time disk (1040 ms of
// disk in all, against the 2 disk reads of 5), and an interval closed by a running read took the
// last wait seen.
TEST(BuildObservation, TimeBetweenReadsIsDividedByTheWindowsReadsNotByTheLastOne) {
  WaitObservation condvar = in_syscall(SYS_futex);
  condvar.args = {0x2000, FUTEX_WAIT_BITSET_PRIVATE, 0, 0, 0, 0};
  const WaitObservation fdatasync = in_syscall(SYS_fdatasync, FdRole::kRegularFile, "/data/log");
  WaitObservation running;
  running.state = 'R';
  running.where = SyscallWhere::kRunning;
  std::vector<Tick> ticks(7);
  ticks[0].at_ns = 0;
  ticks[0].new_pids = {100};
  ticks[0].threads.push_back(first(1, 0, condvar));
  // 1000 ms later: ran 50 ms, in fdatasync now.
  ticks[1].at_ns = 1000 * kMs;
  ticks[1].threads.push_back(poll(1, 1000 * kMs, 0, 50 * kMs, fdatasync));
  // Then every 100 ms it ran 10 ms: condvar, running, condvar, fdatasync, condvar.
  const WaitObservation seen[] = {condvar, running, condvar, fdatasync, condvar};
  for (int i = 0; i < 5; ++i) {
    const std::int64_t at = (1100 + 100 * i) * kMs;
    ticks[2 + i].at_ns = at;
    ticks[2 + i].threads.push_back(
        poll(1, at, at - 100 * kMs, static_cast<std::uint64_t>(50 + 10 * (i + 1)) * kMs, seen[i]));
  }
  ticks[6].closing = true;
  Observation obs = build_observation(info(), ticks);
  ASSERT_EQ(obs.threads.size(), 1u);
  const ThreadAccount& a = obs.threads[0];
  EXPECT_EQ(a.split.total_ns(), 1500 * kMs);
  EXPECT_EQ(a.split[Resource::kOnCpu], 100 * kMs);
  // 950 + 5 * 90 ms between reads, 2 of the 5 off-CPU reads in fdatasync, 3 on the condvar.
  EXPECT_EQ(a.split[Resource::kDisk], 560 * kMs);
  EXPECT_EQ(a.split[Resource::kIdle], 840 * kMs);
  EXPECT_EQ(detail_ns(a, Resource::kDisk, "fdatasync /data/log"), 560 * kMs);
  EXPECT_EQ(detail_ns(a, Resource::kIdle, "condvar 0x2000"), 840 * kMs);
}

// A thread whose reads found it running until late in the window: its time between those reads
// went to idle, "short waits between samples", though every wait a read saw was the mutex.
TEST(BuildObservation, RunningReadsDoNotMakeIdleOfAThreadSeenOnlyOnAMutex) {
  WaitObservation running;
  running.state = 'R';
  running.where = SyscallWhere::kRunning;
  std::vector<Tick> ticks(5);
  ticks[0].at_ns = 0;
  ticks[0].new_pids = {100};
  ticks[0].threads.push_back(first(1, 0, running));
  ticks[1].at_ns = 1000 * kMs;
  ticks[1].threads.push_back(poll(1, 1000 * kMs, 0, 300 * kMs, running));
  ticks[2].at_ns = 1100 * kMs;
  ticks[2].threads.push_back(poll(1, 1100 * kMs, 1000 * kMs, 320 * kMs, mutex_wait()));
  ticks[3].at_ns = 1200 * kMs;
  ticks[3].threads.push_back(poll(1, 1200 * kMs, 1100 * kMs, 340 * kMs, running));
  ticks[4].at_ns = 1300 * kMs;
  ticks[4].threads.push_back(poll(1, 1300 * kMs, 1200 * kMs, 360 * kMs, mutex_wait()));
  ticks[4].closing = true;
  Observation obs = build_observation(info(), ticks);
  ASSERT_EQ(obs.threads.size(), 1u);
  const ThreadAccount& a = obs.threads[0];
  EXPECT_EQ(a.split[Resource::kOnCpu], 360 * kMs);
  EXPECT_EQ(a.split[Resource::kLock], 940 * kMs);
  EXPECT_EQ(a.split[Resource::kIdle], 0);
  EXPECT_EQ(detail_ns(a, Resource::kLock, "mutex 0x1000"), 940 * kMs);
  EXPECT_TRUE(a.details[static_cast<std::size_t>(Resource::kIdle)].empty());
}

TEST(BuildObservation, KernelTimeInsideADiskSyncIsDiskWork) {
  // In fdatasync at both ends of an interval in which it ran 40 ms, three quarters in the kernel.
  std::vector<Tick> ticks(3);
  const auto sync = in_syscall(SYS_fdatasync, FdRole::kRegularFile, "/db");
  ticks[0].threads.push_back(first(1, 0, sync));
  ticks[1].at_ns = 100 * kMs;
  ticks[1].threads.push_back(poll(1, 100 * kMs, 0, 10 * kMs, sync));
  ticks[2].at_ns = 200 * kMs;
  auto p = poll(1, 200 * kMs, 100 * kMs, 50 * kMs, sync);
  p.utime_ns = 10 * kMs;
  p.stime_ns = 30 * kMs;
  ticks[2].threads.push_back(p);
  Observation obs = build_observation(info(), ticks);
  ASSERT_EQ(obs.threads.size(), 1u);
  EXPECT_EQ(obs.threads[0].kernel_work_ns, 30 * kMs);
  EXPECT_EQ(obs.threads[0].split[Resource::kOnCpu], 10 * kMs + 10 * kMs);
  EXPECT_EQ(obs.threads[0].split.total_ns(), 200 * kMs);
}

// The fsync scenario's thread: caught blocked in write(2) to an O_DSYNC file at both ends of an
// interval in which it ran 40 ms, three quarters in the kernel (journal work inside the write).
TEST(BuildObservation, KernelTimeInsideAFileWriteItWasBlockedInIsDiskWork) {
  for (const FdRole role : {FdRole::kRegularFile, FdRole::kSocketServer}) {
    std::vector<Tick> ticks(3);
    auto write = in_syscall(SYS_write, role, "/data/dsync.dat");
    write.state = 'D';
    ticks[0].threads.push_back(first(1, 0, write));
    ticks[1].at_ns = 100 * kMs;
    ticks[1].threads.push_back(poll(1, 100 * kMs, 0, 10 * kMs, write));
    ticks[2].at_ns = 200 * kMs;
    auto p = poll(1, 200 * kMs, 100 * kMs, 50 * kMs, write);
    p.utime_ns = 10 * kMs;
    p.stime_ns = 30 * kMs;
    ticks[2].threads.push_back(p);
    Observation obs = build_observation(info(), ticks);
    ASSERT_EQ(obs.threads.size(), 1u);
    if (role == FdRole::kRegularFile) {
      EXPECT_EQ(obs.threads[0].kernel_work_ns, 30 * kMs);
      EXPECT_EQ(obs.threads[0].split[Resource::kOnCpu], 10 * kMs + 10 * kMs);
      EXPECT_EQ(detail_ns(obs.threads[0], Resource::kDisk, "write /data/dsync.dat"), 180 * kMs);
    } else {
      // A client's socket: a full send buffer is network, and the CPU stays on_cpu.
      EXPECT_EQ(obs.threads[0].kernel_work_ns, 0);
      EXPECT_EQ(obs.threads[0].split[Resource::kOnCpu], 50 * kMs);
    }
    EXPECT_EQ(obs.threads[0].split.total_ns(), 200 * kMs);
  }
}

// Thread 1 goes into fsync, thread 2 queues on a mutex, for two ticks; then the closing reads.
std::vector<Tick> lock_behind_disk_ticks() {
  std::vector<Tick> ticks(4);
  ticks[0].threads = {first(1, 0, in_syscall(SYS_nanosleep)),
                      first(2, 0, in_syscall(SYS_nanosleep))};
  ticks[1].at_ns = 100 * kMs;
  ticks[1].lock_credit_ns = 100 * kMs;
  ticks[1].threads = {
      poll(1, 100 * kMs, 0, 1 * kMs, in_syscall(SYS_fsync, FdRole::kRegularFile, "/db")),
      poll(2, 100 * kMs, 0, 1 * kMs, mutex_wait())};
  ticks[2].at_ns = 200 * kMs;
  ticks[2].lock_credit_ns = 100 * kMs;  // nothing moved: both still where they were
  ticks[3].at_ns = 250 * kMs;           // closing reads: no credit
  ticks[3].closing = true;
  return ticks;
}

TEST(BuildObservation, LockWaitBehindADiskSyncIsCreditedPerTick) {
  Observation obs = build_observation(info(), lock_behind_disk_ticks());
  EXPECT_EQ(obs.lock_wait_behind_disk_ns, 200 * kMs);
  ASSERT_EQ(obs.threads.size(), 2u);
  EXPECT_EQ(detail_ns(obs.threads[1], Resource::kLock, "mutex 0x1000"), 249 * kMs);
}

TEST(BuildObservation, AnEndedThreadIsAccountedUntilItsLastRead) {
  std::vector<Tick> ticks(3);
  ticks[0].threads = {first(1, 0, in_syscall(SYS_nanosleep))};
  ticks[1].at_ns = 500 * kMs;
  ticks[1].ended = {{100, 1, 300 * kMs}};
  ticks[2].at_ns = 1000 * kMs;
  Observation obs = build_observation(info(), ticks);
  ASSERT_EQ(obs.threads.size(), 1u);
  EXPECT_EQ(obs.threads[0].split.total_ns(), 300 * kMs);
  EXPECT_EQ(obs.threads[0].split[Resource::kSleep], 300 * kMs);
}

// A thread read under a new name (pthread_setname_np, prctl) goes by it from then on; a main
// thread's new name (an exec) is its process's, for its other threads too. A window that ends
// before a rename keeps the name of its time.
TEST(BuildObservation, ARenamedThreadAndAnExecdProcessGoByTheirNewNames) {
  std::vector<Tick> ticks(3);
  ThreadSample main_first = first(100, 0, in_syscall(SYS_nanosleep));
  main_first.comm = "svc";
  ProcessSample p;
  p.pid = 100;
  p.name = "svc";
  ticks[0].threads = {main_first, first(101, 0, in_syscall(SYS_nanosleep))};
  ticks[0].processes = {p};
  ticks[1].at_ns = 500 * kMs;
  ThreadSample worker = poll(101, 500 * kMs, 400 * kMs, 10 * kMs, in_syscall(SYS_nanosleep));
  worker.comm = "io-worker";
  ticks[1].threads = {worker};
  ticks[2].at_ns = 1000 * kMs;
  ThreadSample main = poll(100, 1000 * kMs, 900 * kMs, 10 * kMs, in_syscall(SYS_nanosleep));
  main.comm = "postgres";
  p.at_ns = 1000 * kMs;
  p.name.reset();  // a process's name is given at its first read only
  ticks[2].threads = {main};
  ticks[2].processes = {p};
  // A later sample without a name keeps the one it has.
  ticks.push_back(Tick{});
  ticks[3].at_ns = 1500 * kMs;
  ticks[3].threads = {poll(101, 1500 * kMs, 1400 * kMs, 20 * kMs, in_syscall(SYS_nanosleep))};

  Observation obs = build_observation(info(), ticks);
  ASSERT_EQ(obs.threads.size(), 2u);
  EXPECT_EQ(obs.threads[0].comm, "postgres");
  EXPECT_EQ(obs.threads[0].process_name, "postgres");
  EXPECT_EQ(obs.threads[1].comm, "io-worker");
  EXPECT_EQ(obs.threads[1].process_name, "postgres");
  ASSERT_EQ(obs.processes.size(), 1u);
  EXPECT_EQ(obs.processes[0].name, "postgres");

  Observation early = build_observation(info(), ticks, Window{0, 400 * kMs});
  ASSERT_EQ(early.threads.size(), 2u);
  EXPECT_EQ(early.threads[0].comm, "svc");
  EXPECT_EQ(early.threads[1].comm, "worker");
  EXPECT_EQ(early.threads[1].process_name, "svc");
}

TEST(BuildObservation, AWindowCutsQuietTimeAndSkipsWhatCameBefore) {
  std::vector<Tick> ticks(4);
  ticks[0].threads = {first(1, 0, in_syscall(SYS_nanosleep))};
  ticks[1].at_ns = 1000 * kMs;
  ticks[1].threads = {poll(1, 1000 * kMs, 900 * kMs, 50 * kMs,
                           in_syscall(SYS_fdatasync, FdRole::kRegularFile, "/db"))};
  ticks[2].at_ns = 2000 * kMs;
  ticks[2].threads = {poll(1, 2000 * kMs, 1900 * kMs, 80 * kMs, in_syscall(SYS_nanosleep))};
  ticks[3].at_ns = 3000 * kMs;
  Window w{1000 * kMs, 2500 * kMs};
  Observation obs = build_observation(info(), ticks, w);
  EXPECT_EQ(obs.duration_ns, 1500 * kMs);
  ASSERT_EQ(obs.threads.size(), 1u);
  const ThreadAccount& a = obs.threads[0];
  EXPECT_EQ(a.split.total_ns(), 1500 * kMs);
  // 1000-1900 quiet in fdatasync; 1900-2000 ran 30 ms, then asleep until the window's end.
  EXPECT_EQ(a.split[Resource::kDisk], 900 * kMs);
  EXPECT_EQ(a.split[Resource::kOnCpu], 30 * kMs);
  EXPECT_EQ(a.split[Resource::kSleep], 570 * kMs);
}

TEST(BuildObservation, ProcessAndSystemSummariesAreDeltasOverTheWindow) {
  std::vector<Tick> ticks(2);
  ProcessSample p0;
  p0.pid = 100;
  p0.name = "svc";
  p0.io = ProcessIo{1000, 5000, 10};
  p0.has_status = true;
  p0.rss_bytes = 10 << 20;
  ticks[0].processes = {p0};
  ticks[0].new_pids = {100};
  ticks[0].threads = {first(1, 0, in_syscall(SYS_nanosleep))};
  SystemSample s0;
  s0.cpus_online = 4;
  s0.has_cpu = true;
  s0.cpu_total_ns = 1000;
  s0.cpu_busy_ns = 100;
  s0.disks = std::vector<DiskSample>{{"vda", 0, 0, 0, 0, 0, 0, 0, 0, std::nullopt}};
  ticks[0].system = s0;
  ticks[0].runnable = 2;
  ticks[1].at_ns = 2000 * kMs;
  ProcessSample p1;
  p1.pid = 100;
  p1.at_ns = 2000 * kMs;
  p1.io = ProcessIo{1000, 9000, 30};
  p1.has_status = true;
  p1.rss_bytes = 12 << 20;
  p1.open_fds = 7;
  p1.fd_soft_limit = 1024;
  ticks[1].processes = {p1};
  SocketSample up =
      test_support::socket_sample(100, 5, SocketState::kEstablished, {"", 0, "127.0.0.1", 9001});
  up.rtt_us = 300;
  ticks[1].sockets = {up};
  SystemSample s1 = s0;
  s1.cpu_total_ns = 3000;
  s1.cpu_busy_ns = 1100;
  s1.disks = std::vector<DiskSample>{{"vda", 10, 30, 0, 0, 0, 0, 1000 * kMs, 0, std::nullopt}};
  ticks[1].system = s1;
  ticks[1].runnable = 4;
  CollectorSample c;
  c.cpus_allowed = 1.5;
  c.thread_samples = 40;
  ticks[1].collector = c;
  Observation obs = build_observation(info(), ticks);
  ASSERT_EQ(obs.processes.size(), 1u);
  const ProcessSummary& ps = obs.processes[0];
  EXPECT_EQ(ps.name, "svc");
  EXPECT_EQ(ps.threads, 1);
  EXPECT_EQ(ps.write_bytes, 4000u);
  EXPECT_EQ(ps.syscw, 20u);
  EXPECT_EQ(ps.rss_start_bytes, 10u << 20);
  EXPECT_EQ(ps.rss_max_bytes, 12u << 20);
  EXPECT_EQ(ps.open_fds, 7u);
  EXPECT_EQ(ps.fd_soft_limit, 1024u);
  EXPECT_EQ(ps.client_connections, 1);
  EXPECT_EQ(ps.upstream_peers(), std::vector<std::string>{"127.0.0.1:9001"});
  EXPECT_EQ(ps.upstream_rtt_us_max, 300u);
  EXPECT_DOUBLE_EQ(obs.system.cpu_utilization, 0.5);
  EXPECT_DOUBLE_EQ(obs.system.run_queue_avg, 3.0);
  EXPECT_DOUBLE_EQ(obs.system.cpus_allowed, 1.5);
  ASSERT_EQ(obs.system.disks.size(), 1u);
  EXPECT_DOUBLE_EQ(obs.system.disks[0].utilization, 0.5);
  EXPECT_DOUBLE_EQ(obs.system.disks[0].writes_per_s, 15.0);
  EXPECT_EQ(obs.overhead.thread_samples, 40u);
  ASSERT_FALSE(obs.sources.empty());
  EXPECT_EQ(obs.sources.front().name, "schedstat");
}

// A process's connections by peer (top's connections panel): upstreams by address and port,
// clients by address (their ports are ephemeral); bytes sent and retransmits are deltas over the
// window, RTT the largest and unsent bytes the sum at its end; the most bytes sent first.
TEST(BuildObservation, PeersGroupUpstreamsByAddressAndPortAndClientsByAddress) {
  std::vector<Tick> ticks(2);
  ticks[0].threads = {first(1, 0, in_syscall(SYS_nanosleep))};
  ticks[1].at_ns = 2000 * kMs;
  for (int i = 0; i < 2; ++i) {
    ProcessSample p;
    p.pid = 100;
    p.at_ns = ticks[static_cast<std::size_t>(i)].at_ns;
    p.open_fds = 10;
    ticks[static_cast<std::size_t>(i)].processes = {p};
    const std::uint64_t end = static_cast<std::uint64_t>(i);  // 0 at the start, 1 at the end
    for (int k = 0; k < 2; ++k) {
      SocketSample up = test_support::socket_sample(100, 5 + static_cast<std::uint64_t>(k),
                                                    SocketState::kEstablished,
                                                    {"127.0.0.1", 40000, "127.0.0.1", 9001});
      up.at_ns = ticks[static_cast<std::size_t>(i)].at_ns;
      up.bytes_acked = end * 2000;
      up.total_retrans = k == 0 ? static_cast<std::uint32_t>(1 + 2 * end) : 0;
      up.rtt_us = k == 0 ? 300 : 500;
      up.notsent_bytes = k == 0 ? 10 : 20;
      up.unacked_segments = static_cast<std::uint32_t>(k + 1);
      SocketSample client = test_support::socket_sample(
          100, 7 + static_cast<std::uint64_t>(k), SocketState::kEstablished,
          {"127.0.0.1", 8080, "10.0.0.1", static_cast<std::uint16_t>(50000 + k)});
      client.at_ns = up.at_ns;
      client.server_side = true;
      client.bytes_acked = end * 20000;
      ticks[static_cast<std::size_t>(i)].sockets.push_back(up);
      ticks[static_cast<std::size_t>(i)].sockets.push_back(client);
    }
  }
  Observation obs = build_observation(info(), ticks);
  ASSERT_EQ(obs.processes.size(), 1u);
  const auto& peers = obs.processes[0].peers;
  ASSERT_EQ(peers.size(), 2u);
  EXPECT_EQ(peers[0].address, "10.0.0.1");
  EXPECT_TRUE(peers[0].clients);
  EXPECT_EQ(peers[0].connections, 2);
  EXPECT_EQ(peers[0].bytes_sent_per_s, 20000u);  // 40,000 bytes over 2 s
  EXPECT_EQ(peers[1].address, "127.0.0.1:9001");
  EXPECT_FALSE(peers[1].clients);
  EXPECT_EQ(peers[1].connections, 2);
  EXPECT_EQ(peers[1].bytes_sent_per_s, 2000u);
  EXPECT_EQ(peers[1].retransmits, 2u);
  EXPECT_EQ(peers[1].rtt_us_max, 500u);
  EXPECT_EQ(peers[1].notsent_bytes, 30u);
  EXPECT_EQ(peers[1].unacked_segments, 3u);
  EXPECT_EQ(obs.processes[0].bytes_sent_per_s, 22000u);
}

TEST(BuildObservation, ALiveSinkBuildsWhatTheWholeStreamGives) {
  const std::vector<Tick> ticks = lock_behind_disk_ticks();
  const Observation whole = build_observation(info(), ticks);
  Samples kept;
  ObservationSink sink(&kept);
  sink.begin(info());
  for (const auto& t : ticks) sink.add(t);
  const Observation live = sink.finish();
  EXPECT_EQ(live.duration_ns, whole.duration_ns);
  EXPECT_EQ(live.lock_wait_behind_disk_ns, whole.lock_wait_behind_disk_ns);
  ASSERT_EQ(live.threads.size(), whole.threads.size());
  for (std::size_t i = 0; i < live.threads.size(); ++i) {
    EXPECT_EQ(live.threads[i].split.ns, whole.threads[i].split.ns);
    EXPECT_EQ(live.threads[i].details, whole.threads[i].details);
  }
  EXPECT_EQ(kept.ticks.size(), ticks.size());
}

TEST(BuildObservation, BrokenStreamsDoNotCrash) {
  // Polls of unknown threads, time running backwards, an end of nobody, no ticks at all.
  std::vector<Tick> ticks(2);
  ticks[0].at_ns = 100;
  ticks[0].threads = {poll(9, 100, 50, 10, in_syscall(SYS_nanosleep)), first(1, 100, {})};
  ticks[0].ended = {{100, 42, 0}};
  ticks[1].at_ns = 50;
  ticks[1].threads = {poll(1, 50, 900, 10, in_syscall(SYS_nanosleep))};
  Observation obs = build_observation(info(), ticks);
  EXPECT_EQ(obs.threads.size(), 1u);
  EXPECT_TRUE(build_observation(info(), {}).threads.empty());
}

TEST(ObservationBuilder, WindowsCutAtTicksInOnePassEqualEachWindowBuiltAlone) {
  // Two threads that change waits, one that ends; process and system reads at every tick; the
  // windows cut at the ticks of 200 and 600 ms.
  std::vector<Tick> ticks(6);
  ticks[0].new_pids = {100};
  ticks[0].threads = {first(1, 0, in_syscall(SYS_nanosleep)),
                      first(2, 0, in_syscall(SYS_fdatasync, FdRole::kRegularFile, "/db"))};
  for (std::size_t i = 0; i < ticks.size(); ++i) {
    const std::int64_t at = static_cast<std::int64_t>(i) * 200 * kMs;
    ticks[i].at_ns = at;
    ProcessSample p;
    p.pid = 100;
    p.at_ns = at;
    p.has_status = true;
    p.rss_bytes = (static_cast<std::uint64_t>(i) + 1) << 20;
    ticks[i].processes.push_back(p);
    SystemSample sys;
    sys.at_ns = at;
    sys.cpus_online = 2;
    sys.has_cpu = true;
    sys.cpu_total_ns = static_cast<std::uint64_t>(at) * 2;
    sys.cpu_busy_ns = static_cast<std::uint64_t>(at) * i / 4;
    ticks[i].system = sys;
  }
  ticks[1].threads = {poll(1, 200 * kMs, 100 * kMs, 20 * kMs, mutex_wait())};
  ticks[2].threads = {poll(2, 400 * kMs, 300 * kMs, 30 * kMs, in_syscall(SYS_nanosleep))};
  ticks[3].ended = {{100, 1, 550 * kMs}};
  ticks[4].threads = {
      poll(2, 800 * kMs, 800 * kMs, 90 * kMs, in_syscall(SYS_fsync, FdRole::kRegularFile, "/log"))};
  ticks[5].closing = true;
  const std::vector<std::int64_t> bounds = {0, 200 * kMs, 600 * kMs, 1000 * kMs};

  ObservationBuilder rolling(info(), bounds.front(), bounds.back());
  std::vector<Observation> windows;
  for (const Tick& t : ticks) {
    ASSERT_TRUE(rolling.add(t));
    if (t.at_ns == bounds[windows.size() + 1] && t.at_ns < bounds.back()) {
      windows.push_back(rolling.cut_after(t));
    }
  }
  windows.push_back(rolling.finish());
  ASSERT_EQ(windows.size(), 3u);
  for (std::size_t w = 0; w < windows.size(); ++w) {
    SCOPED_TRACE(w);
    const Observation alone = build_observation(info(), ticks, Window{bounds[w], bounds[w + 1]});
    EXPECT_EQ(windows[w].duration_ns, alone.duration_ns);
    expect_same_threads(windows[w], alone);
    ASSERT_EQ(windows[w].processes.size(), alone.processes.size());
    for (std::size_t i = 0; i < alone.processes.size(); ++i) {
      EXPECT_EQ(windows[w].processes[i].rss_start_bytes, alone.processes[i].rss_start_bytes);
      EXPECT_EQ(windows[w].processes[i].rss_end_bytes, alone.processes[i].rss_end_bytes);
    }
    EXPECT_GT(alone.system.cpu_utilization, 0);
    EXPECT_DOUBLE_EQ(windows[w].system.cpu_utilization, alone.system.cpu_utilization);
  }
  // The windows add up to the whole: each thread's time is in exactly one of them.
  EXPECT_EQ(total_split(windows[0].threads).total_ns() +
                total_split(windows[1].threads).total_ns() +
                total_split(windows[2].threads).total_ns(),
            total_split(build_observation(info(), ticks).threads).total_ns());
}

// A sampler that lives across windows (top, the agent) gives one stream in which every window
// ends with a closing tick; the next window goes on from it. A thread appears in the second
// window, one exits in it, one runs across both seams.
TEST(ObservationSink, ConsecutiveWindowsOfOneStreamEqualEachWindowBuiltAlone) {
  std::vector<Tick> ticks;
  auto tick_at = [&ticks](std::int64_t at) -> Tick& {
    Tick t;
    t.at_ns = at;
    t.lock_credit_ns = 100 * kMs;
    ProcessSample p;
    p.pid = 100;
    p.at_ns = at;
    p.has_status = true;
    p.rss_bytes = static_cast<std::uint64_t>(at / kMs) << 10;
    p.io = ProcessIo{0, static_cast<std::uint64_t>(at / kMs) * 10, 0};
    t.processes.push_back(p);
    ticks.push_back(std::move(t));
    return ticks.back();
  };
  auto close_at = [&](std::int64_t at, std::uint64_t cpu_ms, std::uint64_t reads) {
    Tick& t = tick_at(at);
    t.closing = true;
    t.lock_credit_ns = 0;
    // The fd table's read comes alone (no io, no status): the io and status reads of the same
    // tick still start the next window (a regression: its first read had set the baseline).
    ProcessSample fds;
    fds.pid = 100;
    fds.at_ns = at;
    fds.open_fds = 9;
    t.processes.insert(t.processes.begin(), fds);
    SystemSample sys;
    sys.at_ns = at;
    sys.cpus_online = 2;
    sys.has_cpu = true;
    sys.cpu_total_ns = static_cast<std::uint64_t>(at) * 2;
    sys.cpu_busy_ns = static_cast<std::uint64_t>(at / kMs) * static_cast<std::uint64_t>(at) / 1000;
    t.system = sys;
    CollectorSample c;
    c.cpu_ns = static_cast<std::int64_t>(cpu_ms) * kMs;
    c.thread_samples = reads;
    t.collector = c;
  };
  {
    Tick& t0 = tick_at(0);
    t0.new_pids = {100};
    t0.threads = {first(1, 0, in_syscall(SYS_nanosleep)),
                  first(2, 0, in_syscall(SYS_fdatasync, FdRole::kRegularFile, "/db")),
                  first(3, 0, mutex_wait())};
    SystemSample sys;
    sys.has_cpu = true;
    sys.cpus_online = 2;
    t0.system = sys;
  }
  tick_at(100 * kMs).threads = {poll(1, 100 * kMs, 0, 30 * kMs, mutex_wait())};
  tick_at(200 * kMs).threads = {poll(2, 200 * kMs, 100 * kMs, 20 * kMs, in_syscall(SYS_fsync))};
  close_at(250 * kMs, 3, 30);
  // Window 2: thread 1 runs across the seam (its last poll was at 100 ms), thread 4 appears,
  // thread 3 exits.
  tick_at(350 * kMs).threads = {poll(1, 350 * kMs, 100 * kMs, 90 * kMs, in_syscall(SYS_nanosleep)),
                                first(4, 350 * kMs, in_syscall(SYS_epoll_wait))};
  tick_at(450 * kMs).ended = {{100, 3, 350 * kMs}};
  close_at(500 * kMs, 5, 52);
  // Window 3: quiet, then thread 2 runs in its last tick.
  tick_at(600 * kMs);
  tick_at(700 * kMs).threads = {poll(2, 700 * kMs, 600 * kMs, 80 * kMs, mutex_wait())};
  close_at(750 * kMs, 6, 60);

  ObservationSink sink;
  sink.begin(info());
  std::vector<Observation> windows;
  std::vector<std::int64_t> bounds = {0};
  Samples kept;
  for (const Tick& t : ticks) {
    if (windows.size() == 1 && kept.ticks.empty()) sink.keep_next(&kept);
    sink.add(t);
    if (t.closing) {
      windows.push_back(sink.finish());
      bounds.push_back(t.at_ns);
      sink.keep_next(nullptr);
    }
  }
  ASSERT_EQ(windows.size(), 3u);
  // The second window's ticks, and only they, were kept.
  ASSERT_EQ(kept.ticks.size(), 3u);
  EXPECT_EQ(kept.ticks.front().at_ns, 350 * kMs);
  EXPECT_EQ(kept.info.interval_ns, info().interval_ns);
  std::int64_t total_ns = 0;
  for (std::size_t w = 0; w < windows.size(); ++w) {
    SCOPED_TRACE(w);
    const Observation alone = build_observation(info(), ticks, Window{bounds[w], bounds[w + 1]});
    EXPECT_EQ(windows[w].duration_ns, bounds[w + 1] - bounds[w]);
    EXPECT_EQ(windows[w].duration_ns, alone.duration_ns);
    EXPECT_EQ(windows[w].lock_wait_behind_disk_ns, alone.lock_wait_behind_disk_ns);
    expect_same_threads(windows[w], alone);
    // No thread is accounted for more than the window.
    for (const auto& t : windows[w].threads) EXPECT_LE(t.split.total_ns(), windows[w].duration_ns);
    ASSERT_EQ(windows[w].processes.size(), 1u);
    ASSERT_EQ(alone.processes.size(), 1u);
    const ProcessSummary& p = windows[w].processes[0];
    EXPECT_EQ(p.rss_start_bytes, alone.processes[0].rss_start_bytes);
    EXPECT_EQ(p.rss_end_bytes, alone.processes[0].rss_end_bytes);
    EXPECT_EQ(p.write_bytes, alone.processes[0].write_bytes);
    EXPECT_EQ(p.write_bytes, static_cast<std::uint64_t>((bounds[w + 1] - bounds[w]) / kMs) * 10);
    EXPECT_EQ(p.open_fds, 9u);
    EXPECT_GT(alone.system.cpu_utilization, 0);
    EXPECT_DOUBLE_EQ(windows[w].system.cpu_utilization, alone.system.cpu_utilization);
    EXPECT_DOUBLE_EQ(windows[w].overhead.cpu_s, alone.overhead.cpu_s);
    EXPECT_EQ(windows[w].overhead.thread_samples, alone.overhead.thread_samples);
    total_ns += total_split(windows[w].threads).total_ns();
  }
  // Each window's cost is its own: the collector's cumulative counters from the last close.
  EXPECT_EQ(windows[0].overhead.thread_samples, 30u);
  EXPECT_EQ(windows[1].overhead.thread_samples, 22u);
  EXPECT_EQ(windows[2].overhead.thread_samples, 8u);
  EXPECT_DOUBLE_EQ(windows[1].overhead.cpu_s, 0.002);
  // The seams lose nothing and count nothing twice: the windows add up to the whole stream.
  EXPECT_EQ(windows[0].threads.size(), 3u);
  EXPECT_EQ(windows[1].threads.size(), 4u);
  EXPECT_EQ(windows[2].threads.size(), 3u);
  EXPECT_EQ(windows[2].processes[0].threads, 3);
  EXPECT_EQ(total_ns, total_split(build_observation(info(), ticks).threads).total_ns());
  // Thread 1 ran 60 ms between its polls at 100 and 350 ms: counted once, in the window the
  // interval ends in.
  auto on_cpu = [](const Observation& o, int tid) {
    for (const auto& t : o.threads) {
      if (t.key.tid == tid) return t.split.ns[static_cast<std::size_t>(Resource::kOnCpu)];
    }
    return std::int64_t{-1};
  };
  EXPECT_EQ(on_cpu(windows[0], 1), 30 * kMs);
  EXPECT_EQ(on_cpu(windows[1], 1), 60 * kMs);
}

// The rolling builder keeps one account per thread and clears it in place at each cut, and keeps
// each process's threads as they are first seen and end: over many windows every field of every
// account is what a builder of that window alone gives, a thread that ended leaves its process's
// count after its window, and a process whose last thread ended is forgotten.
TEST(ObservationBuilder, AccountsClearedInPlaceAndEndedThreadsLeaveTheirProcessAtTheCut) {
  std::vector<Tick> ticks;
  constexpr int kWindows = 6;
  constexpr std::int64_t kWindowNs = 400 * kMs;
  auto other = [](ThreadSample s) {
    s.key.pid = 200;
    s.process_name = "other";
    return s;
  };
  for (int i = 0; i <= kWindows * 4; ++i) {
    Tick t;
    t.at_ns = i * 100 * kMs;
    t.closing = i > 0 && i % 4 == 0;
    for (int pid : {100, 200}) {
      if (pid == 200 && i > 13) continue;  // its last thread ends at 1350 ms
      ProcessSample p;
      p.pid = pid;
      p.at_ns = t.at_ns;
      p.has_status = true;
      t.processes.push_back(p);
    }
    ticks.push_back(std::move(t));
  }
  ticks[0].new_pids = {100, 200};
  ticks[0].threads = {first(1, 0, mutex_wait()),
                      first(2, 0, in_syscall(SYS_fdatasync, FdRole::kRegularFile, "/db")),
                      other(first(5, 0, in_syscall(SYS_nanosleep)))};
  // Thread 1 changes waits in the first windows (details and majflt), then sleeps for good.
  ticks[1].threads = {
      poll(1, 100 * kMs, 0, 20 * kMs, in_syscall(SYS_fsync, FdRole::kRegularFile, "/log"))};
  ticks[1].threads[0].majflt = 3;
  // On the CPU in the kernel inside fsync at both ends: disk work.
  ticks[2].threads = {
      poll(1, 200 * kMs, 100 * kMs, 30 * kMs, in_syscall(SYS_fsync, FdRole::kRegularFile, "/log"))};
  ticks[2].threads[0].majflt = 3;
  ticks[2].threads[0].stime_ns = 10 * kMs;
  ticks[2].threads[0].blkio_delay_ns = 5 * kMs;
  ticks[6].threads = {poll(1, 600 * kMs, 500 * kMs, 50 * kMs, in_syscall(SYS_nanosleep))};
  // Thread 2 ends in the second window; thread 3 appears in the fourth, when process 200's only
  // thread ends.
  ticks[7].ended = {{100, 2, 650 * kMs}};
  ticks[13].threads = {first(3, 1300 * kMs, in_syscall(SYS_epoll_wait))};
  ticks[15].threads = {poll(3, 1500 * kMs, 1400 * kMs, 10 * kMs, mutex_wait())};
  ticks[14].ended = {{200, 5, 1350 * kMs}};

  ObservationBuilder rolling(info(), 0, kWindows * kWindowNs);
  std::vector<Observation> windows;
  for (const Tick& t : ticks) {
    ASSERT_TRUE(rolling.add(t));
    if (t.closing && t.at_ns < kWindows * kWindowNs) windows.push_back(rolling.cut_after(t));
  }
  windows.push_back(rolling.finish());
  ASSERT_EQ(windows.size(), static_cast<std::size_t>(kWindows));
  for (std::size_t w = 0; w < windows.size(); ++w) {
    SCOPED_TRACE(w);
    const std::int64_t from = static_cast<std::int64_t>(w) * kWindowNs;
    const Observation alone = build_observation(info(), ticks, Window{from, from + kWindowNs});
    ASSERT_EQ(windows[w].threads.size(), alone.threads.size());
    for (std::size_t i = 0; i < alone.threads.size(); ++i) {
      const ThreadAccount& got = windows[w].threads[i];
      const ThreadAccount& want = alone.threads[i];
      SCOPED_TRACE(want.key.tid);
      // Every field of ThreadAccount.
      auto fields = [](const ThreadAccount& a) {
        return std::tie(a.key, a.comm, a.process_name, a.split.ns, a.details, a.samples,
                        a.first_seen_ns, a.last_seen_ns, a.majflt, a.blkio_delay_ns,
                        a.kernel_work_ns, a.held_ns, a.lock_objects_ns, a.idle_objects_ns,
                        a.waited_for.ns);
      };
      EXPECT_EQ(fields(got), fields(want));
      EXPECT_EQ(got.split.total_ns(), kWindowNs - (got.key.tid == 3 && w == 3 ? 100 * kMs : 0) -
                                          (got.key.tid == 2 && w == 1 ? 150 * kMs : 0) -
                                          (got.key.tid == 5 && w == 3 ? 250 * kMs : 0));
    }
    ASSERT_EQ(windows[w].processes.size(), alone.processes.size());
    for (std::size_t i = 0; i < alone.processes.size(); ++i) {
      EXPECT_EQ(windows[w].processes[i].pid, alone.processes[i].pid);
      EXPECT_EQ(windows[w].processes[i].threads, alone.processes[i].threads);
    }
  }
  // The first windows' details and faults do not stay in thread 1's account.
  auto account = [](const Observation& o, int tid) -> const ThreadAccount& {
    for (const auto& t : o.threads) {
      if (t.key.tid == tid) return t;
    }
    throw std::runtime_error("no thread " + std::to_string(tid));
  };
  EXPECT_EQ(detail_ns(account(windows[0], 1), Resource::kDisk, "fsync /log"), 380 * kMs);
  EXPECT_EQ(detail_ns(account(windows[1], 1), Resource::kDisk, "fsync /log"), 100 * kMs);
  EXPECT_EQ(detail_ns(account(windows[2], 1), Resource::kDisk, "fsync /log"), 0);
  EXPECT_EQ(account(windows[2], 1).split[Resource::kSleep], kWindowNs);
  EXPECT_EQ(account(windows[0], 1).majflt, 3u);
  EXPECT_EQ(account(windows[2], 1).majflt, 0u);
  EXPECT_EQ(account(windows[0], 1).kernel_work_ns, 10 * kMs);
  EXPECT_EQ(account(windows[1], 1).kernel_work_ns, 0);
  EXPECT_EQ(account(windows[0], 1).blkio_delay_ns, 5 * kMs);
  EXPECT_EQ(account(windows[1], 1).blkio_delay_ns, 0);
  EXPECT_EQ(account(windows[5], 1).comm, "worker");
  EXPECT_EQ(account(windows[5], 1).first_seen_ns, 0);
  auto threads_of = [](const Observation& o, int pid) {
    for (const auto& p : o.processes) {
      if (p.pid == pid) return p.threads;
    }
    return -1;
  };
  // Thread 2 counts in the window it ended in, not after; thread 3 from its first one.
  EXPECT_EQ(threads_of(windows[1], 100), 2);
  EXPECT_EQ(threads_of(windows[2], 100), 1);
  EXPECT_EQ(threads_of(windows[3], 100), 2);
  EXPECT_EQ(threads_of(windows[3], 200), 1);
  EXPECT_EQ(threads_of(windows[4], 200), -1);
  // Process 200 is forgotten after the window its last thread ended in (a builder of one window
  // lists every process it was told of).
  EXPECT_EQ(windows[3].target.pids, (std::vector<int>{100, 200}));
  EXPECT_EQ(windows[4].target.pids, (std::vector<int>{100}));
  EXPECT_EQ(windows[5].target.pids, (std::vector<int>{100}));
}

}  // namespace
}  // namespace chokepoint::model
