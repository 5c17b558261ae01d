#pragma once
// What load, knee and diagnose --load share: turning URL and request options into
// loadgen::LoadOptions (usage errors exit 2 with a hint) and the pre-flight check. The report of
// a finished run is render/load_report.h.

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

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

}  // namespace chokepoint::app
