#include "model/service.h"

#include <algorithm>

namespace chokepoint::model {
namespace {
// Slow-log lines kept per probe and window: the newest.
constexpr std::size_t kMaxSlow = 20;
}  // namespace

ServiceAccumulator::ServiceAccumulator(const ServiceProbe& probe) {
  obs_.kind = probe.kind;
  obs_.endpoint = probe.endpoint;
  obs_.how = probe.how;
}

void ServiceAccumulator::add(const ServiceReading& r, std::int64_t at_ns) {
  ++obs_.samples_ok;
  if (first_ns_ < 0) {
    first_ns_ = at_ns;
    obs_.counters_first = r.counters;
  }
  // A counter first seen later starts from 0 or from its first value, as the probe says.
  for (const auto& [name, v] : r.counters) {
    obs_.counters_first.emplace(name, r.new_counters_were_zero ? 0.0 : v);
  }
  last_ns_ = at_ns;
  for (const auto& [name, v] : r.counters) obs_.counters_last[name] = v;
  for (const auto& [name, v] : r.gauges) {
    auto [it, added] = obs_.gauges.try_emplace(name);
    auto& g = it->second;
    if (added) {
      g.min = g.max = v;
    } else {
      g.min = std::min(g.min, v);
      g.max = std::max(g.max, v);
    }
    g.last = v;
    gauge_sums_[name] += v;
    ++gauge_counts_[name];
  }
  for (const auto& [name, v] : r.settings) obs_.settings[name] = v;
  if (!r.backend_states.empty() || !r.counters.empty()) {
    if (!r.backend_states.empty()) ++obs_.activity_samples;
    for (const auto& [pid, state] : r.backend_states) ++obs_.backend_waits[pid][state];
  }
  // r.slow is newest first: put the oldest at the front first, so the newest ends up there.
  for (auto it = r.slow.rbegin(); it != r.slow.rend(); ++it) {
    if (std::find(obs_.slow.begin(), obs_.slow.end(), *it) != obs_.slow.end()) continue;
    obs_.slow.insert(obs_.slow.begin(), *it);
  }
  if (obs_.slow.size() > kMaxSlow) obs_.slow.resize(kMaxSlow);
}

void ServiceAccumulator::add_failure(const std::string& error, const std::string& hint) {
  ++obs_.samples_failed;
  obs_.error = error;
  obs_.hint = hint;
}

void ServiceAccumulator::add(const ServicePoll& p) {
  if (p.ok) {
    add(p.reading, p.at_ns);
  } else {
    add_failure(p.error, p.hint);
  }
}

ServiceObservation ServiceAccumulator::finish() const {
  ServiceObservation out = obs_;
  out.duration_ns = (first_ns_ >= 0 && last_ns_ > first_ns_) ? last_ns_ - first_ns_ : 0;
  for (auto& [name, g] : out.gauges) {
    auto n = gauge_counts_.find(name);
    auto s = gauge_sums_.find(name);
    if (n != gauge_counts_.end() && n->second > 0) g.mean = s->second / n->second;
  }
  return out;
}

std::vector<ServiceObservation> fold_service_polls(const std::vector<ServiceProbe>& probes,
                                                   const std::vector<ServicePoll>& polls,
                                                   std::int64_t from_ns, std::int64_t to_ns) {
  std::vector<ServiceAccumulator> acc;
  acc.reserve(probes.size());
  for (const auto& p : probes) acc.emplace_back(p);
  for (const auto& p : polls) {
    if (p.probe >= acc.size() || p.at_ns < from_ns || p.at_ns > to_ns) continue;
    acc[p.probe].add(p);
  }
  std::vector<ServiceObservation> out;
  out.reserve(acc.size());
  for (const auto& a : acc) out.push_back(a.finish());
  return out;
}

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
