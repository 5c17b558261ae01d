#include "render/flamegraph_folded.h"

#include <algorithm>
#include <cstdint>
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
  std::vector<std::pair<std::string, std::uint64_t>> lines;
  lines.reserve(profile.stacks.size());
  for (const profile::Stack& stack : profile.stacks) {
    if (stack.value == 0) continue;
    std::string text;
    if (stack.frames.empty()) text = "[no frames]";
    for (std::size_t i = 0; i < stack.frames.size(); ++i) {
      if (i != 0) text += ';';
      append_frame(text, stack.frames[i]);
    }
    lines.emplace_back(std::move(text), stack.value);
  }
  std::sort(lines.begin(), lines.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });

  std::string out;
  std::size_t i = 0;
  while (i < lines.size()) {
    // Stacks that differ only in what folding drops (file:line, module) become one line.
    std::uint64_t value = lines[i].second;
    std::size_t j = i + 1;
    for (; j < lines.size() && lines[j].first == lines[i].first; ++j) value += lines[j].second;
    out += lines[i].first;
    out += ' ';
    out += std::to_string(value);
    out += '\n';
    i = j;
  }
  return out;
}

}  // namespace chokepoint::render
