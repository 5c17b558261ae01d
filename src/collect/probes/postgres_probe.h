#pragma once
// Reads a PostgreSQL server's own view through libpq: every backend's wait event from
// pg_stat_activity at each read (10 Hz by default), and once a second lock chains
// (pg_blocking_pids), commits, WAL syncs and their time (pg_stat_wal), checkpoints
// (pg_stat_bgwriter), sequential scans and dead tuples per table (pg_stat_user_tables), the
// commit settings (synchronous_commit, commit_delay, wal_sync_method) and connections against
// max_connections. A role without pg_monitor gets a hint naming the grant.

#include <memory>
#include <optional>
#include <string>

#include "collect/probes/probe.h"

namespace chokepoint::collect::probes {

// `conninfo` is a libpq connection string or URI ("host=/var/run/postgresql port=5432
// user=postgres dbname=postgres", "postgresql://..."). `how` says how it was found, for the
// sources line. The connection is made on the first read, with connect_timeout.
// With `as_user` (root only), the connection is made with that effective uid and gid on the
// probe's thread alone (raw setresuid/setresgid, which glibc would broadcast to every thread), so
// that peer authentication over the Unix socket sees the server's own OS user; then the thread
// goes back to root.
struct OsUser {
  unsigned uid = 0;
  unsigned gid = 0;
  std::string name;
};
std::unique_ptr<Probe> make_postgres_probe(std::string conninfo, std::string how = "--pg DSN",
                                           std::optional<OsUser> as_user = std::nullopt);

// The conninfo for a server found from its data directory's postmaster.pid (line 3: port,
// line 5: the first socket directory), for the given OS user (peer authentication over the
// Unix socket). Errors: the file is missing or malformed.
util::Result<std::string> conninfo_from_postmaster_pid(const std::string& data_dir,
                                                       const std::string& user);

}  // namespace chokepoint::collect::probes
