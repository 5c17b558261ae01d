// The exact mode's kernel half on this very process: a thread's block in read() is summed under
// its (system call, fd), each read passes on only the sums and wait-for edges that changed, and a
// thread id handed out again to a new thread (forced through /proc/sys/kernel/ns_last_pid) keeps
// the new thread's sums apart from the old one's, each under its own start time as
// /proc/PID/task/TID/stat field 22 gives it; the file calls' hook reported is the one the kernel
// shows attached, and it times this thread's writes; two in one process (one after the other, and
// two at once) each time the writes of a thread they never saw leave a CPU (issue 16). Needs root
// and BPF (skips only through offcpu_unavailable()). A timer's wakeup of a timed futex wait or a
// sleep, taken while another thread of the process ran on that CPU, is an interrupt's edge, not
// that thread's; the same thread's own FUTEX_WAKE is its edge. A wakee woken the same way again
// counts every wakeup, and a forgotten edge's next wakeup goes to a new entry. A thread cycling
// through three waits adds its blocks without the sums' hash. The kernel's arrays are mapped only
// as far as their entries are handed out. Above the budget, short blocks are thinned by length
// and long ones (sleeps of 50 ms) accounted as they are.
#include "collect/bpf/state_accounting.h"

#include <gtest/gtest.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/cpu_pin.h"
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

// A StateAccounting with this process as its target; null, with the failure recorded, when
// BPF is supported here (the caller skipped otherwise) yet it did not load or take the target.
std::unique_ptr<StateAccounting> accounting_of_this_process() {
  auto created = StateAccounting::create({0});
  if (!created) {
    ADD_FAILURE() << "BPF is supported here, yet the state accounting failed to load: "
                  << created.error().message;
    return nullptr;
  }
  if (auto set = (*created)->set_targets({static_cast<int>(getpid())}); !set) {
    ADD_FAILURE() << "set_targets(this process): " << set.error().message;
    return nullptr;
  }
  return std::move(created).value();
}

// A thread that blocks in read() on `fd` until the pipe is written, and reports its tid and start.
struct Blocker {
  std::atomic<int> tid{0};  // set last: start_ticks is read once it is
  std::uint64_t start_ticks = 0;
  // Called on the thread: its tid and start, for the test to read.
  void note_self() {
    const int self = gettid_now();
    start_ticks = start_ticks_of(self);
    tid = self;
  }
  void run(int fd) {
    note_self();
    char c = 0;
    (void)!::read(fd, &c, 1);
  }
};

// Whether thread `tid` of this process is blocked in read(): asleep (S in stat) and in read
// (/proc/self/task/TID/syscall gives the number of the system call a blocked thread is in,
// "running" for one on a CPU). Both: while a wakeup is on its way to an idle CPU the thread is
// TASK_WAKING, which syscall still shows in its read and stat shows as R, so a write made then
// would find it awake and its bytes read without another block.
bool blocked_in_read(int tid) {
  const std::string dir = "/proc/self/task/" + std::to_string(tid);
  std::ifstream stat(dir + "/stat");
  std::string line;
  if (!std::getline(stat, line) || line.rfind(')') == std::string::npos ||
      line.rfind(')') + 2 >= line.size() || line[line.rfind(')') + 2] != 'S') {
    return false;
  }
  std::ifstream in(dir + "/syscall");
  long nr = -1;
  return static_cast<bool>(in >> nr) && nr == SYS_read;
}

// Waits (up to 10 s) until `b`'s thread is blocked in its read(): a time blocked counts from
// there, not from the thread's creation, which a loaded machine may run tens of milliseconds
// before the thread reaches its read().
void wait_blocked_in_read(const Blocker& b) {
  const auto limit = std::chrono::steady_clock::now() + 10s;
  while (b.tid == 0 || !blocked_in_read(b.tid)) {
    if (std::chrono::steady_clock::now() > limit) {
      ADD_FAILURE() << "the thread did not block in read() within 10 s";
      return;
    }
    std::this_thread::sleep_for(1ms);
  }
}

// Thread (tid, start)'s blocks in read(fd) in `sums`: their ns and count.
StateSum read_sum(const std::vector<StateSum>& sums, int tid, std::uint64_t start, int fd) {
  StateSum total;
  for (const auto& s : sums) {
    if (s.tid == tid && s.start_time_ticks == start && s.syscall_nr == SYS_read &&
        s.object == static_cast<std::uint64_t>(fd)) {
      total.ns += s.ns;
      total.count += s.count;
    }
  }
  return total;
}

