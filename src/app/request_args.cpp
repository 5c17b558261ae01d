#include "app/request_args.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>

#include "app/cli_values.h"
#include "util/bounded_read.h"
#include "util/decimal.h"
#include "util/escape.h"
#include "util/fatal.h"

namespace chokepoint::app {

namespace {
constexpr std::size_t kMaxBodyBytes = std::size_t{64} << 20;
}  // namespace

CLI::Option* add_request_options(CLI::App* cli, RequestArgs& args) {
  CLI::Option* url =
      cli->add_option("URL", args.urls, "http:// URL(s); several URLs must share host and port")
          ->required();
  cli->add_option("--weights", args.weights, "relative weight of each URL, e.g. 3,1")
      ->delimiter(',');
  cli->add_option("--timeout", args.timeout, "per-request deadline, from when it is sent")
      ->capture_default_str();
  cli->add_option("-m,--method", args.method, "HTTP method")->capture_default_str();
  cli->add_option("-H,--header", args.headers, "extra header 'Name: value' (repeatable)");
  cli->add_option("--body", args.body, "request body");
  cli->add_option("--body-file", args.body_file, "read the request body from a file")
      ->excludes("--body");
  cli->add_flag("--h2", args.h2,
                "HTTP/2 over cleartext with prior knowledge (h2c) via nghttp2, one stream in "
                "flight per connection");
  return url;
}

void apply_request_args(const RequestArgs& args, loadgen::LoadOptions& o) {
  if (!args.weights.empty() && args.weights.size() != args.urls.size()) {
    util::usage_error(
        fmt::format("--weights has {} values for {} URLs", args.weights.size(), args.urls.size()),
        "give one weight per URL, in the same order: --weights 3,1");
  }
  o.requests.clear();
  for (std::size_t i = 0; i < args.urls.size(); ++i) {
    auto url = loadgen::parse_url(args.urls[i]);
    if (!url) util::usage_error(url.error().message, url.error().hint);
    o.requests.push_back({*url, args.weights.empty() ? 1.0 : args.weights[i]});
  }
  o.method = args.method;
  o.headers = args.headers;
  o.body = args.body;
  o.h2 = args.h2;
  o.timeout_ns = parse_duration_ns(args.timeout, "--timeout");
  if (!args.body_file.empty()) {
    // Every request carries the body, so it is held once in memory: bounded (docs/limits.md).
    auto body = util::read_file_bounded(args.body_file, kMaxBodyBytes, util::FileKind::kAnyReadable,
                                        "a readable --body-file");
    if (!body) {
      throw util::FatalError(util::Error{"--body-file: " + body.error().message, body.error().hint},
                             util::kExitUsage);
    }
    o.body = std::move(*body);
  }
}

double parse_rate_per_s(const std::string& text, const char* flag) {
  if (text == "max") return 0;
  const auto rate = util::parse_decimal(text);
  if (!rate || !(*rate > 0)) {
    util::usage_error(fmt::format("{} '{}' is not a rate", flag, text),
                      fmt::format("give requests per second (e.g. {} 2000) or {} max", flag, flag));
  }
  return *rate;
}

void preflight(const loadgen::LoadOptions& o) {
  if (auto ok = loadgen::check_load_options(o); !ok) {
    // Resource limits are runtime failures (exit 1); the rest are usage mistakes (exit 2).
    const bool limit = ok.error().message.find("RLIMIT_NOFILE") != std::string::npos;
    throw util::FatalError(ok.error(), limit ? util::kExitRuntime : util::kExitUsage);
  }
  if (auto ep = loadgen::resolve(o.requests[0].url); !ep) {
    throw util::FatalError(ep.error(), util::kExitUsage);
  }
}

}  // namespace chokepoint::app
