#include "render/speedscope.h"

#include <cstdint>
#include <string>
#include <tuple>
#include <utility>

#include "profile/call_tree.h"
#include "render/flamegraph_folded.h"
#include "util/escape.h"

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
  friend bool operator==(const FrameKey&, const FrameKey&) = default;
};

FrameKey key_of(const profile::Frame& frame) {
  // The folded name (annotated "_[k]"/"_[j]", sanitized) keeps speedscope's view consistent
  // with the folded and SVG outputs; speedscope has no field for the frame's kind.
  // Names and paths are made valid UTF-8 here: json::dump throws on anything else.
  FrameKey key{util::valid_utf8(folded_frame_name(frame)), util::valid_utf8(frame.file),
               frame.file.empty() ? 0 : frame.line};
  if (key.file.empty()) key.file = util::valid_utf8(frame.module);
  if (key.line < 0) key.line = 0;
  return key;
}

}  // namespace

nlohmann::json speedscope(const profile::Profile& profile) {
  // The shared call tree keyed by speedscope's frame identity; the raw bytes are every field of
  // the frame, so the key (sanitized, which costs) is built once per distinct frame.
  profile::CallTree<FrameKey> tree = profile::build_call_tree<FrameKey>(
      profile,
      [](const profile::Frame& f, std::string& buf) { profile::append_frame_bytes(f, buf, true); },
      key_of);
  // Equal index sequences become one weighted sample.
  profile::merge_same_paths(tree);

  // The distinct frames, sorted (a frame's index is its key's rank), so indices do not depend
  // on the order of the stacks.
  nlohmann::json frames = nlohmann::json::array();
  for (const FrameKey& key : tree.keys) {
    nlohmann::json f = {{"name", key.name}};
    if (!key.file.empty()) f["file"] = key.file;
    if (key.line > 0) f["line"] = key.line;
    frames.push_back(std::move(f));
  }
  // Each stack as frame indices, outermost first, as speedscope reads them.
  nlohmann::json sample_array = nlohmann::json::array();
  nlohmann::json weights = nlohmann::json::array();
  for (const profile::TreeStack& s : tree.stacks) {
    sample_array.push_back(nlohmann::json::array_t(tree.ranks(s), tree.ranks(s) + s.len));
    weights.push_back(s.value);
  }
  const std::uint64_t total = tree.total_value;

  const std::string name = !profile.title.empty()
                               ? util::valid_utf8(profile.title)
                               : (profile.off_cpu ? "off-CPU time" : "on-CPU samples");
  nlohmann::json notes = nlohmann::json::array();
  for (const std::string& note : profile.notes) notes.push_back(util::valid_utf8(note));
  nlohmann::json out;
  out["$schema"] = "https://www.speedscope.app/file-format-schema.json";
  out["shared"] = {{"frames", std::move(frames)}};
  out["profiles"] = nlohmann::json::array({{
      {"type", "sampled"},
      {"name", name},
      {"unit", profile.weight == profile::Weight::kNanoseconds ? "nanoseconds"
               : profile.weight == profile::Weight::kBytes     ? "bytes"
                                                               : "none"},
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
