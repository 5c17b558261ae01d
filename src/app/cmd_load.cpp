// chokepoint load URL...: HTTP/1.1 load, open loop (--rate R) or closed loop (--rate max).
#include <fmt/format.h>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/cli_values.h"
#include "app/subcommand.h"
#include "loadgen/assess.h"
#include "loadgen/load.h"
#include "util/fatal.h"

namespace chokepoint::app {

namespace {

struct LoadArgs {
  std::vector<std::string> urls;
  std::vector<double> weights;
  int threads = 1;
  int connections = 10;
  std::string rate = "max";
  std::string duration = "10s";
  std::uint64_t requests = 0;
  std::string warmup = "0s";
  std::string timeout = "2s";
  std::string method = "GET";
  std::vector<std::string> headers;
  std::string body;
  std::string body_file;
  bool json = false;
  bool timeline = false;
  bool h2 = false;
};

std::atomic<bool> g_stop{false};
void on_sigint(int) {
  g_stop.store(true);
}

double ms(std::int64_t us) {
  return static_cast<double>(us) / 1000.0;
}

nlohmann::json percentiles_json(const loadgen::Histogram& h) {
  return {{"p50", ms(h.percentile_us(50))},
          {"p90", ms(h.percentile_us(90))},
          {"p99", ms(h.percentile_us(99))},
          {"p999", ms(h.percentile_us(99.9))},
          {"p9999", ms(h.percentile_us(99.99))},
          {"max", ms(h.max_us())},
          {"min", ms(h.min_us())},
          {"mean", h.mean_us() / 1000.0},
          {"count", h.count()}};
}

std::string percentiles_text(const loadgen::Histogram& h) {
  return fmt::format(
      "p50 {:.3f}  p90 {:.3f}  p99 {:.3f}  p99.9 {:.3f}  p99.99 {:.3f}  max {:.3f} ms",
      ms(h.percentile_us(50)), ms(h.percentile_us(90)), ms(h.percentile_us(99)),
      ms(h.percentile_us(99.9)), ms(h.percentile_us(99.99)), ms(h.max_us()));
}

int run_load_command(const LoadArgs& args) {
  loadgen::LoadOptions o;
  if (!args.weights.empty() && args.weights.size() != args.urls.size()) {
    util::usage_error(
        fmt::format("--weights has {} values for {} URLs", args.weights.size(), args.urls.size()),
        "give one weight per URL, in the same order: --weights 3,1");
  }
  for (std::size_t i = 0; i < args.urls.size(); ++i) {
    auto url = loadgen::parse_url(args.urls[i]);
    if (!url) util::usage_error(url.error().message, url.error().hint);
    o.requests.push_back({*url, args.weights.empty() ? 1.0 : args.weights[i]});
  }
  if (args.rate == "max") {
    o.rate_per_s = 0;
  } else {
    char* end = nullptr;
    o.rate_per_s = std::strtod(args.rate.c_str(), &end);
    if (end == args.rate.c_str() || *end != '\0' || !(o.rate_per_s > 0) ||
        !std::isfinite(o.rate_per_s)) {
      util::usage_error(fmt::format("--rate '{}' is not a rate", args.rate),
                        "give requests per second (e.g. --rate 2000) or --rate max");
    }
  }
  o.threads = args.threads;
  o.connections = args.connections;
  o.max_requests = args.requests;
  // --requests alone means "this many, however long it takes"; with --duration, whichever first.
  o.duration_ns = parse_duration_ns(args.duration, "--duration");
  o.warmup_ns = parse_duration_ns(args.warmup, "--warmup");
  o.timeout_ns = parse_duration_ns(args.timeout, "--timeout");
  o.method = args.method;
  o.h2 = args.h2;
  o.headers = args.headers;
  o.body = args.body;
  if (!args.body_file.empty()) {
    std::ifstream in(args.body_file, std::ios::binary);
    if (!in) {
      util::usage_error(fmt::format("cannot read --body-file '{}'", args.body_file), "");
    }
    std::stringstream ss;
    ss << in.rdbuf();
    o.body = ss.str();
  }
  if (auto ok = loadgen::check_load_options(o); !ok) {
    // Resource limits are runtime failures (exit 1); the rest are usage mistakes (exit 2).
    const bool limit = ok.error().message.find("RLIMIT_NOFILE") != std::string::npos;
    throw util::FatalError(ok.error(), limit ? util::kExitRuntime : util::kExitUsage);
  }
  if (auto ep = loadgen::resolve(o.requests[0].url); !ep) {
    throw util::FatalError(ep.error(), util::kExitUsage);
  }

  g_stop.store(false);
  o.stop = &g_stop;
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigaction(SIGINT, &sa, nullptr);

  auto result = loadgen::run_load(o);
  if (!result) throw util::FatalError(result.error());
  const loadgen::LoadResult& r = *result;
  const loadgen::LoadAssessment a = loadgen::assess(r, o);
  const bool open_loop = o.rate_per_s > 0;
  std::uint64_t responses = 0;
  for (auto k : {loadgen::Outcome::kOk, loadgen::Outcome::kStatus4xx, loadgen::Outcome::kStatus5xx})
    responses += r.outcomes[static_cast<int>(k)];

  if (args.json) {
    nlohmann::json j;
    j["urls"] = args.urls;
    j["mode"] = open_loop ? "open" : "closed";
    j["protocol"] = o.h2 ? "h2c" : "http/1.1";
    j["target_rate"] = open_loop ? nlohmann::json(o.rate_per_s) : nlohmann::json(nullptr);
    j["threads"] = r.threads;
    j["connections"] = r.connections;
    j["requests"] = r.requests;
    j["duration_s"] = r.duration_s;
    j["rps"] = a.rps;
    j["latency_ms"] = percentiles_json(r.latency);
    j["service_time_ms"] = percentiles_json(r.service);
    nlohmann::json errors;
    for (int k = 1; k < loadgen::kOutcomeCount; ++k) {
      errors[loadgen::outcome_name(static_cast<loadgen::Outcome>(k))] = r.outcomes[k];
    }
    j["ok"] = r.outcomes[0];
    j["errors"] = errors;
    j["status"] = {{"1xx", r.status_classes[1]}, {"2xx", r.status_classes[2]},
                   {"3xx", r.status_classes[3]}, {"4xx", r.status_classes[4]},
                   {"5xx", r.status_classes[5]}, {"other", r.status_classes[0]}};
    j["requests_per_url"] = r.requests_per_url;
    j["warmup_requests"] = r.warmup_requests;
    j["late_sends"] = r.late_sends;
    j["dropped_sends"] = r.dropped_sends;
    j["max_send_delay_ms"] = ms(r.max_send_delay_us);
    j["connects"] = r.connects;
    j["bytes_read"] = r.bytes_read;
    j["bytes_written"] = r.bytes_written;
    j["connections_needed"] = a.connections_needed;
    j["fell_behind"] = a.fell_behind;
    j["too_few_connections"] = a.too_few_connections;
    j["warnings"] = a.warnings;
    j["slowest"] = nlohmann::json::array();
    for (const auto& s : r.slowest) {
      j["slowest"].push_back({{"trace_id", s.trace_id},
                              {"latency_ms", ms(s.latency_us)},
                              {"service_time_ms", ms(s.service_us)},
                              {"outcome", loadgen::outcome_name(s.outcome)},
                              {"status", s.status},
                              {"url", args.urls[s.url_index]}});
    }
    j["timeline"] = nlohmann::json::array();
    for (std::size_t s = 0; s < r.timeline.size(); ++s) {
      const auto& b = r.timeline[s];
      j["timeline"].push_back(
          {{"second", s},
           {"requests", b.requests},
           {"errors", b.errors},
           {"mean_ms", b.latency_count ? b.latency_sum_us / 1000.0 / b.latency_count : 0.0},
           {"max_ms", ms(b.latency_max_us)}});
    }
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << fmt::format(
        "chokepoint load {}: {}, {} thread(s), {} {} connection(s)\n",
        args.urls.size() == 1 ? args.urls[0] : fmt::format("{} URLs", args.urls.size()),
        open_loop ? fmt::format("open loop at {:g} req/s", o.rate_per_s)
                  : std::string("closed loop (--rate max)"),
        r.threads, r.connections, o.h2 ? "h2c" : "HTTP/1.1");
    std::cout << fmt::format("  requests   {} in {:.2f} s = {:.1f} req/s", r.requests, r.duration_s,
                             a.rps);
    if (open_loop) std::cout << fmt::format(" ({:.1f}% of target)", a.achieved_ratio * 100);
    std::cout << "\n";
    std::cout << fmt::format("  outcomes   ok {}", r.outcomes[0]);
    for (int k = 1; k < loadgen::kOutcomeCount; ++k) {
      std::cout << fmt::format("  {} {}", loadgen::outcome_name(static_cast<loadgen::Outcome>(k)),
                               r.outcomes[k]);
    }
    std::cout << "\n";
    std::cout << "  latency    " << percentiles_text(r.latency)
              << (open_loop ? "  (from intended send time)\n" : "\n");
    std::cout << "  service    " << percentiles_text(r.service) << "  (uncorrected)\n";
    if (open_loop) {
      std::cout << fmt::format(
          "  sends      {} late (> {} ms), {} dropped, max delay {:.3f} ms; Little's law needs "
          "{:.1f} connections\n",
          r.late_sends, o.late_threshold_ns / 1'000'000, r.dropped_sends, ms(r.max_send_delay_us),
          a.connections_needed);
    }
    if (r.warmup_requests > 0) {
      std::cout << fmt::format("  warmup     {} requests not counted\n", r.warmup_requests);
    }
    if (!r.slowest.empty()) {
      std::cout << "  slowest    trace id (traceparent)               latency ms  service ms  "
                   "outcome\n";
      for (const auto& s : r.slowest) {
        std::cout << fmt::format("             {}  {:>10.3f}  {:>10.3f}  {}{}\n", s.trace_id,
                                 ms(s.latency_us), ms(s.service_us),
                                 loadgen::outcome_name(s.outcome),
                                 s.status ? fmt::format(" {}", s.status) : "");
      }
    }
    if (args.timeline) {
      std::cout << "  timeline   second  requests  errors   mean ms    max ms\n";
      for (std::size_t s = 0; s < r.timeline.size(); ++s) {
        const auto& b = r.timeline[s];
        std::cout << fmt::format(
            "             {:>6}  {:>8}  {:>6}  {:>8.3f}  {:>8.3f}\n", s, b.requests, b.errors,
            b.latency_count ? b.latency_sum_us / 1000.0 / b.latency_count : 0.0,
            ms(b.latency_max_us));
      }
    }
    for (const auto& w : a.warnings) std::cout << "  warning: " << w << "\n";
  }
  if (r.requests > 0 && responses == 0) {
    throw util::FatalError(
        util::Error{fmt::format("no request got a response ({})", r.first_error),
                    "check that the server is up and listening on that address"});
  }
  return util::kExitOk;
}

}  // namespace

Subcommand make_load_command(CLI::App& root) {
  auto args = std::make_shared<LoadArgs>();
  CLI::App* cli = root.add_subcommand(
      "load",
      "HTTP/1.1 load test: open loop at a fixed --rate (latency corrected for coordinated "
      "omission) or closed loop with --rate max");
  cli->add_option("URL", args->urls, "http:// URL(s); several URLs must share host and port")
      ->required();
  cli->add_option("--weights", args->weights, "relative weight of each URL, e.g. 3,1")
      ->delimiter(',');
  cli->add_option("-t,--threads", args->threads, "generator threads (each runs one epoll loop)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cli->add_option("-c,--connections", args->connections, "keep-alive connections, over all threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 10'000'000));
  cli->add_option("-r,--rate", args->rate,
                  "requests per second (open loop), or 'max' (closed loop)")
      ->capture_default_str();
  cli->add_option("-d,--duration", args->duration, "measured time after warmup (500ms, 10s, 2m)")
      ->capture_default_str();
  cli->add_option("-n,--requests", args->requests,
                  "stop after this many measured requests (alone: no time limit)");
  cli->add_option("--warmup", args->warmup,
                  "time before measuring starts; its requests are not counted")
      ->capture_default_str();
  cli->add_option("--timeout", args->timeout, "per-request deadline, from when it is sent")
      ->capture_default_str();
  cli->add_option("-m,--method", args->method, "HTTP method")->capture_default_str();
  cli->add_option("-H,--header", args->headers, "extra header 'Name: value' (repeatable)");
  cli->add_option("--body", args->body, "request body");
  cli->add_option("--body-file", args->body_file, "read the request body from a file")
      ->excludes("--body");
  cli->add_flag("--h2", args->h2,
                "HTTP/2 over cleartext with prior knowledge (h2c) via nghttp2, one stream in "
                "flight per connection");
  cli->add_flag("--json", args->json, "print the report as JSON");
  cli->add_flag("--timeline", args->timeline, "print the per-second timeline (always in --json)");
  cli->footer("See docs/load.md.");
  return Subcommand{cli, [args, cli] {
                      // --requests without --duration: no time limit.
                      LoadArgs a = *args;
                      if (a.requests > 0 && cli->count("--duration") == 0) a.duration = "0s";
                      return run_load_command(a);
                    }};
}

}  // namespace chokepoint::app
