#pragma once
// The lab's real services (issue 14): the seed's remedies that live in other servers.
//
// - A cache server in front of the cpu and upstream scenarios: `--cache redis|memcached` with
//   `--cache-server HOST:PORT` keeps each key's answer in a real Redis (hiredis) or memcached
//   (libmemcached) for kCacheTtlS, instead of the in-process memo of `--cache on`.
// - PostgreSQL behind the db-* scenarios (`--db CONNINFO`, libpq), each dominated by one of the
//   database's own bottlenecks, with its fix:
//     db-hot-row        every request updates one counter row inside a transaction that keeps
//                       working after the update: the requests queue on the row lock (lock, kind
//                       row). Fix: --lock sharded spreads the counter over --lock-shards rows.
//     db-missing-index  every request looks a key up in a 200,000-row table with no index on
//                       it: a sequential scan per request, the database's backends on the CPU.
//                       Fix: --db-index creates the index.
//     db-commit         every request inserts an order and commits it on its own: a WAL flush
//                       per request (disk). Fix: --commit batch (a committer inserts a group of
//                       orders in one transaction) or --commit async (synchronous_commit off).
//
// Connections are pooled: one per concurrent request, made on first use and kept. Everything the
// lab creates in the database is named chokepoint_lab_*; the tables are set up by make_*() before
// the server listens, so the first request already meets the steady state.
//
// Thread-safety: every member function may be called from any thread.

#include <memory>
#include <optional>
#include <string>

#include "lab/options.h"
#include "lab/scenarios.h"
#include "util/result.h"

namespace chokepoint::lab {

// How long a cached answer lives in the cache server.
inline constexpr int kCacheTtlS = 300;

class RemoteCache {
 public:
  virtual ~RemoteCache() = default;
  // The value kept for `key`; nullopt on a miss, and on an error (counted, never fatal: a cache
  // that fails is a slow cache, and the request does the work).
  virtual std::optional<std::string> get(const std::string& key) = 0;
  virtual void put(const std::string& key, const std::string& value) = 0;
};

// Connects to options.cache_server once to check that it answers. Fails with a hint naming the
// server when it does not.
util::Result<std::unique_ptr<RemoteCache>> connect_cache(const Options& options);

// The handler of a db-* scenario; the tables are ready when it returns. Fails with a hint when the
// database cannot be reached or refuses the setup (rights, a missing database).
util::Result<std::unique_ptr<Handler>> make_db_handler(const Options& options);

// The rows of the db-missing-index table.
inline constexpr int kDbItemRows = 200'000;

}  // namespace chokepoint::lab
