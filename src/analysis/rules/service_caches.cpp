// The two caches: Redis (INFO, SLOWLOG, LATENCY) and memcached (stats). A cache limits a service
// when it misses (the backend does the work), evicts (the working set does not fit), turns
// clients away (connection limits), or runs slow commands on its single thread.
// See docs/verdicts/services.md.
#include <fmt/format.h>

#include <algorithm>

#include "analysis/rules/rule.h"
#include "analysis/services.h"

namespace chokepoint::analysis::rules {
namespace {

using model::Resource;

// Below this hit ratio, with enough lookups to mean something, most reads go to the backend.
constexpr double kLowHitRatio = 0.8;
constexpr double kMinLookupsPerS = 10;
// Memory used against the limit, above which evictions or OOM errors are near.
constexpr double kNearLimit = 0.9;

double gauge_max(const model::ServiceObservation& s, const std::string& name) {
  auto it = s.gauges.find(name);
  return it == s.gauges.end() ? 0 : it->second.max;
}
double gauge_last(const model::ServiceObservation& s, const std::string& name) {
  auto it = s.gauges.find(name);
  return it == s.gauges.end() ? 0 : it->second.last;
}
std::string setting(const model::ServiceObservation& s, const std::string& name) {
  auto it = s.settings.find(name);
  return it == s.settings.end() ? "" : it->second;
}

// The hit ratio finding both caches share.
void hit_ratio(const model::ServiceObservation& s, const char* hits, const char* misses,
               ServiceReport& r, const char* fix) {
  const double h = s.rate_per_s(hits), m = s.rate_per_s(misses);
  if (h + m < kMinLookupsPerS) return;
  const double ratio = h / (h + m);
  if (ratio >= kLowHitRatio) return;
  r.findings.push_back({Resource::kNetwork, true,
                        fmt::format("hit ratio {} ({} misses/s of {} lookups/s): the backend "
                                    "serves the misses",
                                    percent(ratio), count_text(m), count_text(h + m)),
                        fix});
}

// A client output buffer this large (INFO's client_recent_max_output_buffer) is worth a finding:
// Redis's default client-output-buffer-limit for normal clients is none, for pubsub 8 MiB.
constexpr double kLargeOutputBufferBytes = 1 << 20;

}  // namespace

ServiceReport service_redis(const model::ServiceObservation& s) {
  ServiceReport r;
  const double ops = s.rate_per_s("total_commands_processed");
  const double h = s.rate_per_s("keyspace_hits"), m = s.rate_per_s("keyspace_misses");
  r.summary =
      fmt::format("{} commands/s, {} clients (max {}), memory {}{}", count_text(ops),
                  gauge_last(s, "connected_clients"), gauge_max(s, "connected_clients"),
                  bytes(gauge_last(s, "used_memory")),
                  gauge_last(s, "maxmemory") > 0 ? " of " + bytes(gauge_last(s, "maxmemory"))
                                                 : std::string(" (no maxmemory)"));
  if (h + m > 0) r.summary += fmt::format(", hit ratio {}", percent(h / (h + m)));

  hit_ratio(s, "keyspace_hits", "keyspace_misses", r,
            "size the cache for the working set (maxmemory), give hot keys longer TTLs, and "
            "fetch misses in batches (MGET, pipelining)");
  const double evicted = s.rate_per_s("evicted_keys");
  if (evicted > 0) {
    r.findings.push_back(
        {Resource::kMemory, true,
         fmt::format("evicting {} keys/s at maxmemory {} (policy {}): the working set does not "
                     "fit",
                     count_text(evicted), bytes(gauge_last(s, "maxmemory")),
                     setting(s, "maxmemory_policy")),
         "raise maxmemory, or shard the keys over more instances (Redis Cluster); an evicted "
         "hot key is a miss later"});
  }
  const double maxmem = gauge_last(s, "maxmemory");
  if (maxmem > 0 && gauge_max(s, "used_memory") >= kNearLimit * maxmem && evicted == 0) {
    const bool noeviction = setting(s, "maxmemory_policy") == "noeviction";
    r.findings.push_back(
        {Resource::kMemory, noeviction,
         fmt::format(
             "memory {} of maxmemory {}{}", bytes(gauge_max(s, "used_memory")), bytes(maxmem),
             noeviction ? " with maxmemory-policy noeviction: writes fail with OOM next" : ""),
         noeviction ? "raise maxmemory, or choose an eviction policy (allkeys-lru) for a cache"
                    : "raise maxmemory before evictions start"});
  }
  if (const double rejected = s.delta("rejected_connections"); rejected > 0) {
    r.findings.push_back({Resource::kNetwork, true,
                          fmt::format("rejected {:.0f} connections (maxclients reached)", rejected),
                          "pool connections in the clients, or raise maxclients (and the "
                          "server's file descriptor limit with it)"});
  }
  // A client's output buffer (INFO clients): replies queued because the client reads them slower
  // than Redis writes them, or replies too large (KEYS, a big MGET or HGETALL).
  if (const double obuf = gauge_max(s, "client_recent_max_output_buffer");
      obuf >= kLargeOutputBufferBytes) {
    r.findings.push_back(
        {Resource::kNetwork, false,
         fmt::format("a client's output buffer reached {}: a client reads its replies slower than "
                     "Redis writes them, or the replies are very large",
                     bytes(obuf)),
         "find the client (CLIENT LIST, omem) and fetch less per command (SCAN instead of KEYS, "
         "smaller MGET/HGETALL batches); client-output-buffer-limit caps it"});
  }
  if (const double blocked = gauge_max(s, "blocked_clients"); blocked > 0) {
    r.findings.push_back(
        {Resource::kIdle, false,
         fmt::format("up to {:.0f} clients blocked in BLPOP/BRPOP/WAIT-style commands", blocked),
         ""});
  }
  // The slowest command by total time in the window.
  std::string top_cmd;
  double top_usec = 0, all_usec = 0;
  for (const auto& [name, v] : s.counters_last) {
    if (name.rfind("cmd:", 0) != 0 || name.size() < 9 || name.substr(name.size() - 5) != ":usec") {
      continue;
    }
    const double d = s.delta(name);
    all_usec += d;
    if (d > top_usec) {
      top_usec = d;
      top_cmd = name.substr(4, name.size() - 9);
    }
  }
  const double secs = static_cast<double>(s.duration_ns) / 1e9;
  if (secs > 0 && all_usec > 0) {
    const double busy = all_usec / 1e6 / secs;  // of Redis's one command thread
    r.findings.push_back(
        {Resource::kOnCpu, busy > 0.8,
         fmt::format("commands kept Redis's main thread {} busy; {} took {} of that time",
                     percent(std::min(busy, 1.0)), top_cmd, percent(top_usec / all_usec)),
         busy > 0.8 ? "Redis runs commands on one thread: batch round trips (pipelining, MGET), "
                      "avoid O(N) commands, or shard over more instances"
                    : ""});
  }
  if (!s.slow.empty()) {
    r.findings.push_back({Resource::kOnCpu, false,
                          fmt::format("slow log: {} (newest of {})", s.slow.front(), s.slow.size()),
                          "replace O(N) commands (KEYS, SMEMBERS or HGETALL on big keys, big "
                          "DEL) with SCAN-style iteration or UNLINK"});
  }
  if (const double fork_ms = gauge_max(s, "latency_max_ms:fork"); fork_ms > 0) {
    r.findings.push_back({Resource::kMemory, fork_ms >= 100,
                          fmt::format("fork for persistence took up to {:.0f} ms, and every "
                                      "command waited",
                                      fork_ms),
                          "persist from a replica, or snapshot less often; fork time grows with "
                          "the memory size"});
  }
  if (const double delayed = s.delta("aof_delayed_fsync"); delayed > 0) {
    r.findings.push_back(
        {Resource::kDisk, true,
         fmt::format("the append-only file's fsync fell behind {:.0f} times", delayed),
         "a faster disk for the AOF, appendfsync everysec, and "
         "no-appendfsync-on-rewrite yes"});
  }
  return r;
}

ServiceReport service_memcached(const model::ServiceObservation& s) {
  ServiceReport r;
  const double h = s.rate_per_s("get_hits"), m = s.rate_per_s("get_misses");
  r.summary = fmt::format("{} gets/s, {} sets/s, {} connections, memory {} of {}",
                          count_text(s.rate_per_s("cmd_get")), count_text(s.rate_per_s("cmd_set")),
                          gauge_last(s, "curr_connections"), bytes(gauge_last(s, "bytes")),
                          bytes(gauge_last(s, "limit_maxbytes")));
  if (h + m > 0) r.summary += fmt::format(", hit ratio {}", percent(h / (h + m)));
  hit_ratio(s, "get_hits", "get_misses", r,
            "size the cache for the working set (-m), and fetch misses in batches (multi-get)");
  if (const double ev = s.rate_per_s("evictions"); ev > 0) {
    r.findings.push_back({Resource::kMemory, true,
                          fmt::format("evicting {} items/s at -m {}: the working set does not fit",
                                      count_text(ev), bytes(gauge_last(s, "limit_maxbytes"))),
                          "raise memcached's memory (-m), or add servers to the pool"});
  }
  if (const double ld = s.delta("listen_disabled_num"); ld > 0) {
    r.findings.push_back({Resource::kNetwork, true,
                          fmt::format("stopped accepting connections {:.0f} times: the "
                                      "connection limit (-c) was reached",
                                      ld),
                          "pool connections in the clients, or raise -c"});
  }
  if (const double y = s.rate_per_s("conn_yields"); y > 0) {
    r.findings.push_back({Resource::kOnCpu, false,
                          fmt::format("{} connection yields/s: busy connections gave up their "
                                      "worker after -R requests",
                                      count_text(y)),
                          "raise -R (reqs_per_event) if few clients send many requests, or add "
                          "worker threads (-t)"});
  }
  return r;
}

}  // namespace chokepoint::analysis::rules
