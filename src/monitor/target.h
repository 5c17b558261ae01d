#pragma once
// What chokepoint check and chokepoint agent watch, written as one word on the command line or in
// the agent's config file:
//   host               the whole host
//   pid:1234           a process and its threads
//   name:nginx         every process with this name (comm or executable)
//   cgroup:/sys/fs/cgroup/system.slice/x.service   every task in a cgroup directory (v2 or v1)
//   service:nginx      a systemd service: its cgroup (".service" is added when the unit has no
//                      suffix), looked up again at every window, so a restarted service is found
//
// Thread-safety: plain values and pure functions, except resolve, which reads /sys.

#include <string>
#include <string_view>

#include "collect/sampler/target.h"
#include "util/result.h"

namespace chokepoint::monitor {

struct WatchTarget {
  std::string text;  // as the user wrote it: the target's label in every output
  collect::sampler::TargetSpec spec;
  std::string service;  // for service:UNIT, the unit with its suffix (spec is resolved per window)
};

// Parses TARGET (grammar above). Errors: an unknown kind, an empty value, a pid that is not a
// positive number, a cgroup path that is not absolute; with hints.
util::Result<WatchTarget> parse_target(std::string_view text);

// The cgroup directories where systemd keeps a unit's tasks, first the v2 hierarchy, then the
// hybrid one (unified/), then v1's name=systemd hierarchy, under `cgroup_root`.
std::vector<std::string> service_cgroup_candidates(
    const std::string& unit, const std::string& cgroup_root = "/sys/fs/cgroup");

// The spec to sample now: for a service its cgroup as it exists now. Errors: the service has no
// cgroup (it is not running), with a hint.
util::Result<collect::sampler::TargetSpec> resolve(
    const WatchTarget& target, const std::string& cgroup_root = "/sys/fs/cgroup");

}  // namespace chokepoint::monitor
