#pragma once
// What load, knee and diagnose --load share: turning URL and request options into
// loadgen::LoadOptions (usage errors exit 2 with a hint), the pre-flight check, and the report of
// a finished run as text and JSON.

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loadgen/assess.h"
#include "loadgen/load.h"

namespace chokepoint::app {

struct RequestArgs {
  std::vector<std::string> urls;
  std::vector<double> weights;
  std::string method = "GET";
  std::vector<std::string> headers;
  std::string body;
  std::string body_file;
  std::string timeout = "2s";
  bool h2 = false;
};

// Adds the positional URL(s) and --weights, --timeout, --method, --header, --body, --body-file
// and --h2 to `cli`. Returns the URL positional.
CLI::Option* add_request_options(CLI::App* cli, RequestArgs& args);

// Parses the URLs and request options into `o` (requests, method, headers, body, timeout, h2).
// Throws util::FatalError (exit 2) for a malformed URL, weights or an unreadable body file.
void apply_request_args(const RequestArgs& args, loadgen::LoadOptions& o);

// "max" -> 0 (closed loop); otherwise a positive finite number of requests per second.
double parse_rate_per_s(const std::string& text, const char* flag);

// check_load_options and name resolution; throws util::FatalError (exit 1 for resource limits,
// 2 for the rest).
void preflight(const loadgen::LoadOptions& o);

// Latency in ms from the histogram's microseconds.
double to_ms(std::int64_t us);
nlohmann::json percentiles_json(const loadgen::Histogram& h);
// "p50 ... max ... ms"; "no successful requests" when the histogram is empty (JSON: nulls).
std::string percentiles_text(const loadgen::Histogram& h);

// Complete responses (any status) over a run: ok + 4xx + 5xx.
std::uint64_t responses(const loadgen::LoadResult& r);
// Requests that did not end kOk, as a fraction of all measured requests (0 when none ran).
double error_ratio(const loadgen::LoadResult& r);

// The report of one run. `urls` are the URLs as the user gave them.
nlohmann::json load_json(const loadgen::LoadResult& r, const loadgen::LoadOptions& o,
                         const loadgen::LoadAssessment& a, const std::vector<std::string>& urls);
// A few lines: requests and rate, outcomes, latency, service time, sends, warnings. Each line
// starts with `indent`.
std::string load_text_summary(const loadgen::LoadResult& r, const loadgen::LoadOptions& o,
                              const loadgen::LoadAssessment& a, const std::string& indent);

}  // namespace chokepoint::app
