// PerfSampler on real processes: a child that burns CPU, one that exits mid-run, and the errors
// a user can cause. Skips (with the reason) where perf_event_open is not allowed.
#include "collect/perf/perf_sampler.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <set>
#include <thread>

#include "collect/procfs/proc_fs.h"

namespace chokepoint::collect::perf {
namespace {

// A child that spins for `ms` milliseconds (forever when ms < 0) in two threads, then exits.
pid_t spawn_spinner(int ms) {
  pid_t pid = fork();
  if (pid == 0) {
    auto spin = [ms] {
      auto end =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(ms < 0 ? 1 << 30 : ms);
      volatile std::uint64_t x = 0;
      while (std::chrono::steady_clock::now() < end) {
        for (int i = 0; i < 100000; ++i) x = x + static_cast<std::uint64_t>(i);
      }
    };
    std::thread t(spin);
    spin();
    t.join();
    _exit(0);
  }
  return pid;
}

struct Child {
  pid_t pid;
  ~Child() {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
};

// The CPU time the child's threads have had (utime + stime of /proc/PID/stat), in seconds.
double cpu_s(pid_t pid) {
  auto st = procfs::ProcFs("/proc").read_process_stat(pid);
  EXPECT_TRUE(st) << st.error().message;
  return st ? static_cast<double>(st->utime_ns + st->stime_ns) / 1e9 : 0.0;
}

// How many samples a 199 Hz clock event owes for the CPU time the child got meanwhile: the sampler
// must deliver, or account as lost by the kernel (a ring that filled while this process waited for
// a core: DWARF mode's 4 KiB samples fill it fastest), at least half of them (ticks are 10 ms
// coarse), however little CPU a loaded machine (or a parallel test) gave the spinner, and deliver
// 5 at the least so that a starved run proves nothing silently.
void expect_samples_for_cpu(std::uint64_t samples, const RecordStats& records, double cpu_s_got) {
  const double owed = cpu_s_got * 199.0;
  EXPECT_GE(static_cast<double>(samples + records.lost), owed * 0.5)
      << cpu_s_got << " s of CPU; " << records.lost << " lost, " << records.throttled
      << " throttle records";
  EXPECT_GE(samples, 5u) << "the spinner got " << cpu_s_got << " s of CPU";
}

PerfOptions options_for(pid_t pid) {
  PerfOptions o;
  o.target.kind = sampler::TargetSpec::Kind::kPid;
  o.target.pid = pid;
  o.frequency_hz = 199;
  return o;
}

#define SKIP_IF_NO_PERF(result)                                                             \
  if (!(result) &&                                                                          \
      ((result).error().errno_value == EACCES || (result).error().errno_value == EPERM ||   \
       (result).error().errno_value == ENOENT || (result).error().errno_value == ENOSYS)) { \
    GTEST_SKIP() << "perf_event_open not available: " << (result).error().message << " / "  \
                 << (result).error().hint;                                                  \
  }

TEST(PerfSampler, SamplesEveryThreadOfABusyProcess) {
  Child child{spawn_spinner(-1)};
  usleep(50'000);  // let the second thread start
  auto s = PerfSampler::open(options_for(child.pid));
  SKIP_IF_NO_PERF(s);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_FALSE(s->info().event_name.empty());
  std::set<std::uint32_t> tids;
  std::uint64_t with_user = 0, n = 0;
  std::string process;
  const double cpu_before_s = cpu_s(child.pid);
  auto stats = s->run(700 * util::kNsPerMs, nullptr,
                      [&](const Sample& sample, std::string_view pname, std::string_view) {
                        ++n;
                        EXPECT_EQ(sample.pid, static_cast<std::uint32_t>(child.pid));
                        tids.insert(sample.tid);
                        if (!sample.user_ips.empty()) ++with_user;
                        process = pname;
                      });
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_EQ(stats->records.samples, n);
  // Two threads at 199 Hz for 0.7 s: up to 278 samples, as many as the CPU they got allows.
  expect_samples_for_cpu(n, stats->records, cpu_s(child.pid) - cpu_before_s);
  EXPECT_EQ(tids.size(), 2u);
  EXPECT_GT(with_user, n * 9 / 10);
  EXPECT_EQ(stats->threads_followed, 2u);
  EXPECT_FALSE(stats->target_exited);
  EXPECT_FALSE(process.empty());
  EXPECT_FALSE(s->notes().empty());  // at least the rescan note
}

// DWARF mode: every sample of a user-space spinner carries 17 registers of the 64-bit ABI and a
// stack copy, and the callchain has no user frames (exclude_callchain_user).
TEST(PerfSampler, DwarfModeCarriesUserRegistersAndStack) {
  if (kUserRegsMask == 0) GTEST_SKIP() << "DWARF mode is x86-64 only";
  Child child{spawn_spinner(-1)};
  PerfOptions o = options_for(child.pid);
  o.user_stack_bytes = 4096;
  auto s = PerfSampler::open(o);
  SKIP_IF_NO_PERF(s);
  if (!s && s.error().errno_value == EOPNOTSUPP) GTEST_SKIP() << s.error().message;
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->info().user_stack_bytes, 4096u);
  EXPECT_EQ(s->info().regs_user_mask, kUserRegsMask);
  std::uint64_t n = 0, with_state = 0, with_user_ips = 0;
  const double cpu_before_s = cpu_s(child.pid);
  auto stats = s->run(
      500 * util::kNsPerMs, nullptr, [&](const Sample& sample, std::string_view, std::string_view) {
        ++n;
        if (sample.regs_abi == 2 && sample.user_regs.size() == 17 && !sample.user_stack.empty() &&
            sample.user_stack.size() <= 4096 && sample.user_stack_requested_bytes == 4096) {
          ++with_state;
        }
        if (!sample.user_ips.empty()) ++with_user_ips;
      });
  ASSERT_TRUE(stats) << stats.error().message;
  expect_samples_for_cpu(n, stats->records, cpu_s(child.pid) - cpu_before_s);
  EXPECT_GT(with_state, n * 9 / 10);
  EXPECT_EQ(with_user_ips, 0u);
  EXPECT_EQ(stats->records.malformed, 0u);
}

TEST(PerfSampler, DwarfModeRefusesABadStackSize) {
  PerfOptions o = options_for(getpid());
  o.user_stack_bytes = 100;
  auto s = PerfSampler::open(o);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().errno_value, kUserRegsMask == 0 ? ENOTSUP : EINVAL);
  EXPECT_FALSE(s.error().hint.empty());
}

TEST(PerfSampler, TargetExitingMidRunKeepsWhatWasCollected) {
  Child child{spawn_spinner(300)};
  auto s = PerfSampler::open(options_for(child.pid));
  SKIP_IF_NO_PERF(s);
  ASSERT_TRUE(s) << s.error().message;
  // Reap the child as soon as it exits, as a launcher would, so it does not linger as a zombie.
  // Its rusage says how much CPU it had in its 300 ms.
  rusage usage{};
  std::thread reaper([&] { wait4(child.pid, nullptr, 0, &usage); });
  std::uint64_t n = 0;
  auto t0 = std::chrono::steady_clock::now();
  auto stats = s->run(10 * util::kNsPerSec, nullptr,
                      [&](const Sample&, std::string_view, std::string_view) { ++n; });
  auto elapsed = std::chrono::steady_clock::now() - t0;
  reaper.join();
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_TRUE(stats->target_exited);
  const auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  expect_samples_for_cpu(n, stats->records, seconds(usage.ru_utime) + seconds(usage.ru_stime));
  EXPECT_LT(elapsed, std::chrono::seconds(3));  // stopped early, did not wait out the 10 s
}

TEST(PerfSampler, StopFlagEndsTheRun) {
  Child child{spawn_spinner(-1)};
  auto s = PerfSampler::open(options_for(child.pid));
  SKIP_IF_NO_PERF(s);
  ASSERT_TRUE(s) << s.error().message;
  std::atomic<bool> stop{true};
  auto stats = s->run(10 * util::kNsPerSec, &stop, {});
  ASSERT_TRUE(stats);
  EXPECT_LT(stats->duration_s, 1.0);
}

TEST(PerfSampler, MissingProcessIsESRCH) {
  auto o = options_for(0x3ffffff0);
  auto s = PerfSampler::open(o);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().errno_value, ESRCH);
  EXPECT_FALSE(s.error().hint.empty());
}

TEST(PerfSampler, FrequencyOutOfRangeIsEINVAL) {
  for (double hz : {0.0, -5.0, 1e9}) {
    auto o = options_for(getpid());
    o.frequency_hz = hz;
    auto s = PerfSampler::open(o);
    ASSERT_FALSE(s) << hz;
    EXPECT_EQ(s.error().errno_value, EINVAL);
    EXPECT_NE(s.error().hint.find("perf_event_max_sample_rate"), std::string::npos);
  }
}

TEST(PerfSampler, RingPagesMustBeAPowerOfTwo) {
  auto o = options_for(getpid());
  o.ring_data_pages = 3;
  auto s = PerfSampler::open(o);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().errno_value, EINVAL);
}

