// The host target's listing from the kernel's process events (collect/netlink/proc_connector.h,
// SamplerOptions::proc_events), against real processes this test forks.
//
// - The connector itself: a child forked, renamed, exec'd and reaped gives its fork, comm, exec
//   and exit events, with its pid; a datagram cut short is parsed as nothing, never past its end.
// - A host sampler started before a child is forked sees the child (its first sample, under its
//   exec'd name) while it lives and finishes it after it exits, with one full listing of /proc
//   in the whole run: a build that lists /proc again, or ignores the events, fails it. Its main
//   thread's last name is the exec'd one (a read before the exec makes it a rename), and no
//   kernel thread's sample carries a new name (a kworker's /proc name shows its work queue).
// - With a queue too small for a burst of forks (an overflow), the sampler lists /proc once per
//   overflow (full_listings == 1 + proc_events_lost, at least one) and sees every child still
//   alive after the burst; every child ends in the samples once reaped (no ghost).
//
// Needs root (CAP_NET_ADMIN before 6.6) and the host's pid namespace; this machine has both, so
// the test fails, not skips, when the sampler does not use the events.
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "collect/netlink/proc_connector.h"
#include "collect/sampler/sampler.h"
#include "support/files.h"

namespace chokepoint::collect {
namespace {

using netlink::ProcConnector;
using netlink::ProcEvent;
using Clock = std::chrono::steady_clock;

// Skips only where the feature is absent: not root, or a kernel without the process events'
// connector (/proc/net/connector lists cn_proc when CONFIG_PROC_EVENTS is built in). Where it is
// present, ProcConnector::open failing is a failure of the code under test, asserted by each test.
std::string unavailable() {
  if (geteuid() != 0) return "needs root (CAP_NET_ADMIN) for the proc connector";
  if (("\n" + test_support::read_file("/proc/net/connector")).find("\ncn_proc") !=
      std::string::npos) {
    return {};
  }
  return "the kernel has no process events connector (no cn_proc in /proc/net/connector)";
}

// A child that execs `sleep SECONDS` (only async-signal-safe calls after fork: the test has
// threads), renamed first to `rename` when given (prctl PR_SET_NAME: a comm event; an exec sends
// none, its new name comes with the exec's).
pid_t spawn_sleep(const char* seconds, const char* rename = nullptr) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (rename != nullptr) ::prctl(PR_SET_NAME, rename, 0, 0, 0);
    const char* argv[] = {"sleep", seconds, nullptr};
    ::execv("/bin/sleep", const_cast<char* const*>(argv));
    ::_exit(127);
  }
  return pid;
}

// What the sampler said, kept from the ticks as they come.
struct Seen {
  std::int64_t first_at_ns = -1;  // the first sample of a thread of the process
  std::int64_t last_at_ns = -1;   // the last sample of a thread of the process
  std::int64_t ended_at_ns = -1;  // its main thread in a tick's ended list
  std::string name;               // the process sample's name
  std::string comm;               // its main thread's name, as its samples last gave it
};

struct RecordingSink : model::SampleSink {
  std::mutex mu;
  std::map<int, Seen> seen;  // by pid
  std::optional<model::CollectorSample> collector;
  std::size_t ticks = 0;
  std::vector<std::string> kworker_renames;  // kernel threads' samples that carried a new name
  void begin(const model::RecordingInfo&) override {}
  void add(model::Tick tick) override {
    std::lock_guard lock(mu);
    ++ticks;
    for (const auto& s : tick.threads) {
      Seen& p = seen[s.key.pid];
      if (s.first && p.first_at_ns < 0) p.first_at_ns = tick.at_ns;
      p.last_at_ns = tick.at_ns;
      if (s.key.tid == s.key.pid && !s.comm.empty()) p.comm = s.comm;
      if (!s.first && s.comm.rfind("kworker", 0) == 0) kworker_renames.push_back(s.comm);
    }
    for (const auto& e : tick.ended) {
      if (e.pid == e.tid) seen[e.pid].ended_at_ns = tick.at_ns;
    }
    for (const auto& p : tick.processes) {
      if (p.name) seen[p.pid].name = *p.name;
    }
    if (tick.collector) collector = tick.collector;
  }
  Seen of(int pid) {
    std::lock_guard lock(mu);
    auto it = seen.find(pid);
    return it == seen.end() ? Seen{} : it->second;
  }
};

