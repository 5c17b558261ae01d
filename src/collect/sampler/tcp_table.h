#pragma once
// The per-target table of TCP states (model/tcp_table.h): one sock_diag dump of the target's
// network namespace, its sockets grouped by state and endpoints, the target's marked, and the
// namespace's limits (ip_local_port_range, somaxconn, tcp_max_syn_backlog, tcp_tw_reuse,
// tcp_syncookies) read inside that namespace.
//
// Cost: a dump of every state walks the kernel's whole established hash table (2.5 ms here with
// 262,144 buckets), plus a readlink per fd of the target: the sampler takes it at the window's
// start and end only.

#include <optional>
#include <string>
#include <vector>

#include "collect/procfs/proc_fs.h"
#include "collect/sampler/fd_targets.h"
#include "model/tcp_table.h"

namespace chokepoint::collect::sampler {

// The table of the network namespace of pids.front() (of ours when whole_host), with the sockets
// of pids (every socket when whole_host) marked as the target's. nullopt, with the reason in
// *problem, when sock_diag is refused or there is no pid to follow. proc must be the real /proc.
// fds_of gives a process's fds (the target's sockets by inode).
//
// reuse_ns > 0: the dump of the namespace's sockets is shared by the calls of this process (the
// agent's targets, each on its own thread, close their windows together): a call whose now_ns is
// within reuse_ns of the last dump of the same namespace uses that dump instead of walking the
// kernel's hash table again; a caller that finds another one dumping waits for it. 0: a dump of
// its own. The table's at_ns is the time of the dump it holds. Thread-safe.
std::optional<model::TcpTableSample> take_tcp_table(const procfs::ProcFs& proc,
                                                    const std::vector<int>& pids, bool whole_host,
                                                    std::int64_t now_ns, const FdTargetsOf& fds_of,
                                                    std::string* problem,
                                                    std::int64_t reuse_ns = 0);

}  // namespace chokepoint::collect::sampler
