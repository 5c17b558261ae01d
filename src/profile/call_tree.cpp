#include "profile/call_tree.h"

namespace chokepoint::profile {

const Frame kNoFramesFrame{
    "[no frames]", FrameKind::kUnresolved, "", "", 0, "no frames were captured"};

bool StackRuns::same_path(const TreeStack& a, const TreeStack& b) const {
  return std::equal(ranks(a), ranks(a) + a.len, ranks(b), ranks(b) + b.len);
}

std::vector<std::uint32_t> shared_prefix(const StackRuns& runs) {
  std::vector<std::uint32_t> out(runs.stacks.size(), 0);
  for (std::size_t i = 1; i < runs.stacks.size(); ++i) {
    const TreeStack& prev = runs.stacks[i - 1];
    const TreeStack& cur = runs.stacks[i];
    const std::uint32_t m = std::min(prev.len, cur.len);
    const std::uint32_t* a = runs.ranks(prev);
    const std::uint32_t* b = runs.ranks(cur);
    std::uint32_t k = 0;
    while (k < m && a[k] == b[k]) ++k;
    out[i] = k;
  }
  return out;
}

void merge_same_paths(StackRuns& runs) {
  std::size_t kept = 0;
  for (std::size_t i = 0; i < runs.stacks.size(); ++i) {
    if (kept != 0 && runs.same_path(runs.stacks[kept - 1], runs.stacks[i])) {
      runs.stacks[kept - 1].value += runs.stacks[i].value;
      runs.stacks[kept - 1].count += runs.stacks[i].count;
    } else {
      runs.stacks[kept++] = runs.stacks[i];
    }
  }
  runs.stacks.resize(kept);
}

void append_frame_bytes(const Frame& frame, std::string& buf, bool with_location) {
  buf += frame.name;
  buf += '\0';
  buf += static_cast<char>('0' + static_cast<int>(frame.kind));
  buf += frame.module;
  if (!with_location) return;
  buf += '\0';
  buf += frame.file;
  buf += '\0';
  buf += std::to_string(frame.line);
}

namespace detail {

void sort_stacks(StackRuns& runs) {
  std::sort(runs.stacks.begin(), runs.stacks.end(), [&](const TreeStack& a, const TreeStack& b) {
    return std::lexicographical_compare(runs.ranks(a), runs.ranks(a) + a.len, runs.ranks(b),
                                        runs.ranks(b) + b.len);
  });
}

}  // namespace detail

}  // namespace chokepoint::profile
