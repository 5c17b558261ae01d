#pragma once
// The HTTP/1.1 load generator: keep-alive connections driven by one epoll loop per thread.
//
// Open loop (rate > 0): each thread sends at rate/threads on a fixed schedule. Request k of a
// thread is *intended* at start + k * interval; latency is measured from that intended time
// (as wrk2 does), so a server stall that delays later sends is charged to those requests
// instead of vanishing ("coordinated omission"). The service time, from when a connection took
// the request to when its response was complete, is reported beside it.
// Closed loop (rate == 0): every connection sends its next request as soon as the previous
// response arrived; intended time == send time.
//
// Every request that was sent ends with exactly one Outcome. Requests the schedule wanted but that
// never left before the end are counted as dropped, not as requests.
//
// Memory is constant in the number of requests: per-thread histograms, one small state per
// connection, a timeline with one bucket per second (each second's latency percentiles merged
// across the threads as the second ends: interval_histograms.h).

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "loadgen/histogram.h"
#include "loadgen/interval_histograms.h"
#include "loadgen/url.h"
#include "util/result.h"

namespace chokepoint::loadgen {

enum class Outcome : int {
  kOk = 0,  // a complete response with status < 400
  kStatus4xx,
  kStatus5xx,
  kConnect,  // the connection could not be opened
  kWrite,    // sending the request failed
  kRead,     // receiving failed or the peer closed before the response was complete
  kTimeout,  // no complete response within the per-request timeout (or the end-of-run grace)
  kParse,    // the response is not valid HTTP/1.1
};
inline constexpr int kOutcomeCount = 8;
const char* outcome_name(Outcome o);

struct RequestTemplate {
  Url url;
  double weight = 1;
};

struct LoadOptions {
  std::vector<RequestTemplate> requests;  // all on one host:port
  std::string method = "GET";
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  int threads = 1;
  int connections = 10;
  double rate_per_s = 0;         // 0: closed loop (as fast as the server answers)
  std::int64_t duration_ns = 0;  // measured window after warmup; 0 with max_requests: no limit
  std::int64_t warmup_ns = 0;
  std::uint64_t max_requests = 0;  // measured requests to send in total; 0 = no limit
  std::int64_t timeout_ns = 2'000'000'000;
  std::int64_t late_threshold_ns =
      1'000'000;  // a send later than this after its intended time is late
  std::int64_t max_grace_ns =
      2'000'000'000;  // in-flight requests get min(timeout, this) after the end
  int slowest_kept = 10;
  // HTTP/2 over cleartext with prior knowledge (h2c, RFC 9113 section 3.3) via nghttp2; one
  // stream in flight per connection, like HTTP/1.1, so --connections means the same in both.
  bool h2 = false;
  const std::atomic<bool>* stop = nullptr;  // set (e.g. by SIGINT) to end the run early
};

struct TimelineBucket {
  std::uint64_t requests = 0;  // measured requests that ended in this second
  std::uint64_t errors = 0;    // of which not kOk
  double latency_sum_us = 0;   // corrected, over complete responses
  std::uint64_t latency_count = 0;
  std::int64_t latency_max_us = 0;
  // The second's percentiles over the same complete responses (interval_histograms.h): corrected
  // latency (p50 to p99.9) and service time; 0 when latency_count is 0.
  IntervalPercentiles percentiles;
};

struct SlowRequest {
  std::string trace_id;         // 32 hex digits, as sent in traceparent
  std::int64_t latency_us = 0;  // corrected
  std::int64_t service_us = 0;
  Outcome outcome = Outcome::kOk;
  int status = 0;
  std::size_t url_index = 0;
};

// The longest spell in which none of one generator thread's connections got a response while
// some of them had a request outstanding: a stalled server (or a stalled generator thread, which
// generator_gap_ns tells). Open and closed loop.
struct ResponseGap {
  std::int64_t start_ns = 0;     // from the measured window's start (0 when it began in warmup)
  std::int64_t duration_ns = 0;  // 0: no request was ever outstanding in the measured window
  // The most requests outstanding during it, summed over the threads whose own longest spell
  // overlaps it (a whole-server stall silences every thread at once).
  int outstanding = 0;
  // The longest the thread's own loop went without running during it, past the wait it asked
  // for: a spell that is mostly this is the generator's stall, not the server's.
  std::int64_t generator_gap_ns = 0;
};

struct LoadResult {
  Histogram latency;  // corrected (from intended send time); complete responses only
  Histogram service;  // uncorrected (from when a connection took the request)
  std::array<std::uint64_t, kOutcomeCount> outcomes{};
  std::uint64_t requests = 0;         // measured requests sent = sum of outcomes
  std::uint64_t warmup_requests = 0;  // sent during warmup, not in any other number
  std::uint64_t late_sends = 0;       // open loop: sent more than late_threshold after intended
  std::uint64_t dropped_sends = 0;    // open loop: intended within the run, never sent
  std::int64_t max_send_delay_us = 0;
  std::uint64_t connects = 0;  // TCP connections opened (all, warmup included)
  std::uint64_t bytes_read = 0;
  std::uint64_t bytes_written = 0;
  std::array<std::uint64_t, 6> status_classes{};  // [1..5] = 1xx..5xx, [0] = other
  std::vector<std::uint64_t> requests_per_url;
  double duration_s = 0;  // measured window: warmup end to the last measured outcome
  // When the measured window began (the end of warmup: second 0 of the timeline), on the wall
  // clock, so that the timeline can be laid beside a recording's.
  std::int64_t start_unix_ns = 0;
  std::vector<TimelineBucket> timeline;
  std::vector<SlowRequest> slowest;  // slowest first
  // Settings as run (threads may be lowered to connections).
  int threads = 0;
  int connections = 0;
  double rate_per_s = 0;
  std::string first_error;  // a sample message for the first non-HTTP-status error
  ResponseGap longest_response_gap;
};

// Checks options and file-descriptor limits, raising the soft RLIMIT_NOFILE when the hard limit
// allows. Errors carry hints. Called by run_load, exposed for the CLI's preflight.
util::Result<void> check_load_options(const LoadOptions& options);

// Runs the load to completion (blocking). Threads are started and joined inside.
util::Result<LoadResult> run_load(const LoadOptions& options);

}  // namespace chokepoint::loadgen
