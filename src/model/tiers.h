#pragma once
// Multi-tier targets: one window over several services (diagnose --pid A --pid B) split into
// tiers, one per service, and the tiers linked by their TCP connections. A tier is a root process
// and its descendants (an nginx master and its workers, a postmaster and its backends), grouped by
// the parents the sampler kept (ProcessSample::ppid). Tier X calls tier Y when a connection that X
// opened goes to an address on which Y listens. Pure: no I/O.

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "model/samples.h"

namespace chokepoint::model {

// Which tier each process belongs to: process pid -> index into the roots.
using TierMap = std::map<int, std::size_t>;

// The tier of every process seen in `samples`: the index in `roots` of its nearest ancestor
// (itself included) among the roots, following the parent pids of the processes' first reads. A
// process with no root among its known ancestors is in no tier (it is left out of the map).
TierMap assign_tiers(const Samples& samples, const std::vector<int>& roots);

// The processes of a window that no other process of it started: those whose parent (from their
// first read) is not among the processes seen, sorted by pid. Over a cgroup holding several
// services (diagnose --cgroup PATH --tiers) they are the services' roots, one tier each.
std::vector<int> top_level_processes(const Samples& samples);

// The samples of one tier: every tick with only that tier's threads, thread ends, processes,
// sockets, rlimits, exact sums and wait-for edges into its threads; the system-wide samples and
// the collector's whole. info.target names the tier's root ("pid", "<root>"). A window built from
// them (build_observation) is the tier's alone.
Samples tier_samples(const Samples& samples, const TierMap& tiers, std::size_t tier, int root_pid);

// One tier calling another: connections that tier `from` opened to `address`, on which tier `to`
// listens.
struct TierLink {
  std::size_t from = 0;
  std::size_t to = 0;
  std::string address;  // "127.0.0.1:5432"
  int connections = 0;  // distinct connections (socket inodes) seen over the window
};

// The links between tiers, from every socket sample of the window: an established connection
// that a tier opened (not accepted from a listener) whose remote address and port a listener of
// another tier has (the same address, or a wildcard one: 0.0.0.0 or ::). Sorted by (from, to).
std::vector<TierLink> link_tiers(const Samples& samples, const TierMap& tiers);

}  // namespace chokepoint::model
