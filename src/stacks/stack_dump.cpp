#include "stacks/stack_dump.h"

#include <algorithm>
#include <map>
#include <tuple>

namespace chokepoint::stacks {

namespace {

// What makes two threads one group: the same frames (by name and module, not by file:line, so a
// thread parked one line further in the same function still groups), the same state, resource
// and syscall.
using GroupKey = std::tuple<std::vector<std::pair<std::string, std::string>>, char, model::Resource,
                            std::string>;

GroupKey key_of(const ThreadStack& t) {
  std::vector<std::pair<std::string, std::string>> frames;
  frames.reserve(t.frames.size());
  for (const auto& f : t.frames) frames.emplace_back(f.name, f.module);
  return {std::move(frames), t.state, t.wait.resource, t.syscall};
}

}  // namespace

std::vector<StackGroup> group_stacks(const StackDump& dump) {
  std::map<GroupKey, std::size_t> index;
  std::vector<StackGroup> groups;
  std::vector<std::map<std::string, std::size_t>> waits;
  for (const auto& t : dump.threads) {
    auto [it, inserted] = index.try_emplace(key_of(t), groups.size());
    if (inserted) {
      StackGroup g;
      g.frames = t.frames;
      g.kernel_frames = t.kernel_frames;
      g.state = t.state;
      g.syscall = t.syscall;
      g.resource = t.wait.resource;
      groups.push_back(std::move(g));
      waits.emplace_back();
    }
    StackGroup& g = groups[it->second];
    g.tids.push_back(t.tid);
    if (g.problem.empty()) g.problem = t.problem;
    ++waits[it->second][t.wait.detail];
  }
  for (std::size_t i = 0; i < groups.size(); ++i) {
    auto& g = groups[i];
    std::sort(g.tids.begin(), g.tids.end());
    for (const auto& [detail, count] : waits[i]) g.waits.emplace_back(detail, count);
    std::stable_sort(g.waits.begin(), g.waits.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
  }
  std::sort(groups.begin(), groups.end(), [](const StackGroup& a, const StackGroup& b) {
    if (a.tids.size() != b.tids.size()) return a.tids.size() > b.tids.size();
    return a.tids.front() < b.tids.front();
  });
  return groups;
}

void summarize_stops(StackDump& dump) {
  std::vector<std::int64_t> stops;
  for (const auto& t : dump.threads) {
    if (t.stop_ns >= 0) stops.push_back(t.stop_ns);
  }
  dump.threads_stopped = stops.size();
  dump.stop_median_ns = 0;
  dump.stop_max_ns = 0;
  if (stops.empty()) return;
  std::sort(stops.begin(), stops.end());
  dump.stop_median_ns = stops[stops.size() / 2];
  dump.stop_max_ns = stops.back();
}

}  // namespace chokepoint::stacks