TEST(RingPagesFor, GrowsWithTheFrequency) {
  const std::int64_t drain = 50 * util::kNsPerMs;
  EXPECT_EQ(ring_pages_for(99, drain, 4096), 16u);       // 99 Hz: 12 KB per 4 drains; the floor
  EXPECT_EQ(ring_pages_for(50000, drain, 4096), 2048u);  // 6 MB -> 8 MiB
  EXPECT_EQ(ring_pages_for(1e9, drain, 4096), 4096u);    // capped
  for (double hz : {1.0, 99.0, 997.0, 5000.0, 20000.0}) {
    auto p = ring_pages_for(hz, drain, 4096);
    EXPECT_EQ(p & (p - 1), 0u) << hz;
  }
}

TEST(CapsAllowPerf, ReadsCapEff) {
  EXPECT_TRUE(caps_allow_perf("Name:\tx\nCapEff:\t000001ffffffffff\n"));
  EXPECT_TRUE(caps_allow_perf("CapEff:\t0000000000200000\n"));  // CAP_SYS_ADMIN only
  EXPECT_TRUE(caps_allow_perf("CapEff:\t0000004000000000\n"));  // CAP_PERFMON only
  EXPECT_FALSE(caps_allow_perf("CapEff:\t0000000000000000\n"));
  EXPECT_FALSE(caps_allow_perf("CapInh:\t0000000000000000\n"));
  EXPECT_FALSE(caps_allow_perf("CapEff:\tzz\n"));
}

}  // namespace
}  // namespace chokepoint::collect::perf
