#include "render/speedscope.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "render/flamegraph_folded.h"
#include "render/text_safety.h"

namespace chokepoint::render {

namespace {

// speedscope identifies a frame by name, file, line (and column): one entry per distinct triple.
struct FrameKey {
  std::string name;
  std::string file;
  int line = 0;
  friend bool operator<(const FrameKey& a, const FrameKey& b) {
    return std::tie(a.name, a.file, a.line) < std::tie(b.name, b.file, b.line);
  }
};

FrameKey key_of(const profile::Frame& frame) {
  // The folded name (annotated "_[k]"/"_[j]", sanitized) keeps speedscope's view consistent
  // with the folded and SVG outputs; speedscope has no field for the frame's kind.
  // Names and paths are made valid UTF-8 here: json::dump throws on anything else.
  FrameKey key{valid_utf8(folded_frame_name(frame)), valid_utf8(frame.file),
               frame.file.empty() ? 0 : frame.line};
  if (key.file.empty()) key.file = valid_utf8(frame.module);
  if (key.line < 0) key.line = 0;
  return key;
}

}  // namespace

nlohmann::json speedscope(const profile::Profile& profile) {
  // Pass 1: the distinct frames, sorted, so indices do not depend on the order of the stacks.
  std::map<FrameKey, std::uint32_t> index;
  for (const profile::Stack& stack : profile.stacks) {
    if (stack.value == 0) continue;
    for (const profile::Frame& frame : stack.frames) index.emplace(key_of(frame), 0);
  }
  const bool has_empty_stack =
      std::any_of(profile.stacks.begin(), profile.stacks.end(),
                  [](const profile::Stack& s) { return s.value != 0 && s.frames.empty(); });
  if (has_empty_stack) index.emplace(FrameKey{"[no frames]", "", 0}, 0);

  nlohmann::json frames = nlohmann::json::array();
  std::uint32_t next = 0;
  for (auto& [key, i] : index) {
    i = next++;
    nlohmann::json f = {{"name", key.name}};
    if (!key.file.empty()) f["file"] = key.file;
    if (key.line > 0) f["line"] = key.line;
    frames.push_back(std::move(f));
  }

  // Pass 2: each stack as frame indices (outermost first, as speedscope reads them), sorted and
  // merged so equal index sequences become one weighted sample.
  std::vector<std::pair<std::vector<std::uint32_t>, std::uint64_t>> samples;
  samples.reserve(profile.stacks.size());
  for (const profile::Stack& stack : profile.stacks) {
    if (stack.value == 0) continue;
    std::vector<std::uint32_t> ids;
    ids.reserve(stack.frames.size());
    for (const profile::Frame& frame : stack.frames) ids.push_back(index.at(key_of(frame)));
    if (ids.empty()) ids.push_back(index.at(FrameKey{"[no frames]", "", 0}));
    samples.emplace_back(std::move(ids), stack.value);
  }
  std::sort(samples.begin(), samples.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });

  nlohmann::json sample_array = nlohmann::json::array();
  nlohmann::json weights = nlohmann::json::array();
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < samples.size();) {
    std::uint64_t weight = samples[i].second;
    std::size_t j = i + 1;
    for (; j < samples.size() && samples[j].first == samples[i].first; ++j) {
      weight += samples[j].second;
    }
    sample_array.push_back(samples[i].first);
    weights.push_back(weight);
    total += weight;
    i = j;
  }

  const std::string name = !profile.title.empty()
                               ? valid_utf8(profile.title)
                               : (profile.off_cpu ? "off-CPU time" : "on-CPU samples");
  nlohmann::json notes = nlohmann::json::array();
  for (const std::string& note : profile.notes) notes.push_back(valid_utf8(note));
  nlohmann::json out;
  out["$schema"] = "https://www.speedscope.app/file-format-schema.json";
  out["shared"] = {{"frames", std::move(frames)}};
  out["profiles"] = nlohmann::json::array({{
      {"type", "sampled"},
      {"name", name},
      {"unit", profile.weight == profile::Weight::kNanoseconds ? "nanoseconds" : "none"},
      {"startValue", 0},
      {"endValue", total},
      {"samples", std::move(sample_array)},
      {"weights", std::move(weights)},
  }});
  out["name"] = name;
  out["activeProfileIndex"] = 0;
  out["exporter"] = "chokepoint";
  // The honesty counters have no place in speedscope's schema; the schema allows extra
  // properties and speedscope ignores them, so they travel here rather than being dropped.
  out["chokepoint"] = {
      {"off_cpu", profile.off_cpu},
      {"frequency_hz", profile.frequency_hz},
      {"duration_s", profile.duration_s},
      {"lost_samples", profile.lost_samples},
      {"truncated_stacks", profile.truncated_stacks},
      {"failed_stacks", profile.failed_stacks},
      {"notes", notes},
  };
  return out;
}

}  // namespace chokepoint::render
