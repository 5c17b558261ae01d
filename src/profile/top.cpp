#include "profile/top.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "util/escape.h"
#include "util/plural.h"

namespace chokepoint::profile {

namespace {

bool is_function(const Frame& f) {
  return f.kind != FrameKind::kProcess && f.kind != FrameKind::kThread;
}

}  // namespace

TopTable top(const Profile& profile, std::size_t n) {
  TopTable t;
  using Key = std::pair<std::string, std::string>;  // name, module
  std::map<Key, TopEntry> entries;
  std::map<Key, std::map<std::pair<std::string, int>, std::uint64_t>> locations;
  std::set<Key> seen;  // per stack, for total
  for (const Stack& s : profile.stacks) {
    t.total_value += s.value;
    seen.clear();
    const Frame* leaf = nullptr;
    for (const Frame& f : s.frames) {
      if (!is_function(f)) continue;
      leaf = &f;
      auto key = std::make_pair(f.name, f.module);
      auto [it, inserted] = entries.try_emplace(key);
      if (inserted) {
        it->second.name = f.name;
        it->second.module = f.module;
        it->second.kind = f.kind;
      }
      if (seen.insert(key).second) {
        it->second.total_value += s.value;
        if (!f.file.empty()) locations[key][{f.file, f.line}] += s.value;
      }
    }
    if (leaf) entries[{leaf->name, leaf->module}].self_value += s.value;
  }
  std::vector<TopEntry> all;
  all.reserve(entries.size());
  for (auto& [key, e] : entries) {
    // The location that carried the most weight: the hottest line of a leaf, the busiest call
    // site of a caller (ties: the first in file:line order).
    std::uint64_t best = 0;
    for (const auto& [loc, v] : locations[key]) {
      if (v > best) {
        best = v;
        e.file = loc.first;
        e.line = loc.second;
      }
    }
    if (t.total_value > 0) {
      e.self_share = static_cast<double>(e.self_value) / static_cast<double>(t.total_value);
      e.total_share = static_cast<double>(e.total_value) / static_cast<double>(t.total_value);
    }
    all.push_back(std::move(e));
  }
  auto keep = [&](std::vector<TopEntry> v) {
    if (n > 0 && v.size() > n) v.resize(n);
    return v;
  };
  std::vector<TopEntry> by_self = all;
  std::stable_sort(by_self.begin(), by_self.end(), [](const TopEntry& a, const TopEntry& b) {
    if (a.self_value != b.self_value) return a.self_value > b.self_value;
    if (a.total_value != b.total_value) return a.total_value > b.total_value;
    return a.name < b.name;
  });
  // A function that is never a leaf has no self time: it is not among the hottest by self.
  by_self.erase(std::remove_if(by_self.begin(), by_self.end(),
                               [](const TopEntry& e) { return e.self_value == 0; }),
                by_self.end());
  std::stable_sort(all.begin(), all.end(), [](const TopEntry& a, const TopEntry& b) {
    if (a.total_value != b.total_value) return a.total_value > b.total_value;
    if (a.self_value != b.self_value) return a.self_value > b.self_value;
    return a.name < b.name;
  });
  t.by_self = keep(std::move(by_self));
  t.by_total = keep(std::move(all));
  return t;
}

namespace {

// "  file:line" or "  module" for the terminal (both come from the profiled binaries), or "".
std::string where(const TopEntry& e) {
  std::string s;
  if (!e.file.empty()) {
    s = "  " + util::terminal_text(e.file);
    if (e.line > 0) s += fmt::format(":{}", e.line);
  } else if (!e.module.empty()) {
    s = "  " + util::terminal_text(e.module);
  }
  return s;
}

std::string weight_text(const Profile& p, std::uint64_t v) {
  if (p.weight == Weight::kNanoseconds)
    return fmt::format("{:.1f} ms", static_cast<double>(v) / 1e6);
  if (p.weight == Weight::kBytes) return util::bytes_text(static_cast<double>(v));
  return fmt::format("{}", v);
}

}  // namespace

std::string top_text(const Profile& profile, const TopTable& table) {
  std::string out;
  const char* unit = profile.weight == Weight::kNanoseconds ? "time"
                     : profile.weight == Weight::kBytes     ? "bytes"
                                                            : "samples";
  out += fmt::format("Hottest functions by self {} ({} total):\n", unit,
                     weight_text(profile, table.total_value));
  out += fmt::format("  {:>6} {:>6} {:>10}  {}\n", "self%", "total%", unit, "function");
  for (const auto& e : table.by_self) {
    std::string w = where(e);
    out +=
        fmt::format("  {:>6.1f} {:>6.1f} {:>10}  {}{}\n", e.self_share * 100, e.total_share * 100,
                    weight_text(profile, e.self_value), util::terminal_text(e.name), w);
  }
  out += fmt::format("Hottest functions by total {} (with their callees):\n", unit);
  out += fmt::format("  {:>6} {:>6} {:>10}  {}\n", "total%", "self%", unit, "function");
  for (const auto& e : table.by_total) {
    std::string w = where(e);
    out +=
        fmt::format("  {:>6.1f} {:>6.1f} {:>10}  {}{}\n", e.total_share * 100, e.self_share * 100,
                    weight_text(profile, e.total_value), util::terminal_text(e.name), w);
  }
  return out;
}

}  // namespace chokepoint::profile
