#include "render/flamegraph_folded.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <iterator>
#include <string_view>

#include "profile/call_tree.h"

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
  // The shared call tree, keyed by each frame's folded text: names that fold alike ("a;b",
  // "a:b") are one key, so their stacks merge; the output is written once, reserved to its exact
  // size. (At 50k stacks, sorting the lines as text touched 31 MB at random and cost three times
  // more.)
  profile::CallTree<std::string> tree = profile::build_call_tree<std::string>(
      profile,
      [](const profile::Frame& f, std::string& buf) {
        buf += f.name;
        buf += '\0';
        buf += suffix(f.kind);
      },
      [](const profile::Frame& f) { return folded_frame_name(f); });
  // Stacks that differ only in what folding drops (file:line, module) become one line.
  profile::merge_same_paths(tree);

  std::size_t out_bytes = 0;
  for (const profile::TreeStack& s : tree.stacks) {
    for (std::uint32_t i = 0; i < s.len; ++i) out_bytes += tree.keys[tree.ranks(s)[i]].size() + 1;
    out_bytes += 21;  // ' ', up to 20 digits, '\n' (one ';' fewer than frames, counted above)
  }
  std::string out;
  out.reserve(out_bytes);
  char digits[24];
  for (const profile::TreeStack& s : tree.stacks) {
    for (std::uint32_t i = 0; i < s.len; ++i) {
      if (i != 0) out += ';';
      out += tree.keys[tree.ranks(s)[i]];
    }
    out += ' ';
    const auto [end, ec] = std::to_chars(std::begin(digits), std::end(digits), s.value);
    (void)ec;  // 24 chars hold any uint64
    out.append(digits, end);
    out += '\n';
  }
  return out;
}

}  // namespace chokepoint::render
