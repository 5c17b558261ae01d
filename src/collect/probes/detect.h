#pragma once
// Finds the services among a target's processes, so that diagnose probes them with no flags:
// a PostgreSQL postmaster (its data directory is its working directory; postmaster.pid gives
// the socket directory and port; as root the probe connects as the server's OS user), and a
// redis-server or memcached (their listening TCP port, in our network namespace). nginx and
// HAProxy publish their status at a place only their configuration names: for them, a note
// says which flag to pass.

#include <memory>
#include <string>
#include <vector>

#include "collect/probes/probe.h"
#include "collect/procfs/proc_fs.h"

namespace chokepoint::collect::probes {

struct Detected {
  std::vector<std::unique_ptr<Probe>> probes;
  std::vector<std::string> notes;  // services found but not probed, and why
};

// `pids`: the target's processes. Services already named by a flag (`skip`) are left out.
Detected detect_services(const std::vector<int>& pids, const procfs::ProcFs& proc,
                         const std::vector<model::ServiceKind>& skip);

}  // namespace chokepoint::collect::probes
