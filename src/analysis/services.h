#pragma once
// What the services' own statistics say (model::ServiceObservation, read by collect/probes), as
// evidence and fixes: one rule per service in rules/service_*.cpp, each pure, each with its
// section in docs/probes.md. The findings that point at the verdict's resource are folded into
// the verdict's evidence and fixes by fold_services().

#include <optional>
#include <string>
#include <vector>

#include "analysis/diagnosis.h"
#include "model/service.h"
#include "model/time_split.h"

namespace chokepoint::analysis {

struct ServiceFinding {
  model::Resource resource = model::Resource::kOnCpu;  // what it points at
  bool warning = false;  // limits the service now (else: worth knowing)
  std::string message;   // the evidence, with numbers and the service's own names
  std::string fix;       // what to do, specific to the evidence; may be empty
};

struct ServiceReport {
  model::ServiceKind kind = model::ServiceKind::kRedis;
  std::string endpoint;
  std::string summary;  // one line: rates and the state of the service over the window
  std::vector<ServiceFinding> findings;
  // When the probe could not read the service (or only part of the time): why, and the hint.
  std::string problem;
  std::string hint;
};

std::vector<ServiceReport> assess_services(const std::vector<model::ServiceObservation>& services);

// Folds the services' warnings that point at the primary bottleneck's resource into its
// evidence and fixes ("redis 127.0.0.1:6379: evicting 530 keys/s ..."): evidence after the
// kernel-level evidence, fixes before the resource's general ones (a service's fix names what to
// change). The kernel's verdict stands; the services say where inside them the time goes.
void fold_services(Diagnosis& d, const std::vector<ServiceReport>& services);

namespace rules {
ServiceReport service_redis(const model::ServiceObservation& s);
ServiceReport service_memcached(const model::ServiceObservation& s);
ServiceReport service_nginx(const model::ServiceObservation& s);
ServiceReport service_haproxy(const model::ServiceObservation& s);
ServiceReport service_postgres(const model::ServiceObservation& s);
// "1,234", "12.3k", for rates in evidence.
std::string count_text(double v);
}  // namespace rules

}  // namespace chokepoint::analysis