// A host sampler in rolling 1 s windows of 100 ms ticks on its own thread until stopped.
struct HostSampler {
  RecordingSink sink;
  std::atomic<bool> stop{false};
  std::thread thread;
  std::string error;
  explicit HostSampler(int receive_bytes) {
    sampler::SamplerOptions o;
    o.target.kind = sampler::TargetSpec::Kind::kHost;
    o.duration_ns = 1'000'000'000;
    o.interval_ns = 100'000'000;
    o.rolling = true;
    o.stop = &stop;
    o.proc_events_receive_bytes = receive_bytes;
    auto s = sampler::Sampler::create(o);
    if (!s) {
      error = s.error().message;
      return;
    }
    thread = std::thread([this, s = std::move(*s)]() mutable {
      while (!stop.load()) {
        if (auto r = s->run(sink); !r) {
          error = r.error().message;
          return;
        }
      }
    });
  }
  ~HostSampler() { finish(); }
  void finish() {
    stop = true;
    if (thread.joinable()) thread.join();
  }
  // Waits until the sampler emitted `n` ticks (the first: the full listing is done).
  bool wait_ticks(std::size_t n, std::chrono::seconds limit) {
    return wait_for(
        [&] {
          std::lock_guard lock(sink.mu);
          return sink.ticks >= n;
        },
        static_cast<int>(limit.count()));
  }
  template <typename F>
  bool wait_for(F done, int limit_s) {
    const auto until = Clock::now() + std::chrono::seconds(limit_s);
    while (Clock::now() < until) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return done();
  }
};

std::int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

TEST(ProcEvents, ParsesNothingFromACutDatagram) {
  // A fork event as the kernel sends it: nlmsghdr (16), cn_msg (20), proc_event (16 + 16).
  std::vector<std::uint8_t> msg(16 + 20 + 32, 0);
  const std::uint32_t len = static_cast<std::uint32_t>(msg.size());
  std::memcpy(msg.data(), &len, 4);
  const std::uint32_t idx = 1, val = 1;  // CN_IDX_PROC, CN_VAL_PROC
  std::memcpy(msg.data() + 16, &idx, 4);
  std::memcpy(msg.data() + 20, &val, 4);
  const std::uint16_t data_len = 32;
  std::memcpy(msg.data() + 16 + 16, &data_len, 2);
  const std::uint32_t what = 1;  // PROC_EVENT_FORK
  std::memcpy(msg.data() + 36, &what, 4);
  const std::int32_t ids[4] = {10, 10, 11, 11};  // parent pid, tgid; child pid, tgid
  std::memcpy(msg.data() + 36 + 16, ids, sizeof ids);
  std::vector<ProcEvent> out;
  netlink::parse_proc_events(msg, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, ProcEvent::Kind::kFork);
  EXPECT_EQ(out[0].pid, 11);
  EXPECT_EQ(out[0].tgid, 11);
  EXPECT_EQ(out[0].parent_tgid, 10);
  for (std::size_t cut = 0; cut < msg.size(); ++cut) {
    out.clear();
    netlink::parse_proc_events(std::span(msg.data(), cut), out);
    EXPECT_TRUE(out.empty()) << "cut at " << cut;
  }
}

