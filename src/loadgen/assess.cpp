#include "loadgen/assess.h"

#include <fmt/format.h>
#include <cmath>

namespace chokepoint::loadgen {

namespace {
// Tolerances for "kept the schedule": a few late sends happen on any busy machine (a 1 ms
// scheduling hiccup makes every send due in that millisecond late). Above kNoteLateShare the
// report mentions them; above kBehindLateShare, or with any drop or a low rate, it fell behind.
constexpr double kNoteLateShare = 0.01;
constexpr double kBehindLateShare = 0.05;
constexpr double kRateShareLimit = 0.97;
// A spell without a response is a stall when it lasts this many median service times: a server
// that answers in 1 ms and then not for 100 ms stalled; one that answers in 80 ms did not.
constexpr double kStallOverServiceP50 = 10;

// "the server stalled: no response for 1003 ms from 2.0 s into the run while 8 requests were
// outstanding"
std::string stall_text(const ResponseGap& g) {
  return fmt::format(
      "the server stalled: no response for {} ms from {:.1f} s into the run while {} {} "
      "outstanding",
      g.duration_ns / 1'000'000, static_cast<double>(g.start_ns) / 1e9, g.outstanding,
      g.outstanding == 1 ? "request was" : "requests were");
}
}  // namespace

bool server_stalled(const LoadResult& r) {
  const ResponseGap& g = r.longest_response_gap;
  const double p50_ns = static_cast<double>(r.service.percentile_us(50)) * 1e3;
  return g.duration_ns >= kMinServerStallNs && g.outstanding > 0 &&
         static_cast<double>(g.duration_ns) >= kStallOverServiceP50 * p50_ns &&
         g.generator_gap_ns * 2 < g.duration_ns;
}

std::uint64_t responses(const LoadResult& result) {
  std::uint64_t n = 0;
  for (auto k : {Outcome::kOk, Outcome::kStatus4xx, Outcome::kStatus5xx})
    n += result.outcomes[static_cast<int>(k)];
  return n;
}

double error_ratio(const LoadResult& result) {
  if (result.requests == 0) return 0;
  return static_cast<double>(result.requests - result.outcomes[0]) /
         static_cast<double>(result.requests);
}

LoadAssessment assess(const LoadResult& r, const LoadOptions& o) {
  LoadAssessment a;
  a.rps = r.duration_s > 0 ? static_cast<double>(r.requests) / r.duration_s : 0;
  const bool open_loop = o.rate_per_s > 0;
  a.server_stalled = server_stalled(r);
  if (open_loop) {
    // With --requests the run may end before the duration; compare rates only for timed runs.
    a.achieved_ratio = a.rps / o.rate_per_s;
    a.connections_needed = o.rate_per_s * r.service.mean_us() / 1e6;
    const double sent = static_cast<double>(r.requests + r.dropped_sends);
    const double late_share = sent > 0 ? static_cast<double>(r.late_sends) / sent : 0;
    const bool many_late = late_share > kBehindLateShare;
    const bool slow_rate = o.max_requests == 0 && a.achieved_ratio < kRateShareLimit;
    a.fell_behind = many_late || r.dropped_sends > 0 || slow_rate;
    if (a.fell_behind && a.server_stalled) {
      // Every connection held a request the stalled server did not answer: the sends due
      // meanwhile waited for one. A faster generator would not have kept the schedule, and more
      // connections only while they outnumber the sends due in the stall.
      a.warnings.push_back(fmt::format(
          "{}; the sends due meanwhile waited for a connection ({} of {} sends were late by more "
          "than {} ms, {} were dropped, {:.1f} of {:.1f} req/s): latency from the intended send "
          "times counts that wait as the server's latency, not the generator's",
          stall_text(r.longest_response_gap), r.late_sends, r.requests + r.dropped_sends,
          o.late_threshold_ns / 1'000'000, r.dropped_sends, a.rps, o.rate_per_s));
    } else if (a.fell_behind) {
      a.warnings.push_back(fmt::format(
          "the generator fell behind its schedule: {} of {} sends were late by more than {} ms, "
          "{} were dropped, and it achieved {:.1f} of {:.1f} req/s; latencies from the intended "
          "send times include that delay",
          r.late_sends, r.requests + r.dropped_sends, o.late_threshold_ns / 1'000'000,
          r.dropped_sends, a.rps, o.rate_per_s));
      // If the busy connections by Little's law reach the pool size, the pool is the limit. With
      // no response at all there is no service time to size the pool by: the server is the
      // problem (the failure's own hint says what to check), not the pool.
      const bool answered = r.outcomes[static_cast<int>(Outcome::kOk)] +
                                r.outcomes[static_cast<int>(Outcome::kStatus4xx)] +
                                r.outcomes[static_cast<int>(Outcome::kStatus5xx)] >
                            0;
      if (!answered) {
        a.warnings.push_back(
            "no request got a response, so the schedule fell behind waiting on the server; more "
            "connections or threads would not help");
      } else if (static_cast<double>(r.connections) < a.connections_needed * 1.1 ||
                 r.outcomes[static_cast<int>(Outcome::kTimeout)] > 0) {
        a.too_few_connections = true;
        a.warnings.push_back(fmt::format(
            "too few connections: by Little's law, sustaining {:.0f} req/s at a mean service time "
            "of {:.2f} ms keeps {:.1f} requests in flight, but only {} connections were open; "
            "rerun with --connections {} or more",
            o.rate_per_s, r.service.mean_us() / 1000.0, a.connections_needed, r.connections,
            // Never fewer than are open now: timeouts can leave Little's law below the pool.
            static_cast<long>(std::ceil(
                std::max(a.connections_needed * 2, static_cast<double>(r.connections) * 2)))));
      } else {
        a.warnings.push_back(
            "connections were sufficient (Little's law), so the generator itself could not keep "
            "up: give it more --threads or a less busy machine");
      }
    } else if (late_share > kNoteLateShare && !a.server_stalled) {
      a.warnings.push_back(fmt::format(
          "{:.1f}% of sends left more than {} ms after their intended time (a busy machine or "
          "too few --threads); the corrected latency includes that delay",
          late_share * 100, o.late_threshold_ns / 1'000'000));
    }
  }
  // A stall the schedule absorbed (or a closed loop, which has none) is still the server's.
  if (a.server_stalled && !(open_loop && a.fell_behind)) {
    a.warnings.push_back(stall_text(r.longest_response_gap) +
                         "; latency and service time count it");
  }
  std::uint64_t failures = 0;
  for (int k = static_cast<int>(Outcome::kConnect); k < kOutcomeCount; ++k)
    failures += r.outcomes[k];
  if (failures > 0) {
    a.warnings.push_back(fmt::format("{} of {} requests failed without a response (first: {})",
                                     failures, r.requests, r.first_error));
  }
  if (r.latency.saturated() > 0) {
    a.warnings.push_back(
        fmt::format("{} latencies exceeded the histogram's 1 h range", r.latency.saturated()));
  }
  return a;
}

std::string failure_hint(const LoadResult& r, const LoadOptions& o) {
  std::optional<Outcome> failure;
  std::uint64_t most = 0;
  for (int k = static_cast<int>(Outcome::kConnect); k < kOutcomeCount; ++k) {
    if (r.outcomes[k] > most) {
      most = r.outcomes[k];
      failure = static_cast<Outcome>(k);
    }
  }
  if (!failure) return "";
  const std::string where =
      o.requests.empty() ? std::string("the server") : o.requests[0].url.authority();
  switch (*failure) {
    case Outcome::kConnect:
      return fmt::format(
          "nothing accepted connections at {}: check that the server is up and listening on "
          "that address and port",
          where);
    case Outcome::kWrite:
      return fmt::format(
          "{} closed or reset connections before taking the request: check its connection "
          "limits and logs",
          where);
    case Outcome::kRead:
      return fmt::format(
          "{} reset or closed connections before a complete response: check its logs for "
          "crashes, and its keep-alive and request size limits",
          where);
    case Outcome::kTimeout:
      return fmt::format(
          "{} accepted connections but sent no complete response within --timeout {:g} s: it "
          "is stalled or slower than that; look at it with chokepoint diagnose --pid, or raise "
          "--timeout",
          where, static_cast<double>(o.timeout_ns) / 1e9);
    case Outcome::kParse:
      return fmt::format(
          "{} does not answer in HTTP/1.1: check that this port serves plain HTTP (not TLS or "
          "another protocol){}",
          where, o.h2 ? "" : ", or pass --h2 for an h2c server");
    case Outcome::kOk:
    case Outcome::kStatus4xx:
    case Outcome::kStatus5xx:
      break;
  }
  return "";
}

}  // namespace chokepoint::loadgen
