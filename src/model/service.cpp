#include "model/service.h"

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

}  // namespace chokepoint::model
