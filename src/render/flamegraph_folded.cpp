#include "render/flamegraph_folded.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <iterator>
#include <string_view>
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

void append_frame(std::string& out, const profile::Frame& frame) {
  append_sanitized(out, frame.name);
  // The annotations stackcollapse-perf.pl --all writes and flamegraph.pl colours by.
  if (frame.kind == profile::FrameKind::kKernel) out += "_[k]";
  if (frame.kind == profile::FrameKind::kJit) out += "_[j]";
}

}  // namespace

std::string folded_frame_name(const profile::Frame& frame) {
  std::string out;
  append_frame(out, frame);
  return out;
}

std::string folded(const profile::Profile& profile) {
  // Every stack's text goes into one arena, sorted as views into it, then copied once into an
  // output reserved to its exact size: two large allocations in all, whatever the stack count
  // (per-line strings made allocation the larger part of the cost at 50k stacks).
  std::size_t arena_bytes = 0;
  for (const profile::Stack& stack : profile.stacks) {
    if (stack.value == 0) continue;
    arena_bytes += 16;  // "[no frames]"
    for (const profile::Frame& f : stack.frames) arena_bytes += f.name.size() + 16;
  }
  std::string arena;
  arena.reserve(arena_bytes);
  struct Line {
    std::size_t offset, size;
    std::uint64_t value;
  };
  std::vector<Line> lines;
  lines.reserve(profile.stacks.size());
  for (const profile::Stack& stack : profile.stacks) {
    if (stack.value == 0) continue;
    const std::size_t offset = arena.size();
    if (stack.frames.empty()) arena += "[no frames]";
    for (std::size_t i = 0; i < stack.frames.size(); ++i) {
      if (i != 0) arena += ';';
      append_frame(arena, stack.frames[i]);
    }
    lines.push_back({offset, arena.size() - offset, stack.value});
  }
  const std::string_view text(arena);
  auto line_text = [&](const Line& l) { return text.substr(l.offset, l.size); };
  std::sort(lines.begin(), lines.end(),
            [&](const Line& a, const Line& b) { return line_text(a) < line_text(b); });

  // Stacks that differ only in what folding drops (file:line, module) become one line.
  std::size_t merged = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (merged != 0 && line_text(lines[merged - 1]) == line_text(lines[i])) {
      lines[merged - 1].value += lines[i].value;
    } else {
      lines[merged++] = lines[i];
    }
  }
  lines.resize(merged);

  std::size_t out_bytes = 0;
  for (const Line& l : lines) out_bytes += l.size + 22;  // ' ', up to 20 digits, '\n'
  std::string out;
  out.reserve(out_bytes);
  char digits[24];
  for (const Line& l : lines) {
    out += line_text(l);
    out += ' ';
    const auto [end, ec] = std::to_chars(std::begin(digits), std::end(digits), l.value);
    (void)ec;  // 24 chars hold any uint64
    out.append(digits, end);
    out += '\n';
  }
  return out;
}

}  // namespace chokepoint::render
