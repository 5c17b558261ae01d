// StackAggregator: address stacks in, symbolized stacks (outermost first) out, each distinct
// address resolved once, return addresses looked up at -1.
#include "profile/aggregate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace chokepoint::profile {
namespace {

// Names addresses from a table and records every lookup.
class TableResolver : public Resolver {
 public:
  std::map<std::uint64_t, std::string> user_names, kernel_names;
  std::vector<std::pair<int, std::uint64_t>> user_calls;
  std::vector<std::uint64_t> kernel_calls;
  std::vector<int> attached;
  std::set<std::uint64_t> mapped_after_attach;  // "not mapped" until attach() was called

  void attach(int pid) override { attached.push_back(pid); }
  Frame user(int pid, std::uint64_t address) override {
    user_calls.emplace_back(pid, address);
    Frame f;
    if (mapped_after_attach.count(address) &&
        std::find(attached.begin(), attached.end(), pid) == attached.end()) {
      f.kind = FrameKind::kUnresolved;
      f.name = "[unknown]";
      f.unresolved = "not mapped";
      return f;
    }
    auto it = user_names.find(address);
    if (it == user_names.end()) {
      f.kind = FrameKind::kUnresolved;
      f.name = "[a.out+0x" + std::to_string(address) + "]";
      f.unresolved = "stripped";
      return f;
    }
    f.name = it->second;
    f.module = "/bin/a.out";
    return f;
  }
  Frame kernel(std::uint64_t address) override {
    kernel_calls.push_back(address);
    Frame f;
    f.kind = FrameKind::kKernel;
    f.module = "[kernel]";
    auto it = kernel_names.find(address);
    f.name = it == kernel_names.end() ? "?" : it->second;
    return f;
  }
};

std::vector<std::string> names(const Stack& s) {
  std::vector<std::string> out;
  for (const auto& f : s.frames) out.push_back(f.name);
  return out;
}

TEST(StackAggregator, BuildsOutermostFirstWithProcessRootAndKernelBelowUser) {
  TableResolver r;
  // Leaf ip 0x100 is looked up as is; return addresses 0x201, 0x301 at -1.
  r.user_names = {{0x100, "leaf"}, {0x200, "caller"}, {0x300, "main"}};
  r.kernel_names = {{0xff10, "do_sys_poll"}, {0xff1f, "entry_SYSCALL_64"}};
  StackAggregator agg;
  std::vector<std::uint64_t> user = {0x100, 0x201, 0x301};
  std::vector<std::uint64_t> kernel = {0xff10, 0xff20};
  agg.add({.pid = 7,
           .tid = 8,
           .process_name = "svc",
           .thread_name = "w",
           .kernel_ips = kernel,
           .user_ips = user});
  Profile p;
  agg.build(r, p);
  ASSERT_EQ(p.stacks.size(), 1u);
  EXPECT_EQ(names(p.stacks[0]), (std::vector<std::string>{"svc (7)", "main", "caller", "leaf",
                                                          "entry_SYSCALL_64", "do_sys_poll"}));
  EXPECT_EQ(p.stacks[0].frames[0].kind, FrameKind::kProcess);
  EXPECT_EQ(p.stacks[0].frames[4].kind, FrameKind::kKernel);
  EXPECT_EQ(p.stacks[0].value, 1u);
}

TEST(StackAggregator, CountsIdenticalStacksOnceAndResolvesEachAddressOnce) {
  TableResolver r;
  r.user_names = {{0x100, "a"}, {0x200, "b"}, {0x110, "a2"}};
  StackAggregator agg;
  std::vector<std::uint64_t> s1 = {0x100, 0x201};
  std::vector<std::uint64_t> s2 = {0x110, 0x201};
  for (int i = 0; i < 1000; ++i) agg.add({.pid = 1, .tid = 1 + i % 3, .user_ips = s1});
  for (int i = 0; i < 10; ++i)
    agg.add({.pid = 1, .tid = 1, .user_ips = s2, .value = 5, .count = 1});
  EXPECT_EQ(agg.distinct_stacks(), 2u);  // threads merge without thread frames
  EXPECT_EQ(agg.total_value(), 1050u);
  Profile p;
  agg.build(r, p);
  ASSERT_EQ(p.stacks.size(), 2u);
  std::uint64_t total = 0;
  for (const auto& s : p.stacks) total += s.value;
  EXPECT_EQ(total, 1050u);
  // 0x100, 0x110, and 0x200 (shared caller) once each.
  EXPECT_EQ(r.user_calls.size(), 3u);
}

TEST(StackAggregator, SameAddressInTwoProcessesIsTwoLookups) {
  TableResolver r;
  r.user_names = {{0x100, "f"}};
  StackAggregator agg;
  std::vector<std::uint64_t> s = {0x100};
  agg.add({.pid = 1, .tid = 1, .process_name = "a", .user_ips = s});
  agg.add({.pid = 2, .tid = 2, .process_name = "b", .user_ips = s});
  Profile p;
  agg.build(r, p);
  EXPECT_EQ(p.stacks.size(), 2u);
  EXPECT_EQ(r.user_calls.size(), 2u);
  EXPECT_EQ(agg.pids(), (std::vector<int>{1, 2}));
}

TEST(StackAggregator, ThreadFramesSplitByThread) {
  TableResolver r;
  r.user_names = {{0x100, "f"}};
  StackAggregator agg({.thread_frames = true});
  std::vector<std::uint64_t> s = {0x100};
  agg.add({.pid = 1, .tid = 1, .process_name = "svc", .thread_name = "svc", .user_ips = s});
  agg.add({.pid = 1, .tid = 2, .process_name = "svc", .thread_name = "worker", .user_ips = s});
  agg.add({.pid = 1, .tid = 3, .process_name = "svc", .user_ips = s});
  Profile p;
  agg.build(r, p);
  ASSERT_EQ(p.stacks.size(), 3u);
  std::vector<std::string> threads;
  for (const auto& st : p.stacks) {
    ASSERT_EQ(st.frames.size(), 3u);
    EXPECT_EQ(st.frames[1].kind, FrameKind::kThread);
    threads.push_back(st.frames[1].name);
  }
  std::sort(threads.begin(), threads.end());
  EXPECT_EQ(threads, (std::vector<std::string>{"[3]", "svc (1)", "worker (2)"}));
}

TEST(StackAggregator, UnknownProcessNameAndEmptyChain) {
  TableResolver r;
  StackAggregator agg;
  agg.add({.pid = 42, .tid = 42});
  Profile p;
  agg.build(r, p);
  ASSERT_EQ(p.stacks.size(), 1u);
  EXPECT_EQ(names(p.stacks[0]), (std::vector<std::string>{"[42]"}));
}

TEST(StackAggregator, LatestProcessNameWins) {
  TableResolver r;
  StackAggregator agg;
  agg.add({.pid = 5, .tid = 5, .process_name = "sh"});
  agg.add({.pid = 5, .tid = 5, .process_name = "server"});  // after exec
  Profile p;
  agg.build(r, p);
  ASSERT_EQ(p.stacks.size(), 1u);
  EXPECT_EQ(p.stacks[0].frames[0].name, "server (5)");
  EXPECT_EQ(p.stacks[0].value, 2u);
}

TEST(StackAggregator, NotMappedAddressTriggersOneReattach) {
  TableResolver r;
  r.user_names = {{0x500, "from_dlopen"}, {0x600, "other"}};
  r.mapped_after_attach = {0x500, 0x600};
  StackAggregator agg;
  std::vector<std::uint64_t> a = {0x500};
  std::vector<std::uint64_t> b = {0x600};
  agg.add({.pid = 3, .tid = 3, .user_ips = a});
  agg.add({.pid = 3, .tid = 3, .user_ips = b});
  Profile p;
  agg.build(r, p);
  EXPECT_EQ(r.attached, (std::vector<int>{3}));  // once, not per address
  for (const auto& s : p.stacks) EXPECT_EQ(s.frames.back().kind, FrameKind::kUser);
}

TEST(StackAggregator, UnresolvedFramesKeepTheirReason) {
  TableResolver r;
  StackAggregator agg;
  std::vector<std::uint64_t> s = {0x999};
  agg.add({.pid = 1, .tid = 1, .user_ips = s});
  Profile p;
  agg.build(r, p);
  ASSERT_EQ(p.stacks.size(), 1u);
  EXPECT_EQ(p.stacks[0].frames.back().kind, FrameKind::kUnresolved);
  EXPECT_EQ(p.stacks[0].frames.back().unresolved, "stripped");
}

TEST(ProcessFrameName, Formats) {
  EXPECT_EQ(process_frame_name("nginx", 12), "nginx (12)");
  EXPECT_EQ(process_frame_name("", 12), "[12]");
}

TEST(ThreadFrames, TheirTidIsReadAndTheyCanBeLeftOut) {
  const Frame named{"lab-stage (77)", FrameKind::kThread, "", "", 0, ""};
  const Frame bare{"[79]", FrameKind::kThread, "", "", 0, ""};
  const Frame hostile{"x (5) (oops)", FrameKind::kThread, "", "", 0, ""};
  const Frame user{"main", FrameKind::kUser, "/bin/x", "", 0, ""};
  EXPECT_EQ(thread_frame_tid(named), std::optional<int>(77));
  EXPECT_EQ(thread_frame_tid(bare), std::optional<int>(79));
  EXPECT_EQ(thread_frame_tid(hostile), std::nullopt);
  EXPECT_EQ(thread_frame_tid(user), std::nullopt);
  const Frame proc{"x (1)", FrameKind::kProcess, "", "", 0, ""};
  Profile p;
  p.stacks = {{{proc, named, user}, 5, 5}, {{proc, bare, user}, 3, 2}, {{proc, bare}, 1, 1}};
  const Profile merged = without_thread_frames(p);
  ASSERT_EQ(merged.stacks.size(), 2u);
  EXPECT_EQ(merged.stacks[0].frames, (std::vector<Frame>{proc, user}));
  EXPECT_EQ(merged.stacks[0].value, 8u);
  EXPECT_EQ(merged.stacks[0].count, 7u);
  EXPECT_EQ(merged.stacks[1].frames, (std::vector<Frame>{proc}));
}

}  // namespace
}  // namespace chokepoint::profile