TEST(ProcEvents, ConnectorReportsAChildsForkExecAndExit) {
  if (std::string why = unavailable(); !why.empty()) GTEST_SKIP() << why;
  auto c = ProcConnector::open();
  ASSERT_TRUE(c) << c.error().message;
  const pid_t child = spawn_sleep("0.2", "cp-renamed");
  ASSERT_GT(child, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  bool fork = false, exec = false, comm = false, exit = false;
  std::vector<ProcEvent> events;
  const auto until = Clock::now() + std::chrono::seconds(5);
  while (!(fork && exec && comm && exit) && Clock::now() < until) {
    events.clear();
    auto d = c->drain(events);
    ASSERT_TRUE(d) << d.error().message;
    for (const auto& e : events) {
      if (e.tgid != child) continue;
      fork |= e.kind == ProcEvent::Kind::kFork && e.pid == child && e.parent_tgid == getpid();
      exec |= e.kind == ProcEvent::Kind::kExec && e.pid == child;
      comm |= e.kind == ProcEvent::Kind::kComm && std::string(e.comm.data()) == "cp-renamed";
      exit |= e.kind == ProcEvent::Kind::kExit && e.pid == child;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(fork);
  EXPECT_TRUE(exec);
  EXPECT_TRUE(comm);
  EXPECT_TRUE(exit);
}

TEST(ProcEvents, HostSamplerSeesAChildFromEventsAndForgetsItWithoutAListing) {
  if (std::string why = unavailable(); !why.empty()) GTEST_SKIP() << why;
  HostSampler h(0);
  ASSERT_TRUE(h.error.empty()) << h.error;
  ASSERT_TRUE(h.wait_ticks(3, std::chrono::seconds(30))) << h.error;
  const std::int64_t forked_ns = monotonic_ns();
  // Lives 3 s: past a refresh (every 0.5 s, or 2 s on a host of more than 1,000 threads).
  const pid_t child = spawn_sleep("3");
  ASSERT_GT(child, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  const std::int64_t reaped_ns = monotonic_ns();
  // Finished within a refresh and a tick (2.1 s), or a few on a loaded machine.
  EXPECT_TRUE(h.wait_for([&] { return h.sink.of(child).ended_at_ns > 0; }, 8));
  h.finish();
  ASSERT_TRUE(h.error.empty()) << h.error;

  const Seen s = h.sink.of(child);
  EXPECT_GT(s.first_at_ns, forked_ns) << "the child forked after the start was never sampled";
  EXPECT_LT(s.first_at_ns, reaped_ns);
  EXPECT_EQ(s.name, "sleep") << "the child's process sample has the name it exec'd";
  // Its main thread too, even when the first read came before the exec (a rename).
  EXPECT_EQ(s.comm, "sleep");
  // Kernel threads keep their first names: /proc shows a kworker's work queue in its name and the
  // task iterator does not, and neither is a rename.
  EXPECT_TRUE(h.sink.kworker_renames.empty()) << h.sink.kworker_renames.front();
  EXPECT_GT(s.ended_at_ns, 0) << "the child's exit did not finish it";
  EXPECT_GE(s.ended_at_ns, s.last_at_ns) << "sampled after it was finished";
  EXPECT_LT(s.ended_at_ns, reaped_ns + 8'000'000'000);
  ASSERT_TRUE(h.sink.collector.has_value());
  const model::CollectorSample& c = *h.sink.collector;
  EXPECT_TRUE(c.proc_events_on) << c.proc_events_problem;
  EXPECT_EQ(c.full_listings, 1u) << "/proc was listed again: the events were not used";
  EXPECT_EQ(c.proc_events_lost, 0u);
}

TEST(ProcEvents, AnOverflowFallsBackToOneListingAndLosesNoLiveChild) {
  if (std::string why = unavailable(); !why.empty()) GTEST_SKIP() << why;
  // The smallest queue the kernel allows (SOCK_MIN_RCVBUF: a few events).
  HostSampler h(1);
  ASSERT_TRUE(h.error.empty()) << h.error;
  ASSERT_TRUE(h.wait_ticks(3, std::chrono::seconds(30))) << h.error;
  // A burst of 200 children that exit at once, with 4 that live 6 s among them: hundreds of
  // events between two drains.
  std::vector<pid_t> short_lived, long_lived;
  for (int i = 0; i < 200; ++i) {
    if (i % 50 == 25) {
      long_lived.push_back(spawn_sleep("6"));
      ASSERT_GT(long_lived.back(), 0);
    }
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    ASSERT_GT(pid, 0);
    short_lived.push_back(pid);
  }
  for (pid_t pid : short_lived) ::waitpid(pid, nullptr, 0);
  // Listed within a refresh and a tick of the burst (2.1 s), while they live.
  auto all_of = [&](auto pred) {
    return std::all_of(long_lived.begin(), long_lived.end(),
                       [&](pid_t pid) { return pred(h.sink.of(pid)); });
  };
  h.wait_for([&] { return all_of([](const Seen& s) { return s.first_at_ns > 0; }); }, 5);
  for (pid_t pid : long_lived) {
    EXPECT_GT(h.sink.of(pid).first_at_ns, 0) << "a child alive after the overflow was lost";
  }
  for (pid_t pid : long_lived) ::waitpid(pid, nullptr, 0);
  h.wait_for([&] { return all_of([](const Seen& s) { return s.ended_at_ns > 0; }); }, 8);
  // A short-lived child sampled in the last tick is finished by the next refresh.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  h.finish();
  ASSERT_TRUE(h.error.empty()) << h.error;
  for (pid_t pid : long_lived) {
    const Seen s = h.sink.of(pid);
    EXPECT_GT(s.ended_at_ns, 0) << "a reaped child is still watched (a ghost)";
    EXPECT_GE(s.ended_at_ns, s.last_at_ns);
  }
  // A short-lived child that was sampled is finished too.
  for (pid_t pid : short_lived) {
    const Seen s = h.sink.of(pid);
    if (s.first_at_ns > 0) {
      EXPECT_GT(s.ended_at_ns, 0) << "pid " << pid << " is a ghost";
    }
  }
  ASSERT_TRUE(h.sink.collector.has_value());
  const model::CollectorSample& c = *h.sink.collector;
  EXPECT_TRUE(c.proc_events_on) << c.proc_events_problem;
  EXPECT_GE(c.proc_events_lost, 1u) << "the burst did not overflow the tiny queue";
  EXPECT_EQ(c.full_listings, 1 + c.proc_events_lost) << "one full listing per overflow";
}

}  // namespace
}  // namespace chokepoint::collect
