#include "analysis/services.h"

#include <fmt/format.h>

#include <algorithm>

namespace chokepoint::analysis {

std::vector<ServiceReport> assess_services(const std::vector<model::ServiceObservation>& services) {
  std::vector<ServiceReport> out;
  for (const auto& s : services) {
    ServiceReport r;
    switch (s.kind) {
      case model::ServiceKind::kRedis:
        r = rules::service_redis(s);
        break;
      case model::ServiceKind::kMemcached:
        r = rules::service_memcached(s);
        break;
      case model::ServiceKind::kNginx:
        r = rules::service_nginx(s);
        break;
      case model::ServiceKind::kHaproxy:
        r = rules::service_haproxy(s);
        break;
      case model::ServiceKind::kPostgres:
        r = rules::service_postgres(s);
        break;
    }
    r.kind = s.kind;
    r.endpoint = s.endpoint;
    if (s.samples_ok == 0) {
      r.summary.clear();
      r.findings.clear();
      r.problem = s.error.empty() ? "no sample was read" : s.error;
      r.hint = s.hint;
    } else if (s.samples_failed > 0) {
      r.problem = fmt::format("{} of {} reads failed, the last with: {}", s.samples_failed,
                              s.samples_ok + s.samples_failed, s.error);
      r.hint = s.hint;
    }
    out.push_back(std::move(r));
  }
  return out;
}

namespace {

// The verdict a finding's resource would be; kNone for idle and sleep.
Verdict verdict_of(model::Resource r) {
  switch (r) {
    case model::Resource::kOnCpu:
    case model::Resource::kCpuWait:
      return Verdict::kCpu;
    case model::Resource::kDisk:
      return Verdict::kDisk;
    case model::Resource::kNetwork:
      return Verdict::kNetwork;
    case model::Resource::kLock:
      return Verdict::kLock;
    case model::Resource::kMemory:
      return Verdict::kMemory;
    case model::Resource::kSleep:
    case model::Resource::kIdle:
      return Verdict::kNone;
  }
  return Verdict::kNone;
}

}  // namespace

void fold_services(Diagnosis& d, const std::vector<ServiceReport>& services) {
  if (d.bottlenecks.empty() || d.verdict == Verdict::kNone) return;
  Bottleneck& b = d.bottlenecks.front();
  // A service's own fix names the thing to change (the table to index, the setting to raise):
  // it goes before the resource's general fixes.
  std::vector<std::string> first;
  for (const auto& s : services) {
    for (const auto& f : s.findings) {
      if (!f.warning || verdict_of(f.resource) != b.resource) continue;
      b.evidence.push_back(
          fmt::format("{} {}: {}", model::service_kind_name(s.kind), s.endpoint, f.message));
      if (!f.fix.empty() && std::find(first.begin(), first.end(), f.fix) == first.end()) {
        first.push_back(f.fix);
      }
    }
  }
  for (const auto& fix : first) {
    auto it = std::find(b.fixes.begin(), b.fixes.end(), fix);
    if (it != b.fixes.end()) b.fixes.erase(it);
  }
  b.fixes.insert(b.fixes.begin(), first.begin(), first.end());
}

namespace rules {

std::string count_text(double v) {
  if (v >= 1e6) return fmt::format("{:.1f}M", v / 1e6);
  if (v >= 1e4) return fmt::format("{:.1f}k", v / 1e3);
  if (v >= 100) return fmt::format("{:.0f}", v);
  if (v >= 10) return fmt::format("{:.1f}", v);
  return fmt::format("{:.2f}", v);
}

}  // namespace rules
}  // namespace chokepoint::analysis
