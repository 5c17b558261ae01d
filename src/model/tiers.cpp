#include "model/tiers.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <set>
#include <tuple>
#include <unordered_map>

namespace chokepoint::model {
namespace {

template <typename T, typename Pid>
void keep_tier(std::vector<T>& rows, const TierMap& tiers, std::size_t tier, Pid pid_of) {
  rows.erase(std::remove_if(rows.begin(), rows.end(),
                            [&](const T& row) {
                              auto it = tiers.find(pid_of(row));
                              return it == tiers.end() || it->second != tier;
                            }),
             rows.end());
}

}  // namespace

TierMap assign_tiers(const Samples& samples, const std::vector<int>& roots) {
  std::unordered_map<int, int> parent;
  std::set<int> seen;
  for (const Tick& t : samples.ticks) {
    for (const ProcessSample& p : t.processes) {
      seen.insert(p.pid);
      if (p.ppid) parent.emplace(p.pid, *p.ppid);
    }
    for (const ThreadSample& s : t.threads) seen.insert(s.key.pid);
    seen.insert(t.new_pids.begin(), t.new_pids.end());
  }
  std::unordered_map<int, std::size_t> root_index;
  for (std::size_t i = 0; i < roots.size(); ++i) root_index.emplace(roots[i], i);
  TierMap out;
  for (int pid : seen) {
    // Up the parents to the nearest root; a cycle (a reused pid) or an unknown parent ends it.
    std::set<int> visited;
    for (int p = pid; p > 0 && visited.insert(p).second;) {
      if (auto r = root_index.find(p); r != root_index.end()) {
        out.emplace(pid, r->second);
        break;
      }
      auto up = parent.find(p);
      if (up == parent.end()) break;
      p = up->second;
    }
  }
  return out;
}

std::vector<int> top_level_processes(const Samples& samples) {
  std::map<int, std::optional<int>> parent;  // pid -> its first read's parent
  for (const Tick& t : samples.ticks) {
    for (const ProcessSample& p : t.processes) parent.emplace(p.pid, p.ppid);
  }
  std::vector<int> out;
  for (const auto& [pid, ppid] : parent) {
    if (!ppid || parent.count(*ppid) == 0) out.push_back(pid);
  }
  return out;  // sorted: the map's order
}

Samples tier_samples(const Samples& samples, const TierMap& tiers, std::size_t tier, int root_pid) {
  Samples out;
  out.info = samples.info;
  out.info.target.kind = "pid";
  out.info.target.spec = std::to_string(root_pid);
  out.info.target.pids.clear();
  out.ticks.reserve(samples.ticks.size());
  const auto in_tier = [&](int pid) {
    auto it = tiers.find(pid);
    return it != tiers.end() && it->second == tier;
  };
  for (const Tick& whole : samples.ticks) {
    Tick t = whole;
    t.new_pids.erase(std::remove_if(t.new_pids.begin(), t.new_pids.end(),
                                    [&](int pid) { return !in_tier(pid); }),
                     t.new_pids.end());
    keep_tier(t.ended, tiers, tier, [](const ThreadEnd& e) { return e.pid; });
    keep_tier(t.threads, tiers, tier, [](const ThreadSample& s) { return s.key.pid; });
    keep_tier(t.processes, tiers, tier, [](const ProcessSample& p) { return p.pid; });
    keep_tier(t.sockets, tiers, tier, [](const SocketSample& s) { return s.pid; });
    if (t.system && t.system->rlimits) {
      keep_tier(t.system->rlimits->processes, tiers, tier,
                [](const ProcessRlimits& r) { return r.pid; });
    }
    if (t.exact) {
      keep_tier(t.exact->waits, tiers, tier, [](const ExactWait& w) { return w.pid; });
      keep_tier(t.exact->edges, tiers, tier, [](const WakeEdge& e) { return e.wakee_pid; });
    }
    out.ticks.push_back(std::move(t));
  }
  return out;
}

std::vector<TierLink> link_tiers(const Samples& samples, const TierMap& tiers) {
  // (address, port) -> tier, for every listener; (tier, address, port) -> connection inodes.
  std::map<std::pair<std::string, std::uint16_t>, std::size_t> listeners;
  std::map<std::tuple<std::size_t, std::string, std::uint16_t>, std::set<std::uint64_t>> opened;
  for (const Tick& t : samples.ticks) {
    for (const SocketSample& s : t.sockets) {
      auto tier = tiers.find(s.pid);
      if (tier == tiers.end()) continue;
      if (s.state == SocketState::kListen) {
        listeners.emplace(std::make_pair(s.local_addr, s.local_port), tier->second);
      } else if (s.state == SocketState::kEstablished && !s.server_side) {
        opened[{tier->second, s.remote_addr, s.remote_port}].insert(s.inode);
      }
    }
  }
  std::map<std::pair<std::size_t, std::size_t>, TierLink> links;
  for (const auto& [key, inodes] : opened) {
    const auto& [from, addr, port] = key;
    std::optional<std::size_t> to;
    if (auto l = listeners.find({addr, port}); l != listeners.end()) to = l->second;
    for (const char* any : {"0.0.0.0", "::"}) {
      if (to) break;
      if (auto l = listeners.find({any, port}); l != listeners.end()) to = l->second;
    }
    if (!to || *to == from) continue;
    TierLink& link = links[{from, *to}];
    if (link.connections == 0) {
      link.from = from;
      link.to = *to;
      link.address = fmt::format("{}:{}", addr, port);
    }
    link.connections += static_cast<int>(inodes.size());
  }
  std::vector<TierLink> out;
  out.reserve(links.size());
  for (auto& [key, link] : links) out.push_back(std::move(link));
  return out;
}

}  // namespace chokepoint::model
