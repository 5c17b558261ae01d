#include "render/flamegraph_folded.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <iterator>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace chokepoint::render {

namespace {

// flamegraph.pl splits a line at ';' and takes the number after the last blank as the value, so
// a name must not hold ';' or a line break; other control characters would garble the SVG text.
void append_sanitized(std::string& out, std::string_view name) {
  if (name.empty()) {
    out += "[unknown]";
    return;
  }
  // Nearly every name is clean: check first, then copy it whole.
  const bool clean = std::none_of(name.begin(), name.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return c == ';' || u < 0x20 || u == 0x7f;
  });
  if (clean) {
    out += name;
    return;
  }
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (c == ';') {
      out += ':';
    } else if (u < 0x20 || u == 0x7f) {
      out += ' ';
    } else {
      out += c;
    }
  }
}

// The annotations stackcollapse-perf.pl --all writes and flamegraph.pl colours by.
std::string_view suffix(profile::FrameKind kind) {
  if (kind == profile::FrameKind::kKernel) return "_[k]";
  if (kind == profile::FrameKind::kJit) return "_[j]";
  return {};
}

void append_frame(std::string& out, const profile::Frame& frame) {
  append_sanitized(out, frame.name);
  out += suffix(frame.kind);
}

}  // namespace

std::string folded_frame_name(const profile::Frame& frame) {
  std::string out;
  append_frame(out, frame);
  return out;
}

std::string folded(const profile::Profile& profile) {
  // Each distinct frame text is built once; stacks become sequences of text ranks in one flat
  // array, sorted as integers, and the output is written once, reserved to its exact size. (At
  // 50k stacks, sorting the lines as text touched 31 MB at random and cost three times more.)
  static const profile::Frame kNoFrames{"[no frames]", profile::FrameKind::kUser, "", "", 0, ""};
  std::unordered_map<std::string, std::uint32_t> raw_ids;  // name + '\0' + kind
  std::vector<std::string> texts;                          // folded text per raw id
  std::vector<std::uint32_t> ids;
  struct Line {
    std::size_t offset;
    std::uint32_t len;
    std::uint64_t value;
  };
  std::vector<Line> lines;
  lines.reserve(profile.stacks.size());
  std::string buf;
  for (const profile::Stack& stack : profile.stacks) {
    if (stack.value == 0) continue;
    const bool empty = stack.frames.empty();
    const std::size_t len = empty ? 1 : stack.frames.size();
    lines.push_back({ids.size(), static_cast<std::uint32_t>(len), stack.value});
    for (std::size_t i = 0; i < len; ++i) {
      const profile::Frame& f = empty ? kNoFrames : stack.frames[i];
      buf.assign(f.name);
      buf += '\0';
      buf += suffix(f.kind);
      auto [it, added] = raw_ids.try_emplace(buf, static_cast<std::uint32_t>(texts.size()));
      if (added) texts.push_back(folded_frame_name(f));
      ids.push_back(it->second);
    }
  }

  // Ranks by text; names that sanitize alike ("a;b", "a:b") share a rank, so their stacks merge.
  std::vector<std::uint32_t> order(texts.size());
  for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](std::uint32_t a, std::uint32_t b) { return texts[a] < texts[b]; });
  std::vector<std::uint32_t> rank(texts.size());
  std::vector<std::string_view> text_of_rank;
  for (std::uint32_t i = 0; i < order.size(); ++i) {
    if (i == 0 || texts[order[i]] != texts[order[i - 1]]) text_of_rank.push_back(texts[order[i]]);
    rank[order[i]] = static_cast<std::uint32_t>(text_of_rank.size() - 1);
  }
  for (std::uint32_t& id : ids) id = rank[id];

  auto begin_of = [&](const Line& l) {
    return ids.begin() + static_cast<std::ptrdiff_t>(l.offset);
  };
  auto end_of = [&](const Line& l) { return begin_of(l) + l.len; };
  std::sort(lines.begin(), lines.end(), [&](const Line& a, const Line& b) {
    return std::lexicographical_compare(begin_of(a), end_of(a), begin_of(b), end_of(b));
  });

  // Stacks that differ only in what folding drops (file:line, module) become one line.
  std::size_t merged = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (merged != 0 && std::equal(begin_of(lines[merged - 1]), end_of(lines[merged - 1]),
                                  begin_of(lines[i]), end_of(lines[i]))) {
      lines[merged - 1].value += lines[i].value;
    } else {
      lines[merged++] = lines[i];
    }
  }
  lines.resize(merged);

  std::size_t out_bytes = 0;
  for (const Line& l : lines) {
    for (auto it = begin_of(l); it != end_of(l); ++it) out_bytes += text_of_rank[*it].size() + 1;
    out_bytes += 21;  // ' ', up to 20 digits, '\n' (one ';' fewer than frames, counted above)
  }
  std::string out;
  out.reserve(out_bytes);
  char digits[24];
  for (const Line& l : lines) {
    for (auto it = begin_of(l); it != end_of(l); ++it) {
      if (it != begin_of(l)) out += ';';
      out += text_of_rank[*it];
    }
    out += ' ';
    const auto [end, ec] = std::to_chars(std::begin(digits), std::end(digits), l.value);
    (void)ec;  // 24 chars hold any uint64
    out.append(digits, end);
    out += '\n';
  }
  return out;
}

}  // namespace chokepoint::render
