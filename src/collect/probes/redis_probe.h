#pragma once
// Reads a Redis server's own view through hiredis, once a second: INFO (ops, hits and misses,
// evictions, blocked and rejected clients, memory against maxmemory, fork and AOF fsync
// latency, per-command time), SLOWLOG GET and LATENCY LATEST. Every call has a timeout. The
// probe names its connection "chokepoint-probe" and leaves its own commands (INFO, SLOWLOG,
// LATENCY, CLIENT) out of what it reports.

#include <memory>
#include <string>

#include "collect/probes/probe.h"

namespace chokepoint::collect::probes {

// `address` is "HOST:PORT" (IPv6 as "[::1]:6379") or a Unix socket path ("/run/redis.sock").
// Connects lazily: a server that is down now fails read(), not the factory. Errors: a malformed
// address.
util::Result<std::unique_ptr<Probe>> make_redis_probe(const std::string& address,
                                                      std::int64_t timeout_ns = 1'000'000'000);

// Splits "HOST:PORT", "[V6]:PORT" or a path. Errors: no port, a port out of range.
struct HostPort {
  std::string host;  // empty for a Unix socket
  int port = 0;
  std::string path;  // for a Unix socket
};
util::Result<HostPort> parse_host_port(const std::string& address, const std::string& flag);

}  // namespace chokepoint::collect::probes
