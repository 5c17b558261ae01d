// build_call_tree: the stacks as key ranks, sorted so every call-tree node is one run; frames
// with equal keys share a rank; zero-value stacks left out; an empty stack gets kNoFramesFrame.
#include "profile/call_tree.h"

#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <vector>

namespace chokepoint::profile {
namespace {

Stack stack_of(std::vector<std::string> names, std::uint64_t value, std::uint64_t count = 1) {
  Stack s;
  for (std::string& n : names)
    s.frames.push_back(Frame{std::move(n), FrameKind::kUser, "", "", 0, ""});
  s.value = value;
  s.count = count;
  return s;
}

// Keyed by the name with case folded away, so "Main" and "main" are one key; raw by the name.
CallTree<std::string> tree_of(const Profile& p) {
  return build_call_tree<std::string>(
      p, [](const Frame& f, std::string& buf) { buf += f.name; },
      [](const Frame& f) {
        std::string k = f.name;
        for (char& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return k;
      });
}

std::vector<std::string> path(const CallTree<std::string>& t, const TreeStack& s) {
  std::vector<std::string> out;
  for (std::uint32_t i = 0; i < s.len; ++i) out.push_back(t.keys[t.ranks(s)[i]]);
  return out;
}

TEST(CallTree, SortsStacksByKeySoEachNodeIsOneRun) {
  Profile p;
  p.stacks = {stack_of({"main", "b"}, 5, 2), stack_of({"main", "a", "x"}, 3),
              stack_of({"Main", "a"}, 2), stack_of({"idle"}, 0), stack_of({"main"}, 1)};
  const CallTree<std::string> t = tree_of(p);
  EXPECT_EQ(t.keys, (std::vector<std::string>{"a", "b", "main", "x"}));  // "idle" weighs 0
  ASSERT_EQ(t.stacks.size(), 4u);
  EXPECT_EQ(path(t, t.stacks[0]), (std::vector<std::string>{"main"}));
  EXPECT_EQ(path(t, t.stacks[1]), (std::vector<std::string>{"main", "a"}));
  EXPECT_EQ(path(t, t.stacks[2]), (std::vector<std::string>{"main", "a", "x"}));
  EXPECT_EQ(path(t, t.stacks[3]), (std::vector<std::string>{"main", "b"}));
  EXPECT_EQ(t.stacks[1].frames[0].name, "Main");  // the stack's own frames, not the key's
  EXPECT_EQ(t.total_value, 11u);
  EXPECT_EQ(t.total_count, 5u);
  EXPECT_EQ(shared_prefix(t), (std::vector<std::uint32_t>{0, 1, 2, 1}));
}

TEST(CallTree, MergeSamePathsSumsStacksWhoseKeysAgree) {
  Profile p;
  p.stacks = {stack_of({"main", "f"}, 4, 1), stack_of({"MAIN", "F"}, 6, 2),
              stack_of({"main", "g"}, 1, 1)};
  CallTree<std::string> t = tree_of(p);
  ASSERT_EQ(t.stacks.size(), 3u);
  merge_same_paths(t);
  ASSERT_EQ(t.stacks.size(), 2u);
  EXPECT_EQ(path(t, t.stacks[0]), (std::vector<std::string>{"main", "f"}));
  EXPECT_EQ(t.stacks[0].value, 10u);
  EXPECT_EQ(t.stacks[0].count, 3u);
  EXPECT_EQ(t.stacks[1].value, 1u);
}

TEST(CallTree, AnEmptyStackIsTheNoFramesFrame) {
  Profile p;
  p.stacks = {stack_of({}, 7)};
  const CallTree<std::string> t = tree_of(p);
  ASSERT_EQ(t.stacks.size(), 1u);
  EXPECT_EQ(t.stacks[0].len, 1u);
  EXPECT_EQ(t.stacks[0].frames, &kNoFramesFrame);
  EXPECT_EQ(t.keys, (std::vector<std::string>{"[no frames]"}));
  EXPECT_EQ(t.total_value, 7u);
}

TEST(CallTree, AnEmptyProfileIsAnEmptyTree) {
  const CallTree<std::string> t = tree_of(Profile{});
  EXPECT_TRUE(t.keys.empty());
  EXPECT_TRUE(t.stacks.empty());
  EXPECT_TRUE(shared_prefix(t).empty());
  EXPECT_EQ(t.total_value, 0u);
}

}  // namespace
}  // namespace chokepoint::profile
