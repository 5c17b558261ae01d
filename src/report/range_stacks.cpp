#include "report/range_stacks.h"

#include <algorithm>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>

namespace chokepoint::report {
namespace {

// Frames and stacks interned once for both kinds: a stack seen in every slice is one row.
class Interner {
 public:
  int stack(const std::string& folded) {
    auto [it, added] = stack_ids_.try_emplace(folded, static_cast<int>(stacks_.size()));
    if (!added) return it->second;
    nlohmann::json ids = nlohmann::json::array();
    std::string_view rest = folded;
    for (;;) {
      const std::size_t semi = rest.find(';');
      ids.push_back(frame(std::string(rest.substr(0, semi))));
      if (semi == std::string_view::npos) break;
      rest.remove_prefix(semi + 1);
    }
    stacks_.push_back(std::move(ids));
    return it->second;
  }
  nlohmann::json frames() const { return frames_; }
  nlohmann::json stacks() const { return stacks_; }

 private:
  int frame(const std::string& name) {
    auto [it, added] = frame_ids_.try_emplace(name, static_cast<int>(frames_.size()));
    if (added) frames_.push_back(name);
    return it->second;
  }
  std::unordered_map<std::string, int> frame_ids_, stack_ids_;
  std::vector<std::string> frames_;
  std::vector<nlohmann::json> stacks_;
};

nlohmann::json kind_json(const std::vector<store::StackSlice>& slices, std::int64_t first_ns,
                         std::size_t max_slices, Interner& interner) {
  if (slices.empty()) return nullptr;
  const std::size_t group = (slices.size() + max_slices - 1) / std::max<std::size_t>(1, max_slices);
  double frequency_hz = 0;
  nlohmann::json out = nlohmann::json::array();
  for (std::size_t i = 0; i < slices.size(); i += group) {
    const std::size_t end = std::min(slices.size(), i + group);
    std::map<int, std::uint64_t> counts;  // by stack index: the page's order is stable
    std::uint64_t lost = 0;
    for (std::size_t j = i; j < end; ++j) {
      const store::StackSlice& s = slices[j];
      frequency_hz = std::max(frequency_hz, s.frequency_hz);
      lost += s.lost;
      for (const auto& c : s.stacks) {
        std::uint64_t& v = counts[interner.stack(c.frames)];
        v = c.value > UINT64_MAX - v ? UINT64_MAX : v + c.value;  // a hostile file's huge values
      }
    }
    nlohmann::json flat = nlohmann::json::array();
    for (const auto& [stack, value] : counts) {
      flat.push_back(stack);
      flat.push_back(value);
    }
    out.push_back({{"from_s", static_cast<double>(slices[i].from_ns - first_ns) / 1e9},
                   {"to_s", static_cast<double>(slices[end - 1].to_ns - first_ns) / 1e9},
                   {"lost", lost},
                   {"counts", std::move(flat)}});
  }
  return {{"frequency_hz", frequency_hz}, {"merged_by", group}, {"slices", std::move(out)}};
}

}  // namespace

nlohmann::json range_stacks_json(const std::vector<store::StackSlice>& on_cpu,
                                 const std::vector<store::StackSlice>& off_cpu,
                                 std::int64_t first_ns, std::size_t max_slices) {
  if (on_cpu.empty() && off_cpu.empty()) return nullptr;
  Interner interner;
  nlohmann::json on = kind_json(on_cpu, first_ns, max_slices, interner);
  nlohmann::json off = kind_json(off_cpu, first_ns, max_slices, interner);
  return {{"frames", interner.frames()},
          {"stacks", interner.stacks()},
          {"on_cpu", std::move(on)},
          {"off_cpu", std::move(off)}};
}

}  // namespace chokepoint::report
