#pragma once
// Reads a memcached server's `stats` through libmemcached: hits and misses, evictions,
// connection yields (a worker gave up its connection after reqs_per_event requests),
// listen_disabled_num (the server hit its connection limit and stopped accepting), rejected
// connections, and memory against limit_maxbytes.

#include <memory>
#include <string>

#include "collect/probes/probe.h"

namespace chokepoint::collect::probes {

// `address` is "HOST:PORT" or a Unix socket path. Errors: a malformed address.
util::Result<std::unique_ptr<Probe>> make_memcached_probe(const std::string& address,
                                                          std::int64_t timeout_ns = 1'000'000'000);

}  // namespace chokepoint::collect::probes
