// Which fds of the exact mode's sums the collector resolves at a tick (FdNaming): each (pid,
// call, fd) once, again when its sum moves 10 s after it was named (fd numbers are reused), at
// most 64 a tick, none for calls without an fd; a process that leaves the target is forgotten.
#include <gtest/gtest.h>
#include <sys/syscall.h>

#include <string>
#include <vector>

#include "collect/sampler/exact_accounting.h"

namespace chokepoint::collect::sampler {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;

model::ExactWait sum(int pid, long nr, std::uint64_t object) {
  model::ExactWait w;
  w.pid = pid;
  w.tid = pid;
  w.syscall_nr = nr;
  w.object = object;
  return w;
}

// The fds resolved: every call of the namer, as "pid/nr/fd".
struct Namer {
  std::vector<std::string> calls;
  FdNaming::Namer fn() {
    return [this](int pid, long nr, std::uint64_t fd) {
      calls.push_back(std::to_string(pid) + "/" + std::to_string(nr) + "/" + std::to_string(fd));
      if (fd == 99) return std::pair{model::FdRole::kUnknown, std::string()};  // closed by now
      return std::pair{model::FdRole::kRegularFile, "/data/" + std::to_string(fd)};
    };
  }
};

model::ExactSample sample(std::vector<model::ExactWait> waits) {
  model::ExactSample x;
  x.waits = std::move(waits);
  return x;
}

TEST(FdNaming, EachFdOfTheSumsIsNamedOnceAndCallsWithoutAnFdNever) {
  FdNaming naming;
  Namer namer;
  auto x =
      sample({sum(100, SYS_fdatasync, 7), sum(100, SYS_futex, 0x1000), sum(100, SYS_read, 99)});
  naming.name(x, {100}, 1 * kSecond, namer.fn());
  EXPECT_EQ(namer.calls, (std::vector<std::string>{"100/" + std::to_string(SYS_fdatasync) + "/7",
                                                   "100/" + std::to_string(SYS_read) + "/99"}));
  ASSERT_EQ(x.fd_names.size(), 1u);  // fd 99 could not be told
  EXPECT_EQ(x.fd_names[0].pid, 100);
  EXPECT_EQ(x.fd_names[0].fd, 7u);
  EXPECT_EQ(x.fd_names[0].role, model::FdRole::kRegularFile);
  EXPECT_EQ(x.fd_names[0].detail, "/data/7");
  // The same sums moving again within 10 s: nothing looked up.
  for (std::int64_t s : {2, 5, 10}) {
    auto again = sample({sum(100, SYS_fdatasync, 7), sum(100, SYS_read, 99)});
    naming.name(again, {100}, s * kSecond, namer.fn());
    EXPECT_TRUE(again.fd_names.empty()) << s;
  }
  EXPECT_EQ(namer.calls.size(), 2u);
  // Another call on the same fd is a key of its own.
  auto write = sample({sum(100, SYS_write, 7)});
  naming.name(write, {100}, 10 * kSecond, namer.fn());
  EXPECT_EQ(write.fd_names.size(), 1u);
}

TEST(FdNaming, AnFdIsNamedAgainWhenItsSumMovesTenSecondsAfterItsName) {
  FdNaming naming;
  Namer namer;
  auto first = sample({sum(100, SYS_read, 7)});
  naming.name(first, {100}, 1 * kSecond, namer.fn());
  auto early = sample({sum(100, SYS_read, 7)});
  naming.name(early, {100}, 1 * kSecond + FdNaming::kRenameNs - 1, namer.fn());
  EXPECT_TRUE(early.fd_names.empty());
  auto late = sample({sum(100, SYS_read, 7)});
  naming.name(late, {100}, 1 * kSecond + FdNaming::kRenameNs, namer.fn());
  ASSERT_EQ(late.fd_names.size(), 1u);
  // A sum that does not move is not looked at: nothing is named for it however long after.
  auto quiet = sample({});
  naming.name(quiet, {100}, 60 * kSecond, namer.fn());
  EXPECT_TRUE(quiet.fd_names.empty());
  EXPECT_EQ(namer.calls.size(), 2u);
}

TEST(FdNaming, AtMost64ATickTheRestAtTheNext) {
  FdNaming naming;
  Namer namer;
  std::vector<model::ExactWait> waits;
  for (std::uint64_t fd = 1000; fd < 1100; ++fd) waits.push_back(sum(100, SYS_read, fd));
  auto x = sample(waits);
  naming.name(x, {100}, kSecond, namer.fn());
  EXPECT_EQ(x.fd_names.size(), FdNaming::kPerTick);
  EXPECT_EQ(x.fd_names.front().fd, 1000u);  // the oldest first
  auto next = sample({});
  naming.name(next, {100}, 2 * kSecond, namer.fn());
  EXPECT_EQ(next.fd_names.size(), 100 - FdNaming::kPerTick);
  EXPECT_EQ(next.fd_names.back().fd, 1099u);
}

TEST(FdNaming, AProcessThatLeavesTheTargetIsForgotten) {
  FdNaming naming;
  Namer namer;
  std::vector<model::ExactWait> waits = {sum(100, SYS_read, 7)};
  for (std::uint64_t fd = 1000; fd < 1100; ++fd) waits.push_back(sum(200, SYS_read, fd));
  auto x = sample(waits);
  naming.name(x, {100, 200}, kSecond, namer.fn());
  EXPECT_EQ(x.fd_names.size(), FdNaming::kPerTick);
  // Process 200 went with 37 of its fds still to name: none of them is looked up.
  auto after = sample({});
  naming.name(after, {100}, 2 * kSecond, namer.fn());
  EXPECT_TRUE(after.fd_names.empty());
  // A new process with that pid: its fds are named from the start.
  auto back = sample({sum(200, SYS_read, 1000)});
  naming.name(back, {100, 200}, 3 * kSecond, namer.fn());
  ASSERT_EQ(back.fd_names.size(), 1u);
  EXPECT_EQ(back.fd_names[0].pid, 200);
}

}  // namespace
}  // namespace chokepoint::collect::sampler