TEST(StateAccounting, AThreadIdHandedOutAgainKeepsItsOwnSums) {
  if (std::string why = test_support::offcpu_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const auto owned = accounting_of_this_process();
  ASSERT_TRUE(owned);
  auto& acct = *owned;
  int first[2], second[2];
  ASSERT_EQ(pipe(first), 0);
  ASSERT_EQ(pipe(second), 0);

  // The old thread: 200 ms blocked in read(first), from when it is (the >= 150 ms checks below
  // failed beside stress-ng --cpu 4 when the 200 ms counted from the thread's creation).
  Blocker old;
  std::thread a([&] { old.run(first[0]); });
  wait_blocked_in_read(old);
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
  wait_blocked_in_read(*reused);
  std::this_thread::sleep_for(200ms);
  ASSERT_EQ(write(second[1], "x", 1), 1);
  b.join();

  const auto sums = acct.read();
  ASSERT_NE(old.start_ticks, reused->start_ticks);
  // Each thread's block under its own start time, and none under the other's.
  EXPECT_GE(read_sum(sums, old.tid, old.start_ticks, first[0]).ns, 150'000'000u);
  EXPECT_GE(read_sum(sums, old.tid, reused->start_ticks, second[0]).ns, 150'000'000u);
  EXPECT_EQ(read_sum(sums, old.tid, old.start_ticks, second[0]).ns, 0u);
  EXPECT_EQ(read_sum(sums, old.tid, reused->start_ticks, first[0]).ns, 0u);
  for (int fd : {first[0], first[1], second[0], second[1]}) close(fd);
}

// This edge's wakeups of `wakee` blocked in read(fd), woken by `waker`, in `edges` (0: none).
std::uint64_t edge_count(const std::vector<WakeEdgeSum>& edges, int waker, int wakee, int fd) {
  std::uint64_t count = 0;
  for (const auto& e : edges) {
    if (e.waker_tid == waker && e.wakee_tid == wakee && e.syscall_nr == SYS_read &&
        e.object == static_cast<std::uint64_t>(fd)) {
      count += e.count;
    }
  }
  return count;
}

// A thread that blocks 100 ms in read(fd[0]) until this thread writes fd[1], and has ended. The
// 100 ms count from when the kernel shows it blocked: on a loaded machine a new thread may reach
// its read() tens of milliseconds after it was created (one blocked 10 ms of 100 beside
// `stress-ng --cpu 4`).
std::unique_ptr<Blocker> block_once(const int fd[2]) {
  auto b = std::make_unique<Blocker>();
  std::thread t([r = b.get(), in = fd[0]] { r->run(in); });
  wait_blocked_in_read(*b);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(write(fd[1], "x", 1), 1);
  t.join();
  std::this_thread::sleep_for(50ms);  // its exit seen by the kernel (its last sums flushed)
  return b;
}

// read() and read_edges() pass on only what changed since the last read, with cumulative values
// (the sums are read in place from the kernel's arrays), and forget() drops an ended thread's.
TEST(StateAccounting, AReadPassesOnOnlyTheSumsAndEdgesThatChanged) {
  if (std::string why = test_support::offcpu_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const auto owned = accounting_of_this_process();
  ASSERT_TRUE(owned);
  auto& acct = *owned;
  const int self = gettid_now();
  int first[2], second[2];
  ASSERT_EQ(pipe(first), 0);
  ASSERT_EQ(pipe(second), 0);

  const auto a = block_once(first);
  const auto sums_a = acct.read();
  const auto edges_a = acct.read_edges();
  EXPECT_GE(read_sum(sums_a, a->tid, a->start_ticks, first[0]).ns, 80'000'000u);
  EXPECT_EQ(edge_count(edges_a, self, a->tid, first[0]), 1u);

  const auto b = block_once(second);
  const auto sums_b = acct.read();
  const auto edges_b = acct.read_edges();
  EXPECT_GE(read_sum(sums_b, b->tid, b->start_ticks, second[0]).ns, 80'000'000u);
  EXPECT_EQ(edge_count(edges_b, self, b->tid, second[0]), 1u);
  // a's did not change: not passed on again.
  EXPECT_EQ(read_sum(sums_b, a->tid, a->start_ticks, first[0]).ns, 0u);
  EXPECT_EQ(edge_count(edges_b, self, a->tid, first[0]), 0u);

  // forget() deletes a's and b's keys; the next read gives their kernel entries back, zeroed, and
  // a third thread's block on the first pipe takes one: its sum and edge count its block alone.
  acct.forget({{a->tid.load(), a->start_ticks}, {b->tid.load(), b->start_ticks}});
  (void)acct.read();  // gives the entries back
  (void)acct.read_edges();
  const auto c = block_once(first);
  const auto sums_c = acct.read();
  const auto edges_c = acct.read_edges();
  EXPECT_GE(read_sum(sums_c, c->tid, c->start_ticks, first[0]).ns, 80'000'000u);
  EXPECT_EQ(read_sum(sums_c, c->tid, c->start_ticks, first[0]).count, 1u);
  EXPECT_EQ(edge_count(edges_c, self, c->tid, first[0]), 1u);
  for (const auto& s : sums_c) {
    EXPECT_NE(s.tid, a->tid.load());
    EXPECT_NE(s.tid, b->tid.load());
  }
  // Nothing changed since: nothing passed on.
  EXPECT_EQ(edge_count(acct.read_edges(), self, c->tid, first[0]), 0u);
  for (int fd : {first[0], first[1], second[0], second[1]}) close(fd);
}

// A thread woken the same way again and again counts every wakeup on its one edge (the kernel
// adds a repeat to the entry of the thread's last edge without hashing), and once forget() has
// deleted that edge's key the next wakeup, before any read, is counted under a new entry: the
// deleted entry's key is poisoned, so the kernel does not keep adding to an entry user space no
// longer reads (it would be lost: the entry goes back zeroed at the next read).
TEST(StateAccounting, AWakeeWokenTheSameWayCountsEveryWakeupAndAForgottenEdgeIsLookedUpAgain) {
  if (std::string why = test_support::offcpu_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const auto owned = accounting_of_this_process();
  ASSERT_TRUE(owned);
  auto& acct = *owned;
  const int self = gettid_now();
  int fd[2];
  ASSERT_EQ(pipe(fd), 0);
  Blocker reader;  // reads one byte at a time until 'q'
  std::thread t([&reader, in = fd[0]] {
    reader.note_self();
    char c = 0;
    while (::read(in, &c, 1) == 1 && c != 'q') {
    }
  });
  const auto wake = [&](char c) {
    wait_blocked_in_read(reader);
    ASSERT_EQ(write(fd[1], &c, 1), 1);
  };
  constexpr int kWakeups = 20;
  for (int i = 0; i < kWakeups; ++i) wake('x');
  wait_blocked_in_read(reader);
  EXPECT_EQ(edge_count(acct.read_edges(), self, reader.tid, fd[0]), kWakeups);

  acct.forget({{reader.tid.load(), reader.start_ticks}});
  wake('x');
  wait_blocked_in_read(reader);
  EXPECT_EQ(edge_count(acct.read_edges(), self, reader.tid, fd[0]), 1u);
  wake('x');
  wait_blocked_in_read(reader);
  EXPECT_EQ(edge_count(acct.read_edges(), self, reader.tid, fd[0]), 2u);
  wake('q');
  t.join();
  close(fd[0]);
  close(fd[1]);
}

// A thread that cycles through three waits (three pipes' reads, as the lab's pipeline workers cycle
// through three futex words) keeps them in its slot's accumulators: its blocks go to the sums'
// hash only when a fourth and fifth wait come (each of them then takes the turn of an older one),
// and every block is counted under its own key throughout, and after the thread's exit.
TEST(StateAccounting, AThreadCyclingThroughThreeWaitsAddsThemWithoutHashing) {
  if (std::string why = test_support::offcpu_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const auto owned = accounting_of_this_process();
  ASSERT_TRUE(owned);
  auto& acct = *owned;
  constexpr int kPipes = 5, kThreeCycles = 30, kFiveCycles = 10;
  int p[kPipes][2];
  for (auto& fds : p) ASSERT_EQ(pipe(fds), 0);
  std::vector<int> order;  // the pipe of each block
  for (int i = 0; i < 3 * kThreeCycles; ++i) order.push_back(i % 3);
  for (int i = 0; i < kPipes * kFiveCycles; ++i) order.push_back(i % kPipes);
  Blocker reader;
  std::thread t([&] {
    reader.note_self();
    char c = 0;
    for (int k : order) (void)!::read(p[k][0], &c, 1);
  });
  const auto blocks_on = [&](const std::vector<StateSum>& sums, int k) {
    return read_sum(sums, reader.tid, reader.start_ticks, p[k][0]).count;
  };
  std::uint64_t hashed_before = acct.stats().sums_hashed;
  for (std::size_t i = 0; i < order.size(); ++i) {
    wait_blocked_in_read(reader);
    if (i == 3 * kThreeCycles) {
      // 90 blocks in three waits: each counted, none through the hash (this process's other
      // thread, which sleeps in wait_blocked_in_read, adds at most a few).
      const auto sums = acct.read();
      for (int k = 0; k < 3; ++k) EXPECT_EQ(blocks_on(sums, k), std::uint64_t{kThreeCycles});
      EXPECT_LE(acct.stats().sums_hashed - hashed_before, 6u);
      hashed_before = acct.stats().sums_hashed;
    }
    ASSERT_EQ(write(p[order[i]][1], "x", 1), 1);
  }
  t.join();
  std::this_thread::sleep_for(50ms);  // its exit seen by the kernel (its accumulators flushed)
  // Five waits in turn: each new one takes an older one's accumulator, through the hash.
  EXPECT_GE(acct.stats().sums_hashed - hashed_before, std::uint64_t{kFiveCycles});
  const auto sums = acct.read();
  for (int k = 0; k < kPipes; ++k) {
    EXPECT_EQ(blocks_on(sums, k),
              static_cast<std::uint64_t>((k < 3 ? kThreeCycles : 0) + kFiveCycles))
        << "pipe " << k;
  }
  for (auto& fds : p) {
    close(fds[0]);
    close(fds[1]);
  }
}

// Resident bytes of this process's mappings of BPF maps (/proc/self/smaps).
std::size_t bpf_map_rss_bytes() {
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool bpf_map = false;
  std::size_t kb = 0;
  while (std::getline(in, line)) {
    if (line.find(" anon_inode:bpf-map") != std::string::npos) {
      bpf_map = true;
    } else if (bpf_map && line.rfind("Rss:", 0) == 0) {
      kb += std::stoul(line.substr(4));
      bpf_map = false;
    }
  }
  return kb * 1024;
}

// Only the pages of the kernel's arrays that hold entries handed out are mapped: a few for this
// process (the whole arrays, 13.9 MB, were resident before), and more as slots are handed out:
// 300 threads blocked at once (94 KB of slots, past the first 64 KiB mapped) are all read.
TEST(StateAccounting, ItsArraysAreMappedAsFarAsTheirEntriesAreHandedOut) {
  if (std::string why = test_support::offcpu_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const auto owned = accounting_of_this_process();
  ASSERT_TRUE(owned);
  auto& acct = *owned;
  (void)acct.read();
  (void)acct.read_edges();
  EXPECT_LT(bpf_map_rss_bytes(), std::size_t{1} << 20);

  constexpr int kThreads = 300;
  std::atomic<int> started{0};
  std::vector<int> tids(kThreads, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      tids[static_cast<std::size_t>(i)] = gettid_now();
      ++started;
      std::this_thread::sleep_for(1500ms);
    });
  }
  while (started < kThreads) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(300ms);  // each in its sleep, its block open in its slot
  std::map<int, std::uint64_t> asleep_ns;
  for (const auto& sum : acct.read()) {
    if (sum.syscall_nr == SYS_clock_nanosleep || sum.syscall_nr == SYS_nanosleep) {
      asleep_ns[sum.tid] += sum.ns;
    }
  }
  int seen = 0;
  for (int tid : tids) seen += asleep_ns[tid] >= 100'000'000 ? 1 : 0;
  EXPECT_EQ(seen, kThreads) << "threads whose open sleep was read";
  for (auto& t : threads) t.join();
}

// The tracepoints and trampolines this process's BPF links are attached to, as the kernel shows
// them in /proc/self/fdinfo: a raw tracepoint link's "tp_name" ("sys_enter"), and "fentry" or
// "fexit" for a tracing link's attach_type (BPF_TRACE_FENTRY 24, BPF_TRACE_FEXIT 25).
std::multiset<std::string> attached_hooks() {
  std::multiset<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    if (std::filesystem::read_symlink(entry.path(), ec).string() != "anon_inode:bpf_link") continue;
    std::ifstream info("/proc/self/fdinfo/" + entry.path().filename().string());
    std::string line;
    while (std::getline(info, line)) {
      if (line.rfind("tp_name:", 0) == 0) out.insert(line.substr(line.find_first_not_of(" \t", 8)));
      if (line.rfind("attach_type:", 0) == 0) {
        const std::string type = line.substr(line.find_first_not_of(" \t", 12));
        if (type == "24") out.insert("fentry");
        if (type == "25") out.insert("fexit");
      }
    }
  }
  return out;
}

// Thread `tid`'s on-CPU time in file system calls on `fd` (kind 5) in `sums`.
std::uint64_t file_cpu_ns(const std::vector<StateSum>& sums, int fd, int tid) {
  std::uint64_t ns = 0;
  for (const auto& s : sums) {
    if (s.tid == tid && s.kind == 5 /* STATEACCT_ONCPU_FILE */ &&
        s.object == static_cast<std::uint64_t>(fd)) {
      ns += s.ns;
    }
  }
  return ns;
}

// This thread's CPU time.
std::int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

// Writes to a regular file on this thread for 50 ms of its CPU time (however loaded the machine),
// 64 KiB a call: the copy inside the call, which the hook times, is then most of the thread's CPU.
// With 1-byte writes the calls' entry and exit, outside the timed span (and slower with
// raw_syscalls attached), were most of it: 5 to 8 ms of the 50 were timed on one VM.
void write_a_file(int fd) {
  static const std::vector<char> block(64 * 1024, 'x');
  const std::int64_t end = thread_cpu_ns() + 50'000'000;
  while (thread_cpu_ns() < end) {
    ASSERT_EQ(pwrite(fd, block.data(), block.size(), 0), static_cast<ssize_t>(block.size()));
  }
}

// A regular file open for writing, already unlinked (-1 when it cannot be made).
int unlinked_file() {
  char path[] = "/var/tmp/chokepoint-state-accounting.XXXXXX";
  const int fd = mkstemp(path);
  if (fd >= 0) unlink(path);
  return fd;
}

// The file calls' hook: the one reported is the one attached, cheapest first (fentry where the
// kernel accepts trampolines, which this VM's does not), raw_syscalls only when any hook is
// allowed (--mode exact), and the one attached times this thread's writes to a regular file.
TEST(StateAccounting, TheFileCallHookReportedIsTheOneAttachedAndTimesFileCalls) {
  if (std::string why = test_support::offcpu_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const int fd = unlinked_file();
  ASSERT_GE(fd, 0);
  for (FileCallTiming timing :
       {FileCallTiming::kAny, FileCallTiming::kCheapOnly, FileCallTiming::kOff}) {
    SCOPED_TRACE(static_cast<int>(timing));
    const auto before = attached_hooks();
    StateAccountingOptions options;
    options.file_calls = timing;
    auto created = StateAccounting::create(options);
    ASSERT_TRUE(created) << created.error().message;
    StateAccounting& acct = **created;
    ASSERT_TRUE(acct.set_targets({getpid()}));
    auto now = attached_hooks();
    for (const auto& h : before) now.erase(now.find(h));
    const FileCallHook hook = acct.file_hook();
    EXPECT_EQ(now.count("sched_switch"), 1u);
    EXPECT_EQ(now.count("sys_enter"), hook == FileCallHook::kRawSyscalls ? 1u : 0u);
    EXPECT_EQ(now.count("sys_exit"), hook == FileCallHook::kRawSyscalls ? 1u : 0u);
    EXPECT_EQ(now.count("fentry"), hook == FileCallHook::kFentry ? 15u : 0u);
    EXPECT_EQ(now.count("fexit"), hook == FileCallHook::kFentry ? 15u : 0u);
    if (timing == FileCallTiming::kOff) {
      EXPECT_EQ(hook, FileCallHook::kNone);
      EXPECT_EQ(acct.file_hook_problem(), "");
    } else if (timing == FileCallTiming::kAny) {
      EXPECT_NE(hook, FileCallHook::kNone);
    } else {
      EXPECT_NE(hook, FileCallHook::kRawSyscalls);
    }
    // Whatever is not fentry says why fentry is not used.
    if (timing != FileCallTiming::kOff) {
      EXPECT_EQ(acct.file_hook_problem().empty(), hook == FileCallHook::kFentry)
          << acct.file_hook_problem();
    }
    write_a_file(fd);
    const std::uint64_t ns = file_cpu_ns(acct.read(), fd, gettid_now());
    if (hook == FileCallHook::kNone) {
      EXPECT_EQ(ns, 0u);
    } else {
      EXPECT_GT(ns, 10'000'000u) << file_call_hook_name(hook);  // of 50 ms on the CPU in pwrite
    }
  }
  close(fd);
}

// A thread that, at each round(), writes to a regular file for 50 ms of its CPU time
// (write_a_file) and between rounds blocks in read(). It runs at SCHED_FIFO, so no task of the
// normal class preempts it: woken for a round, it stays on its CPU from its wakeup to the end of
// its writes. A StateAccounting created between two rounds has never seen it leave a CPU when
// its file calls begin (a wakeup and a switch-in are all the kernel shows it).
class UnpreemptedWriter {
 public:
  explicit UnpreemptedWriter(int file_fd) : file_fd_(file_fd) {
    EXPECT_EQ(pipe(go_), 0);
    EXPECT_EQ(pipe(done_), 0);
    thread_ = std::thread([this] { run(); });
    char c = 0;
    EXPECT_EQ(::read(done_[0], &c, 1), 1);  // its tid and policy are set
  }
  ~UnpreemptedWriter() {
    close(go_[1]);  // read() returns 0: the thread ends
    thread_.join();
    for (int fd : {go_[0], done_[0], done_[1]}) close(fd);
  }
  UnpreemptedWriter(const UnpreemptedWriter&) = delete;
  UnpreemptedWriter& operator=(const UnpreemptedWriter&) = delete;

  int tid() const { return tid_; }
  // Why it could not run at SCHED_FIFO ("" when it does): then the kernel may preempt it, and
  // the test shows less.
  const std::string& fifo_problem() const { return fifo_problem_; }
  // One round of writes, waited for.
  void round() {
    ASSERT_EQ(write(go_[1], "g", 1), 1);
    char c = 0;
    ASSERT_EQ(::read(done_[0], &c, 1), 1);
  }

 private:
  void run() {
    tid_ = gettid_now();
    sched_param param{};
    param.sched_priority = 1;
    if (const int err = pthread_setschedparam(pthread_self(), SCHED_FIFO, &param); err != 0) {
      fifo_problem_ = std::string("SCHED_FIFO refused: ") + std::strerror(err);
    }
    char c = 0;
    (void)!write(done_[1], "r", 1);
    while (::read(go_[0], &c, 1) == 1) {
      write_a_file(file_fd_);
      (void)!write(done_[1], "d", 1);
    }
  }

  int file_fd_;
  int go_[2] = {-1, -1};
  int done_[2] = {-1, -1};
  int tid_ = 0;
  std::string fifo_problem_;
  std::thread thread_;
};

// Issue 16: a StateAccounting timed a thread's file calls only once it had seen the thread leave
// a CPU (its task storage was made at a switch-out alone), so a second one in a process (the
// agent's or top's after a target restarts), or any one on a quiet host, read 0 ns for a thread
// that ran its file calls without being switched out since the programs were attached. Here
// two one after the other, then two at the same time, each time file calls of a thread it has
// not seen leave a CPU.
TEST(StateAccounting, EachOfTwoInOneProcessTimesFileCallsOfAThreadItHasNotSeenSwitchOut) {
  if (std::string why = test_support::offcpu_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const int fd = unlinked_file();
  ASSERT_GE(fd, 0);
  UnpreemptedWriter writer(fd);
  EXPECT_EQ(writer.fifo_problem(), "") << "the writer must run unpreempted for this test to tell";
  const auto make = [] {
    StateAccountingOptions options;
    options.file_calls = FileCallTiming::kAny;
    auto created = StateAccounting::create(options);
    EXPECT_TRUE(created) << created.error().message;
    std::unique_ptr<StateAccounting> acct;
    if (created) {
      acct = std::move(*created);
      EXPECT_TRUE(acct->set_targets({getpid()}));
      EXPECT_NE(acct->file_hook(), FileCallHook::kNone) << acct->file_hook_problem();
    }
    return acct;
  };
  constexpr std::uint64_t kFloorNs = 10'000'000;  // of 50 ms on the CPU in pwrite

  // One after the other: the second is created after the first is destroyed.
  for (const char* which : {"the first", "the second, after the first is destroyed"}) {
    SCOPED_TRACE(which);
    auto acct = make();
    ASSERT_TRUE(acct);
    writer.round();
    EXPECT_GT(file_cpu_ns(acct->read(), fd, writer.tid()), kFloorNs);
  }

  // Two at the same time: the second is created while the first, which has seen the writer block
  // at the end of its round, runs; both time the next round.
  auto first = make();
  ASSERT_TRUE(first);
  writer.round();
  const std::uint64_t first_before = file_cpu_ns(first->read(), fd, writer.tid());
  EXPECT_GT(first_before, kFloorNs);
  auto second = make();
  ASSERT_TRUE(second);
  writer.round();
  EXPECT_GT(file_cpu_ns(first->read(), fd, writer.tid()), first_before + kFloorNs);
  EXPECT_GT(file_cpu_ns(second->read(), fd, writer.tid()), kFloorNs)
      << "the one created second, while the first runs";
  close(fd);
}

// Thread `tid`'s edges of (call `nr`, object; any object when none is given) in `edges`, by waker:
// kind and tid, with their count.
std::map<std::pair<int, int>, std::uint64_t> wakers_of(const std::vector<WakeEdgeSum>& edges,
                                                       int tid, long nr,
                                                       std::optional<std::uint64_t> object) {
  std::map<std::pair<int, int>, std::uint64_t> out;
  for (const auto& e : edges) {
    if (e.wakee_tid == tid && e.syscall_nr == nr && (!object || e.object == *object)) {
      out[{e.waker_kind, e.waker_tid}] += e.count;
    }
  }
  return out;
}

void pin_to_cpu(int cpu) {
  ASSERT_TRUE(test_support::pin_this_thread_to_cpu(cpu)) << std::strerror(errno);
}

// A timed wait's timeout is the timer's: with a spinning thread pinned to the sleeper's CPU, every
// timer interrupt comes in while the spinner runs (in user mode), and the tracepoint runs in the
// spinner's context. The edge is an interrupt's (kind 2, waker 0), once per wakee and object, not
// the spinner's (kind 0): before task_context.h's test in stateacct.bpf.c each timeout was charged
// to the spinner, and a thousand threads woken by their own timers filled the edge table with
// such pairs. The spinner's own FUTEX_WAKE of the sleeper, from a system call, stays its edge
// (the spinner wakes only once the wake finds the sleeper waiting: a real block and wakeup).
TEST(StateAccounting, ATimersWakeupIsAnInterruptsEdgeNotTheInterruptedThreads) {
  if (std::string why = test_support::offcpu_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const auto owned = accounting_of_this_process();
  ASSERT_TRUE(owned);
  auto& acct = *owned;
  (void)acct.read_edges();

  alignas(4) static std::uint32_t never = 0;    // waited on with a timeout, never woken
  alignas(4) static std::uint32_t handoff = 0;  // woken by the spinner's FUTEX_WAKE
  std::atomic<bool> sleeping_done{false};
  std::atomic<int> sleeper_tid{0}, spinner_tid{0};
  constexpr int kRounds = 60;
  std::thread spinner([&] {
    pin_to_cpu(0);
    spinner_tid = gettid_now();
    while (!sleeping_done.load(std::memory_order_relaxed)) {
    }
    // Wakes the sleeper from this system call once it really waits on `handoff` (the wake found a
    // waiter), then lets it go.
    while (syscall(SYS_futex, &handoff, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0) < 1) {
      sched_yield();
    }
    __atomic_store_n(&handoff, 1u, __ATOMIC_RELEASE);
    (void)syscall(SYS_futex, &handoff, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
  });
  std::thread sleeper([&] {
    pin_to_cpu(0);
    sleeper_tid = gettid_now();
    while (spinner_tid.load() == 0) sched_yield();
    for (int i = 0; i < kRounds; ++i) {
      const timespec ms{0, 1'000'000};
      (void)syscall(SYS_futex, &never, FUTEX_WAIT_PRIVATE, 0, &ms, nullptr, 0);
      (void)syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &ms, nullptr);
    }
    sleeping_done = true;
    // Woken once by the spinner's FUTEX_WAKE with the word still 0, then until it is set.
    while (__atomic_load_n(&handoff, __ATOMIC_ACQUIRE) == 0) {
      (void)syscall(SYS_futex, &handoff, FUTEX_WAIT_PRIVATE, 0, nullptr, nullptr, 0);
    }
  });
  sleeper.join();
  spinner.join();
  const auto edges = acct.read_edges();
  const int sleeper_id = sleeper_tid.load(), spinner_id = spinner_tid.load();

  const auto timeouts =
      wakers_of(edges, sleeper_id, SYS_futex, reinterpret_cast<std::uintptr_t>(&never));
  const auto sleeps = wakers_of(edges, sleeper_id, SYS_clock_nanosleep, std::nullopt);
  std::uint64_t by_interrupt = 0, by_spinner = 0;
  for (const auto* m : {&timeouts, &sleeps}) {
    for (const auto& [who, count] : *m) {
      if (who.first == 2 && who.second == 0) by_interrupt += count;
      if (who.second == spinner_id) by_spinner += count;
    }
  }
  // Each round is two timer wakeups (a timeout and a sleep's end); some may come on an idle CPU 0
  // (the spinner preempted by another task): those are interrupts too.
  EXPECT_GE(by_interrupt, static_cast<std::uint64_t>(kRounds)) << "of " << 2 * kRounds;
  EXPECT_EQ(by_spinner, 0u) << "timer wakeups charged to the spinner it interrupted";

  const auto woken =
      wakers_of(edges, sleeper_id, SYS_futex, reinterpret_cast<std::uintptr_t>(&handoff));
  std::uint64_t from_spinner = 0;
  for (const auto& [who, count] : woken) {
    if (who.first == 0 && who.second == spinner_id) from_spinner += count;
  }
  EXPECT_GE(from_spinner, 1u) << "the spinner's FUTEX_WAKE is its own edge";
}

// Thread `tid`'s voluntary context switches so far (/proc/self/task/TID/status).
long voluntary_switches(int tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("voluntary_ctxt_switches:", 0) == 0) return std::stol(line.substr(24));
  }
  return -1;
}

// Keys that come and go do not fill the kernel's edge table (STATEACCT_MAX_EDGES, 16,384): a
// thread waits on 24,000 futex words in turn, one at a time, each ended by this thread's
// FUTEX_WAKE once the waiter has really switched out, so each is a new edge (waker, wakee, futex,
// word) that never grows again. Read every 1,000 words, as ticks would, the table gives back the
// entries unchanged for two reads once it is half in use: nothing is lost, and the words are
// passed on. Before (entries given back only when their thread ended) the table was full after
// 16,384 words and the rest were lost.
TEST(StateAccounting, EdgesThatStopGrowingAreGivenBackSoNewOnesAreNotLost) {
  if (std::string why = test_support::offcpu_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const auto owned = accounting_of_this_process();
  ASSERT_TRUE(owned);
  auto& acct = *owned;
  (void)acct.read();
  (void)acct.read_edges();
  const auto lost_before = acct.stats().lost;

  constexpr std::size_t kWords = 24'000, kReadEvery = 1'000;
  std::vector<std::uint32_t> words(kWords, 0);
  std::atomic<int> waiter_tid{0};
  // The waiter's voluntary switches before it waits on word `waiting` (set after
  // `switches_before`).
  std::atomic<long> switches_before{0};
  std::atomic<long> waiting{-1};
  std::atomic<std::size_t> done{0};
  std::thread waiter([&] {
    const int self = gettid_now();
    waiter_tid = self;
    for (std::size_t i = 0; i < kWords; ++i) {
      switches_before = voluntary_switches(self);
      waiting = static_cast<long>(i);
      while (__atomic_load_n(&words[i], __ATOMIC_ACQUIRE) == 0) {
        (void)syscall(SYS_futex, &words[i], FUTEX_WAIT_PRIVATE, 0, nullptr, nullptr, 0);
      }
      done = i + 1;
    }
  });
  while (waiter_tid.load() == 0) sched_yield();
  const int self = gettid_now(), wakee = waiter_tid.load();
  std::set<std::uint64_t> woken_words;
  auto take = [&](const std::vector<WakeEdgeSum>& edges) {
    for (const auto& e : edges) {
      if (e.waker_tid == self && e.wakee_tid == wakee && e.syscall_nr == SYS_futex) {
        woken_words.insert(e.object);
      }
    }
  };
  for (std::size_t i = 0; i < kWords; ++i) {
    // Wakes the waiter once it has switched out waiting on words[i] (a block the kernel saw
    // begin: a wake between its queueing and its switch-out would end no block), then lets it go.
    while (waiting.load() != static_cast<long>(i)) sched_yield();
    while (voluntary_switches(wakee) <= switches_before.load()) sched_yield();
    while (syscall(SYS_futex, &words[i], FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0) < 1) {
      sched_yield();
    }
    __atomic_store_n(&words[i], 1u, __ATOMIC_RELEASE);
    (void)syscall(SYS_futex, &words[i], FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
    while (done.load() <= i) sched_yield();
    if ((i + 1) % kReadEvery == 0) {
      (void)acct.read();
      take(acct.read_edges());
    }
  }
  waiter.join();
  (void)acct.read();
  take(acct.read_edges());
  EXPECT_EQ(acct.stats().lost - lost_before, 0u);
  // All but a handful: a few waits in 24,000 still end unseen (0 to 6 here), against 7,616 lost
  // when the table fills.
  EXPECT_GE(woken_words.size(), kWords - kWords / 1'000);
}

// Above the budget, blocks are thinned by length where they end: two threads passing a byte back
// and forth through two pipes (tens of thousands of blocks of microseconds) are thinned, yet the
// passer's blocked time and count, summed with the weights, match what a second accounting of
// the same process without a budget sums at the same time; a thread sleeping 50 ms at a time
// beside them, far above the threshold, has every sleep accounted as it is (an exact count, no
// weight). The thinning of before (1 block in `every`, whatever its length) fails the last: a
// sleep kept counts `every` times.
TEST(StateAccounting, AboveTheBudgetShortBlocksAreThinnedAndLongOnesAccountedAsTheyAre) {
  if (std::string why = test_support::offcpu_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const auto exact = accounting_of_this_process();  // budget 0: every block
  ASSERT_TRUE(exact);
  StateAccountingOptions options;
  options.budget_per_cpu_s = 1'000;  // 10 blocks per CPU per 10 ms window
  auto created = StateAccounting::create(options);
  ASSERT_TRUE(created) << created.error().message;
  auto& thinned = **created;
  ASSERT_TRUE(thinned.set_targets({static_cast<int>(getpid())}));
  int ping[2], pong[2];
  ASSERT_EQ(pipe(ping), 0);
  ASSERT_EQ(pipe(pong), 0);
  constexpr int kSleeps = 20;
  constexpr std::uint64_t kSleepNs = 50'000'000;
  std::atomic<bool> stop{false};
  Blocker passer, sleeper;
  std::thread echo([&] {
    char c = 0;
    while (::read(ping[0], &c, 1) == 1 && c == 'x') (void)!::write(pong[1], &c, 1);
  });
  std::thread pass([&] {
    passer.note_self();
    char c = 'x';
    while (!stop) {
      if (::write(ping[1], &c, 1) != 1 || ::read(pong[0], &c, 1) != 1) break;
    }
  });
  std::thread sleep([&] {
    sleeper.note_self();
    for (int i = 0; i < kSleeps; ++i) {
      timespec ts{0, static_cast<long>(kSleepNs)};
      clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr);
    }
  });
  sleep.join();  // about 1 s
  stop = true;
  pass.join();
  (void)!::write(ping[1], "q", 1);
  echo.join();
  for (int fd : {ping[0], ping[1], pong[0], pong[1]}) close(fd);

  const auto all = exact->read();
  const auto sums = thinned.read();
  const auto st = thinned.stats();
  EXPECT_EQ(exact->stats().thinned_out, 0u);
  EXPECT_GT(st.thinned_out, 0u) << "the passing was not thinned: it made too few blocks";
  EXPECT_GT(st.thin_below_ns_max, 0u);
  // The passer's blocks in read(pong), weighed, against every one of them.
  const StateSum every = read_sum(all, passer.tid, passer.start_ticks, pong[0]);
  const StateSum kept = read_sum(sums, passer.tid, passer.start_ticks, pong[0]);
  ASSERT_GT(every.count, 1'000u);
  const std::string why = "thinned out " + std::to_string(st.thinned_out) + " of " +
                          std::to_string(st.switches) + ", threshold up to " +
                          std::to_string(st.thin_below_ns_max) + " ns";
  EXPECT_NEAR(static_cast<double>(kept.ns), static_cast<double>(every.ns),
              0.10 * static_cast<double>(every.ns))
      << why;
  EXPECT_NEAR(static_cast<double>(kept.count), static_cast<double>(every.count),
              0.15 * static_cast<double>(every.count))
      << why;
  // Every sleep, as it is.
  StateSum slept;
  for (const auto& s : sums) {
    if (s.tid == sleeper.tid && s.syscall_nr == SYS_clock_nanosleep) {
      slept.ns += s.ns;
      slept.count += s.count;
    }
  }
  EXPECT_EQ(slept.count, std::uint64_t{kSleeps}) << why;
  EXPECT_GE(slept.ns, kSleeps * kSleepNs);
  EXPECT_LE(slept.ns, kSleeps * (kSleepNs + 20'000'000));
}

}  // namespace
}  // namespace chokepoint::collect::bpf
