#include "render/speedscope.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

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
  static const profile::Frame kNoFrames{
      "[no frames]", profile::FrameKind::kUnresolved, "", "", 0, ""};
  // Pass 1: a raw id per distinct (name, kind, module, file, line), by hashing the raw bytes
  // once per frame; the sanitized speedscope key is built only per distinct raw frame. Stacks
  // are stored as one flat id array (per-stack vectors and per-frame strings made allocation
  // the larger part of the cost at 50k stacks).
  std::unordered_map<std::string, std::uint32_t> raw_ids;
  std::vector<const profile::Frame*> raw_frames;
  std::vector<std::uint32_t> ids;
  struct Seq {
    std::size_t offset;
    std::uint32_t len;
    std::uint64_t value;
  };
  std::vector<Seq> seqs;
  seqs.reserve(profile.stacks.size());
  std::string buf;
  for (const profile::Stack& stack : profile.stacks) {
    if (stack.value == 0) continue;
    const bool empty = stack.frames.empty();
    const std::size_t len = empty ? 1 : stack.frames.size();
    seqs.push_back({ids.size(), static_cast<std::uint32_t>(len), stack.value});
    for (std::size_t i = 0; i < len; ++i) {
      const profile::Frame& f = empty ? kNoFrames : stack.frames[i];
      buf.assign(f.name);
      buf += '\0';
      buf += static_cast<char>('0' + static_cast<int>(f.kind));
      buf += f.module;
      buf += '\0';
      buf += f.file;
      buf += '\0';
      buf += std::to_string(f.line);
      auto [it, added] = raw_ids.try_emplace(buf, static_cast<std::uint32_t>(raw_frames.size()));
      if (added) raw_frames.push_back(&f);
      ids.push_back(it->second);
    }
  }

  // The distinct speedscope frames, sorted, so indices do not depend on the order of the stacks.
  std::map<FrameKey, std::uint32_t> index;
  std::vector<FrameKey> raw_keys;
  raw_keys.reserve(raw_frames.size());
  for (const profile::Frame* f : raw_frames) {
    raw_keys.push_back(key_of(*f));
    index.emplace(raw_keys.back(), 0);
  }
  nlohmann::json frames = nlohmann::json::array();
  std::uint32_t next = 0;
  for (auto& [key, i] : index) {
    i = next++;
    nlohmann::json f = {{"name", key.name}};
    if (!key.file.empty()) f["file"] = key.file;
    if (key.line > 0) f["line"] = key.line;
    frames.push_back(std::move(f));
  }
  std::vector<std::uint32_t> final_id(raw_keys.size());
  for (std::size_t r = 0; r < raw_keys.size(); ++r) final_id[r] = index.at(raw_keys[r]);
  for (std::uint32_t& id : ids) id = final_id[id];

  // Each stack as frame indices (outermost first, as speedscope reads them), sorted and merged
  // so equal index sequences become one weighted sample.
  auto begin_of = [&](const Seq& q) { return ids.begin() + static_cast<std::ptrdiff_t>(q.offset); };
  auto end_of = [&](const Seq& q) { return begin_of(q) + q.len; };
  std::sort(seqs.begin(), seqs.end(), [&](const Seq& a, const Seq& b) {
    return std::lexicographical_compare(begin_of(a), end_of(a), begin_of(b), end_of(b));
  });

  nlohmann::json sample_array = nlohmann::json::array();
  nlohmann::json weights = nlohmann::json::array();
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < seqs.size();) {
    std::uint64_t weight = seqs[i].value;
    std::size_t j = i + 1;
    for (; j < seqs.size() &&
           std::equal(begin_of(seqs[i]), end_of(seqs[i]), begin_of(seqs[j]), end_of(seqs[j]));
         ++j) {
      weight += seqs[j].value;
    }
    sample_array.push_back(nlohmann::json::array_t(begin_of(seqs[i]), end_of(seqs[i])));
    weights.push_back(weight);
    total += weight;
    i = j;
  }

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
