// The exact mode's kernel half on this very process: a thread's block in read() is summed under
// its (system call, fd), and a thread id handed out again to a new thread (forced through
// /proc/sys/kernel/ns_last_pid) keeps the new thread's sums apart from the old one's, each under
// its own start time as /proc/PID/task/TID/stat field 22 gives it. Needs root and BPF (skips only
// through offcpu_unavailable()).
#include "collect/bpf/state_accounting.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "support/offcpu_support.h"

namespace chokepoint::collect::bpf {
namespace {

using namespace std::chrono_literals;

int gettid_now() {
  return static_cast<int>(syscall(SYS_gettid));
}

// Field 22 (starttime) of /proc/self/task/TID/stat, read after the comm's last ')'.
std::uint64_t start_ticks_of(int tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string line;
  std::getline(in, line);
  const auto paren = line.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream rest(line.substr(paren + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
  }
  return std::stoull(field);
}

// A thread that blocks in read() on `fd` until the pipe is written, and reports its tid and start.
struct Blocker {
  std::atomic<int> tid{0};  // set last: start_ticks is read once it is
  std::uint64_t start_ticks = 0;
  void run(int fd) {
    const int self = gettid_now();
    start_ticks = start_ticks_of(self);
    tid = self;
    char c = 0;
    (void)!::read(fd, &c, 1);
  }
};

std::uint64_t read_ns(const std::vector<StateSum>& sums, int tid, std::uint64_t start, int fd) {
  std::uint64_t ns = 0;
  for (const auto& s : sums) {
    if (s.tid == tid && s.start_time_ticks == start && s.syscall_nr == SYS_read &&
        s.object == static_cast<std::uint64_t>(fd)) {
      ns += s.ns;
    }
  }
  return ns;
}

TEST(StateAccounting, AThreadIdHandedOutAgainKeepsItsOwnSums) {
  if (std::string why = test_support::offcpu_unavailable(); !why.empty()) GTEST_SKIP() << why;
  auto created = StateAccounting::create({0});
  ASSERT_TRUE(created) << "BPF is supported here, yet the state accounting failed to load: "
                       << created.error().message;
  auto& acct = **created;
  ASSERT_TRUE(acct.set_targets({static_cast<int>(getpid())}));
  int first[2], second[2];
  ASSERT_EQ(pipe(first), 0);
  ASSERT_EQ(pipe(second), 0);

  // The old thread: 200 ms blocked in read(first).
  Blocker old;
  std::thread a([&] { old.run(first[0]); });
  std::this_thread::sleep_for(200ms);
  ASSERT_EQ(write(first[1], "x", 1), 1);
  a.join();
  ASSERT_GT(old.tid, 0);
  std::this_thread::sleep_for(20ms);  // a later start, in /proc's 10 ms ticks

  // The new thread gets the old one's id: the next id after ns_last_pid, unless another process
  // of the machine forks in between (then try again).
  auto reused = std::make_unique<Blocker>();
  std::thread b;
  for (int attempt = 0; attempt < 200 && reused->tid != old.tid; ++attempt) {
    if (b.joinable()) {
      ASSERT_EQ(write(second[1], "x", 1), 1);
      b.join();
    }
    reused = std::make_unique<Blocker>();
    {
      std::ofstream last("/proc/sys/kernel/ns_last_pid");
      last << old.tid - 1;
    }
    b = std::thread([r = reused.get(), fd = second[0]] { r->run(fd); });
    while (reused->tid == 0) std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(reused->tid, old.tid) << "the thread id was not handed out again in 200 attempts";
  std::this_thread::sleep_for(200ms);
  ASSERT_EQ(write(second[1], "x", 1), 1);
  b.join();

  const auto sums = acct.read();
  ASSERT_NE(old.start_ticks, reused->start_ticks);
  // Each thread's block under its own start time, and none under the other's.
  EXPECT_GE(read_ns(sums, old.tid, old.start_ticks, first[0]), 150'000'000u);
  EXPECT_GE(read_ns(sums, old.tid, reused->start_ticks, second[0]), 150'000'000u);
  EXPECT_EQ(read_ns(sums, old.tid, old.start_ticks, second[0]), 0u);
  EXPECT_EQ(read_ns(sums, old.tid, reused->start_ticks, first[0]), 0u);
  for (int fd : {first[0], first[1], second[0], second[1]}) close(fd);
}

}  // namespace
}  // namespace chokepoint::collect::bpf
