#include "model/service.h"

#include <algorithm>

namespace chokepoint::model {

const char* service_kind_name(ServiceKind kind) {
  switch (kind) {
    case ServiceKind::kPostgres:
      return "postgres";
    case ServiceKind::kRedis:
      return "redis";
    case ServiceKind::kMemcached:
      return "memcached";
    case ServiceKind::kNginx:
      return "nginx";
    case ServiceKind::kHaproxy:
      return "haproxy";
  }
  return "service";
}

double ServiceObservation::delta(const std::string& counter) const {
  auto a = counters_first.find(counter);
  auto b = counters_last.find(counter);
  if (a == counters_first.end() || b == counters_last.end()) return 0;
  // A counter that went down was reset (a restart): no rate across it.
  return b->second >= a->second ? b->second - a->second : 0;
}

double ServiceObservation::rate_per_s(const std::string& counter) const {
  if (duration_ns <= 0) return 0;
  return delta(counter) / (static_cast<double>(duration_ns) / 1e9);
}

std::optional<Resource> postgres_wait_resource(const std::string& state) {
  auto starts = [&](const char* p) { return state.rfind(p, 0) == 0; };
  if (state == "active") return Resource::kOnCpu;
  if (starts("Lock:") || starts("BufferPin:")) return Resource::kLock;
  if (starts("IO:") || starts("LWLock:WAL")) return Resource::kDisk;
  if (starts("LWLock:")) return Resource::kLock;
  if (starts("Client:") || starts("idle")) return Resource::kIdle;
  if (starts("Timeout:")) return Resource::kSleep;
  return std::nullopt;
}

std::int64_t apply_service_waits(std::vector<ThreadAccount>& threads,
                                 const std::vector<ServiceObservation>& services) {
  std::int64_t moved_total = 0;
  for (const auto& s : services) {
    if (s.kind != ServiceKind::kPostgres) continue;
    for (auto& t : threads) {
      // Backends are single-threaded processes: the pid names the thread.
      auto it = s.backend_waits.find(t.key.pid);
      if (it == s.backend_waits.end() || t.key.tid != t.key.pid) continue;
      int total = 0;
      for (const auto& [state, n] : it->second) total += n;
      if (total == 0) continue;
      const std::int64_t wall = t.split.total_ns();
      for (const auto& [state, n] : it->second) {
        const auto r = postgres_wait_resource(state);
        if (!r || (*r != Resource::kLock && *r != Resource::kDisk && *r != Resource::kSleep)) {
          continue;
        }
        const auto want = static_cast<std::int64_t>(static_cast<double>(wall) * n / total);
        const std::int64_t moved = std::min(want, t.split[Resource::kIdle]);
        if (moved <= 0) continue;
        t.split[Resource::kIdle] -= moved;
        t.split[*r] += moved;
        t.details[static_cast<std::size_t>(*r)]["postgres " + state] += moved;
        moved_total += moved;
      }
    }
  }
  return moved_total;
}

}  // namespace chokepoint::model
