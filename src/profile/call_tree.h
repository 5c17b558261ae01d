#pragma once
// The call tree behind every stack output (render/flamegraph_folded, render/flamegraph_svg,
// render/speedscope): a profile's stacks as sequences of interned frame keys, sorted so that the
// stacks below any one call-tree node form one contiguous run, in the order a flame graph draws
// them (children by key).
//
// The tree is never built as nodes: at 50k distinct stacks it has ~500k nodes, nearly all too
// narrow to draw, and allocating them cost more than everything else. A node is a run of the
// sorted stacks that share their first `depth` keys; `shared_prefix` finds the runs.
//
// Each output names a frame its own way (the key): folded stacks by the frame's folded text, the
// SVG by (name, kind, module), speedscope by (name, file, line). Frames with equal keys are one
// frame of the tree. The caller also says which raw bytes identify a frame (at least as fine as
// the key): a key is computed once per distinct raw frame, never per frame.
//
// Pure functions, no I/O. The tree points into the profile's frames: the profile must outlive it.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "profile/profile.h"

namespace chokepoint::profile {

// The frame a stack without frames gets, so it still shows (and weighs) in every output.
extern const Frame kNoFramesFrame;

// One stack of the profile (value > 0) as key ranks in CallTree::ids.
struct TreeStack {
  std::size_t offset = 0;         // first of its `len` ranks in CallTree::ids
  std::uint32_t len = 0;          // frames, at least 1
  const Frame* frames = nullptr;  // its `len` frames (kNoFramesFrame for an empty stack)
  std::uint64_t value = 0;
  std::uint64_t count = 0;
};

// What every CallTree holds whatever its key type; the functions below work on it.
struct StackRuns {
  std::vector<std::uint32_t> ids;  // every stack's key ranks, outermost first, one flat array
  std::vector<TreeStack> stacks;   // sorted by their ranks, lexicographically (a prefix first)
  std::uint64_t total_value = 0;   // sum of the stacks' values
  std::uint64_t total_count = 0;   // sum of the stacks' counts

  const std::uint32_t* ranks(const TreeStack& s) const { return ids.data() + s.offset; }
  // Whether two stacks have the same key ranks, frame for frame.
  bool same_path(const TreeStack& a, const TreeStack& b) const;
};

template <typename Key>
struct CallTree : StackRuns {
  std::vector<Key> keys;  // distinct and sorted by Key's operator<: a frame's rank is its index
};

// For each sorted stack, how many leading ranks it shares with the one before it (0 for the
// first): stacks [a, b) are below one node at depth d when shared_prefix[i] >= d for a < i < b.
std::vector<std::uint32_t> shared_prefix(const StackRuns& runs);

// Sums the values and counts of adjacent stacks with the same path into the first of them
// (`frames` points at that first stack's frames), leaving one stack per distinct path.
void merge_same_paths(StackRuns& runs);

// The raw bytes build_call_tree interns a frame by: its name, kind and module, and with
// `with_location` its file and line too. Appended to buf.
void append_frame_bytes(const Frame& frame, std::string& buf, bool with_location);

namespace detail {
// Sorts `runs.stacks` by their ranks (rank order is key order).
void sort_stacks(StackRuns& runs);
}  // namespace detail

// Builds the tree of `profile`'s stacks with value > 0. raw_of(const Frame&, std::string& buf)
// writes the bytes that identify a frame into buf (frames with equal bytes must have equal keys);
// key_of(const Frame&) -> Key names it. Key needs operator< (a strict total order) and ==.
template <typename Key, typename RawOf, typename KeyOf>
CallTree<Key> build_call_tree(const Profile& profile, RawOf raw_of, KeyOf key_of) {
  CallTree<Key> tree;
  // Pass 1: a raw id per distinct raw frame, by hashing its bytes once per frame; the key is
  // built only per distinct raw frame. (Per-stack vectors and per-frame strings made allocation
  // the larger part of the cost at 50k stacks.)
  std::unordered_map<std::string, std::uint32_t> raw_ids;
  std::vector<Key> raw_keys;
  std::size_t frame_total = 0;
  for (const Stack& s : profile.stacks) frame_total += s.frames.empty() ? 1 : s.frames.size();
  tree.ids.reserve(frame_total);
  tree.stacks.reserve(profile.stacks.size());
  std::string buf;
  for (const Stack& stack : profile.stacks) {
    if (stack.value == 0) continue;
    TreeStack s;
    s.offset = tree.ids.size();
    s.frames = stack.frames.empty() ? &kNoFramesFrame : stack.frames.data();
    s.len = stack.frames.empty() ? 1 : static_cast<std::uint32_t>(stack.frames.size());
    s.value = stack.value;
    s.count = stack.count;
    for (std::uint32_t i = 0; i < s.len; ++i) {
      buf.clear();
      raw_of(s.frames[i], buf);
      auto [it, added] = raw_ids.try_emplace(buf, static_cast<std::uint32_t>(raw_keys.size()));
      if (added) raw_keys.push_back(key_of(s.frames[i]));
      tree.ids.push_back(it->second);
    }
    tree.total_value += s.value;
    tree.total_count += s.count;
    tree.stacks.push_back(s);
  }

  // Raw ids become ranks of their keys; raw frames with equal keys share a rank.
  std::vector<std::uint32_t> order(raw_keys.size());
  for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](std::uint32_t a, std::uint32_t b) { return raw_keys[a] < raw_keys[b]; });
  std::vector<std::uint32_t> rank(raw_keys.size());
  for (std::uint32_t i = 0; i < order.size(); ++i) {
    if (i == 0 || !(raw_keys[order[i]] == tree.keys.back())) {
      tree.keys.push_back(std::move(raw_keys[order[i]]));
    }
    rank[order[i]] = static_cast<std::uint32_t>(tree.keys.size() - 1);
  }
  for (std::uint32_t& id : tree.ids) id = rank[id];
  detail::sort_stacks(tree);
  return tree;
}

}  // namespace chokepoint::profile
