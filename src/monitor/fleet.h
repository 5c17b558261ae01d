#pragma once
// chokepoint fleet: ask a Prometheus server that scrapes chokepoint agents which instances are
// bound by what, now or over a range, and summarise per tier (a label of the scrape: job by
// default). Reads the HTTP API (/api/v1/query) with libcurl (collect/probes' http_get_small).
//
// Thread-safety: plain functions; query_fleet does network I/O.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "loadgen/usl.h"
#include "util/result.h"

namespace chokepoint::monitor {

// What one tier must carry and what one of its instances can: the USL fitted to one instance's
// concurrency sweep (`chokepoint knee URL --usl --usl-csv FILE`), and the tier's target rate.
// Assumes, as `knee --target-rate` does (docs/usl.md), a balancer spreading load evenly over
// instances that share nothing.
struct TierCapacity {
  std::string source;  // the CSV the fit came from, for the report
  loadgen::UslFit fit;
  double target_rate = 0;        // req/s the whole tier must carry
  double max_utilization = 0.8;  // plan each instance at most at this share of its USL peak
};

struct FleetOptions {
  std::string prometheus_url;  // base URL, e.g. http://127.0.0.1:9090
  std::string range;           // empty: now; else a PromQL duration ("10m"): most frequent verdict
  std::string tier_label = "job";
  std::int64_t timeout_ns = 5'000'000'000;
  std::map<std::string, TierCapacity> capacity;  // by tier name; tiers without one: no plan
};

// One target on one instance, as its agent last said (or most often said over the range).
struct FleetTarget {
  std::string tier;
  std::string instance;
  std::string target;
  std::string resource;  // "none", "disk", ...
  std::string kind;
  double share = 0;    // the verdict's share of busy time (0 for none, or when unknown)
  double windows = 0;  // over a range: how many scrapes said this verdict
};

struct FleetTier {
  std::string name;
  int instances = 0;
  std::vector<FleetTarget> targets;     // sorted: bound first, by share
  std::map<std::string, int> bound_by;  // resource -> targets bound by it
  int instances_down = 0;               // up == 0 for this tier
};

struct FleetReport {
  std::vector<FleetTier> tiers;
};

// Runs the queries. Errors: Prometheus cannot be reached, answers with something that is not its
// API's JSON, or has no chokepoint_verdict series; each with a hint.
util::Result<FleetReport> query_fleet(const FleetOptions& options);

// The capacity lines of one tier with `instances_up` instances reporting (ends with '\n'): the
// instance's USL peak, the instances the target rate needs, and how many to add or could go.
std::string capacity_text(const TierCapacity& capacity, int instances_up);

// The text report (ends with '\n'); every observed string through util::terminal_text. A tier
// in options.capacity gets its capacity lines; one that Prometheus does not know is listed as
// such at the end.
std::string fleet_text(const FleetReport& report, const FleetOptions& options);

// Percent-encoding for a URL query value (RFC 3986: unreserved characters pass).
std::string url_encode(const std::string& text);

}  // namespace chokepoint::monitor
