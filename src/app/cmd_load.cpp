// chokepoint load URL...: HTTP/1.1 load, open loop (--rate R) or closed loop (--rate max).
#include <fmt/format.h>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/cli_values.h"
#include "app/recorded_window.h"
#include "app/request_args.h"
#include "app/subcommand.h"
#include "loadgen/assess.h"
#include "loadgen/load.h"
#include "render/json_text.h"
#include "render/load_report.h"
#include "report/page.h"
#include "util/atomic_file.h"
#include "util/escape.h"
#include "util/fatal.h"
#include "util/plural.h"
#include "util/stop_signal.h"

namespace chokepoint::app {

namespace {

struct LoadArgs {
  RequestArgs request;
  int threads = 1;
  int connections = 10;
  std::string rate = "max";
  std::string duration = "10s";
  std::uint64_t requests = 0;
  std::string warmup = "0s";
  bool json = false;
  bool timeline = false;
  std::string html;    // -o: also write the run as an HTML page
  std::string record;  // --record: keep the run in a recording (replay, diff, report)
};

// The run as the terminal shows it.
std::string load_text(const LoadArgs& args, const loadgen::LoadOptions& o,
                      const loadgen::LoadResult& r, const loadgen::LoadAssessment& a) {
  const bool open_loop = o.rate_per_s > 0;
  std::string out =
      fmt::format("chokepoint load {}: {}, {}, {} {} {}\n",
                  args.request.urls.size() == 1 ? util::terminal_text(args.request.urls[0])
                                                : fmt::format("{} URLs", args.request.urls.size()),
                  open_loop ? fmt::format("open loop at {:g} req/s", o.rate_per_s)
                            : std::string("closed loop (--rate max)"),
                  util::count_of(r.threads, "thread"), r.connections, o.h2 ? "h2c" : "HTTP/1.1",
                  r.connections == 1 ? "connection" : "connections");
  out += render::load_text_summary(r, o, a, "  ");
  if (!r.slowest.empty()) {
    out += "  slowest    trace id (traceparent)               latency ms  service ms  outcome\n";
    for (const auto& s : r.slowest) {
      out += fmt::format("             {}  {:>10.3f}  {:>10.3f}  {}{}\n", s.trace_id,
                         render::to_ms(s.latency_us), render::to_ms(s.service_us),
                         loadgen::outcome_name(s.outcome),
                         s.status ? fmt::format(" {}", s.status) : "");
    }
  }
  if (args.timeline) {
    out +=
        "  timeline   second  requests  errors   mean ms    p50 ms    p99 ms  p99.9 ms    max ms\n";
    for (std::size_t s = 0; s < r.timeline.size(); ++s) {
      const auto& b = r.timeline[s];
      const auto& p = b.percentiles;
      out += fmt::format(
          "             {:>6}  {:>8}  {:>6}  {:>8.3f}  {:>8.3f}  {:>8.3f}  {:>8.3f}  {:>8.3f}\n", s,
          b.requests, b.errors, b.latency_count ? b.latency_sum_us / 1000.0 / b.latency_count : 0.0,
          render::to_ms(p.p50_us), render::to_ms(p.p99_us), render::to_ms(p.p999_us),
          render::to_ms(b.latency_max_us));
    }
  }
  return out;
}

int run_load_command(const LoadArgs& args) {
  loadgen::LoadOptions o;
  apply_request_args(args.request, o);
  o.rate_per_s = parse_rate_per_s(args.rate, "--rate");
  o.threads = args.threads;
  o.connections = args.connections;
  o.max_requests = args.requests;
  // --requests alone means "this many, however long it takes"; with --duration, whichever first.
  o.duration_ns = parse_duration_ns(args.duration, "--duration");
  o.warmup_ns = parse_duration_ns(args.warmup, "--warmup");
  preflight(o);
  for (const std::string* path : {&args.html, &args.record}) {
    if (path->empty()) continue;
    if (auto w = util::check_writable(*path); !w) throw util::FatalError(w.error());
  }

  // SIGINT and SIGTERM end the run early; the report covers what ran.
  o.stop = &util::stop_on_signals();

  auto result = loadgen::run_load(o);
  if (!result) throw util::FatalError(result.error());
  const loadgen::LoadResult& r = *result;
  const loadgen::LoadAssessment a = loadgen::assess(r, o);
  const std::string label = args.request.urls.size() == 1
                                ? args.request.urls[0]
                                : fmt::format("{} URLs", args.request.urls.size());
  const RecordedLoad load{render::load_json(r, o, a, args.request.urls), load_text(args, o, r, a)};
  std::cout << (args.json ? render::json_text(load.json) : load.text);
  std::cout.flush();
  if (!args.record.empty()) record_run_alone(args.record, kLoadRunTargetKind, label, load);
  if (!args.html.empty()) {
    const std::string page = report::load_html(label, load.json);
    if (auto w = util::write_file_atomically(args.html, page); !w) {
      throw util::FatalError(w.error());
    }
    std::cerr << fmt::format("chokepoint: wrote {} ({} bytes)\n", util::terminal_text(args.html),
                             page.size());
  }
  if (r.requests > 0 && loadgen::responses(r) == 0) {
    throw util::FatalError(util::Error{fmt::format("no request got a response ({})", r.first_error),
                                       loadgen::failure_hint(r, o)});
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
  add_request_options(cli, args->request);
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
  cli->add_flag("--json", args->json, "print the report as JSON");
  cli->add_option("-o,--output", args->html,
                  "also write the run as one self-contained HTML page (latency, throughput, "
                  "errors over time)");
  cli->add_flag("--timeline", args->timeline, "print the per-second timeline (always in --json)");
  cli->add_option("--record", args->record,
                  "also keep the run in a recording: chokepoint replay prints it, diff compares "
                  "two runs (throughput, p50, p99), report draws it");
  cli->footer(
      "Examples:\n"
      "  chokepoint load http://127.0.0.1:8080/ --rate 1000 -d 10s   # open loop at 1000 req/s\n"
      "  chokepoint load http://127.0.0.1:8080/ --rate max -c 64      # closed loop, 64 "
      "connections\n"
      "  chokepoint load http://127.0.0.1:8080/ -n 10000 --json       # 10,000 requests, as JSON\n"
      "  chokepoint load http://127.0.0.1:8080/ --rate 500 --record before.chokepoint\n"
      "  (fix, restart)\n"
      "  chokepoint load http://127.0.0.1:8080/ --rate 500 --record after.chokepoint\n"
      "  chokepoint diff before.chokepoint after.chokepoint              # p99 and throughput\n"
      "See docs/load.md.");
  return Subcommand{
      cli, [args, cli] {
        // --requests without --duration: no time limit.
        LoadArgs a = *args;
        // -d 0 means what it means in every subcommand: a usage error. No time
        // limit is --requests without --duration.
        if (cli->count("--duration") > 0 && parse_duration_ns(a.duration, "--duration") == 0) {
          util::usage_error("--duration must be above 0",
                            "pass e.g. --duration 10s; for no time limit give "
                            "--requests N without --duration");
        }
        if (a.requests > 0 && cli->count("--duration") == 0) a.duration = "0s";
        return run_load_command(a);
      }};
}

}  // namespace chokepoint::app
