#pragma once
// The service probes of diagnose: --pg, --redis, --memcached, --nginx-status, --haproxy-stats
// and --no-probes, and the probes they make (with the target's own services found with no
// flags; collect/probes/detect.h).

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "analysis/services.h"
#include "collect/probes/probe.h"
#include "model/observation.h"

namespace chokepoint::app {

struct ProbeArgs {
  std::string pg;
  std::vector<std::string> redis;
  std::vector<std::string> memcached;
  std::vector<std::string> nginx_status;
  std::vector<std::string> haproxy_stats;
  bool no_probes = false;
};

void add_probe_options(CLI::App* cli, ProbeArgs& args);

struct Probes {
  std::vector<std::unique_ptr<collect::probes::Probe>> probes;
  std::vector<std::string> notes;  // services found but not probed
};

// The probes the flags name (malformed ones are usage errors: util::FatalError, exit 2), then
// those found among `pids` (the target's processes at the start) unless --no-probes.
Probes make_probes(const ProbeArgs& args, const std::vector<int>& pids);

// Folds what the services said into a window, the one way diagnose and replay both do it: their
// wait events refine the split (the verdict is taken again when they moved time), their
// warnings join the verdict's evidence and fixes, and each probe gets its sources line.
// Returns the services' reports for the Services section.
std::vector<analysis::ServiceReport> fold_service_view(
    model::Observation& obs, analysis::Diagnosis& d,
    const std::vector<model::ServiceObservation>& services, const std::vector<std::string>& notes);

}  // namespace chokepoint::app
