#pragma once
// Parsers for the text that services report about themselves: Redis INFO, nginx stub_status and
// HAProxy's `show stat` CSV. Pure and bounded: every parser takes the whole reply as text, never
// reads past it, skips lines it does not understand, and caps what it keeps, so a hostile or broken
// server cannot make it crash or grow without end.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace chokepoint::collect::probes {

// At most this many fields, rows or commands are kept from one reply; the rest is dropped.
inline constexpr std::size_t kMaxFields = 4096;
inline constexpr std::size_t kMaxRows = 4096;

// "name:value" lines of Redis INFO (https://redis.io/commands/info), sections and comments
// skipped. Values are kept as text; the typed accessors parse them.
struct RedisInfo {
  std::map<std::string, std::string, std::less<>> fields;
  // cmdstat_<name>:calls=..,usec=..,rejected_calls=..,failed_calls=.. of INFO commandstats.
  struct CommandStat {
    std::uint64_t calls = 0;
    std::uint64_t usec = 0;
    std::uint64_t rejected_calls = 0;
    std::uint64_t failed_calls = 0;
  };
  std::map<std::string, CommandStat, std::less<>> commands;

  std::optional<std::string> text(std::string_view name) const;
  // A field as an unsigned or floating number; nullopt when absent or not a number.
  std::optional<std::uint64_t> count(std::string_view name) const;
  std::optional<double> number(std::string_view name) const;
};
RedisInfo parse_redis_info(std::string_view reply);

// nginx's ngx_http_stub_status_module page:
//   Active connections: 291
//   server accepts handled requests
//    16630948 16630948 31070465
//   Reading: 6 Writing: 179 Waiting: 106
struct NginxStatus {
  std::uint64_t active = 0;
  std::uint64_t accepts = 0;
  std::uint64_t handled = 0;
  std::uint64_t requests = 0;
  std::uint64_t reading = 0;
  std::uint64_t writing = 0;
  std::uint64_t waiting = 0;
};
util::Result<NginxStatus> parse_nginx_status(std::string_view page);

// One row of HAProxy's `show stat` CSV (management guide, section 9.1): a frontend, a backend
// or one server of a backend. Only the columns chokepoint reads; a column the header does not
// name stays 0.
struct HaproxyRow {
  std::string proxy;                   // pxname
  std::string service;                 // svname: FRONTEND, BACKEND or the server's name
  std::uint64_t queue_current = 0;     // qcur: requests queued, waiting for a server slot
  std::uint64_t queue_max = 0;         // qmax
  std::uint64_t sessions_current = 0;  // scur
  std::uint64_t sessions_limit = 0;    // slim
  std::uint64_t sessions_total = 0;    // stot: connections (sessions), not requests
  std::uint64_t requests_total = 0;    // req_tot: HTTP requests (frontends; backends since 2.x)
  std::uint64_t denied_requests = 0;   // dreq
  std::uint64_t errors_connect = 0;    // econ
  std::uint64_t errors_response = 0;   // eresp
  std::uint64_t retries = 0;           // wretr
  std::uint64_t http_5xx = 0;          // hrsp_5xx
  std::uint64_t queue_time_ms = 0;     // qtime: average over the last 1024 requests
  std::uint64_t connect_time_ms = 0;   // ctime
  std::uint64_t response_time_ms = 0;  // rtime
  std::uint64_t total_time_ms = 0;     // ttime
  std::string status;                  // UP, DOWN, OPEN, no check, ...
  bool is_frontend() const { return service == "FRONTEND"; }
  bool is_backend() const { return service == "BACKEND"; }
};
// Errors: no "# pxname,svname,..." header line.
util::Result<std::vector<HaproxyRow>> parse_haproxy_csv(std::string_view csv);

// Decimal digits only ("0x10", "-1", "1e3", "" and overflow are not counts).
std::optional<std::uint64_t> parse_count(std::string_view s);

}  // namespace chokepoint::collect::probes
