// chokepoint knee URL --slo 'p99<50ms': the highest rate the service sustains within its SLO,
// the throughput/latency curve, what saturates at the knee (with a target), and a Universal
// Scalability Law projection from a closed-loop concurrency sweep (--usl, --target-rate).
// This file parses the options and wires: the run is loadgen/knee_runner.h, its report
// render/knee_report.h and report/page.h (knee_html).
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "app/background_load.h"
#include "app/cli_values.h"
#include "app/recorded_window.h"
#include "app/request_args.h"
#include "app/subcommand.h"
#include "app/target_session.h"
#include "loadgen/knee_runner.h"
#include "render/json_text.h"
#include "render/knee_report.h"
#include "report/page.h"
#include "util/atomic_file.h"
#include "util/clock.h"
#include "util/escape.h"
#include "util/fatal.h"
#include "util/stop_signal.h"

namespace chokepoint::app {
namespace {

// Set by SIGINT and SIGTERM once the run starts (util/stop_signal.h).
std::atomic<bool>& g_stop = util::stop_flag();

struct KneeArgs {
  RequestArgs request;
  TargetArgs target;
  std::string slo;
  std::string max_errors = "0.1%";
  double start_rate = 100;
  double max_rate = 1'000'000;
  std::string tolerance = "2%";
  int max_steps = 30;
  std::string step = "5s";
  std::string warmup = "1s";
  int connections = 16;
  int max_connections = 1000;
  int threads = 1;
  std::string interval = "100ms";
  bool usl = false;
  int max_concurrency = 32;
  double target_rate = 0;
  double max_utilization = 0.8;
  std::string usl_csv;
  bool json = false;
  std::string html;
  std::string record;  // --record: keep the run in a recording (replay, diff, report)
};

// Runs one step of load; with a target session, diagnoses the measured window at the same time.
loadgen::StepRun run_step(loadgen::LoadOptions o, const TargetSession* session,
                          std::int64_t interval_ns) {
  loadgen::StepRun step;
  util::Result<loadgen::LoadResult> result = util::Error{"the step did not run", "", 0};
  if (session) {
    const std::int64_t window_ns = o.duration_ns;
    o.duration_ns += 30 * util::kNsPerSec;  // the window's end stops the load; this is a backstop
    BackgroundLoad load(o);
    load.wait_warmup(g_stop);
    auto window = session->diagnose(window_ns, interval_ns, &g_stop);
    if (window) {
      step.diagnosis = render::step_diagnosis(window->observation, window->diagnosis);
    } else {
      step.diagnosis_error = window.error().message;
    }
    result = load.finish();
  } else {
    o.stop = &g_stop;
    result = loadgen::run_load(o);
  }
  if (!result) throw util::FatalError(result.error());
  step.load = std::move(*result);
  return step;
}

int run_knee(KneeArgs a) {
  const bool search = !a.slo.empty();
  if (a.target_rate > 0) a.usl = true;
  if (!search && !a.usl) {
    util::usage_error("give --slo (the knee search), --usl (the capacity sweep), or both",
                      "e.g. chokepoint knee http://127.0.0.1:8080/ --slo 'p99<50ms'");
  }
  loadgen::KneeRunOptions ro;
  render::KneeContext context;
  if (search) {
    auto parsed = loadgen::parse_slo(a.slo);
    if (!parsed) util::usage_error(parsed.error().message, parsed.error().hint);
    for (const auto& t : parsed->terms)
      context.slo_limit_us = std::max(context.slo_limit_us, t.limit_us);
    ro.slo = std::move(*parsed);
  }
  auto max_errors = loadgen::parse_ratio(a.max_errors);
  if (!max_errors)
    util::usage_error("--max-errors: " + max_errors.error().message, max_errors.error().hint);
  auto tolerance = loadgen::parse_ratio(a.tolerance);
  if (!tolerance || *tolerance < 0.001 || *tolerance > 0.5) {
    util::usage_error(fmt::format("--tolerance '{}' is not between 0.1% and 50%", a.tolerance),
                      "the default 2% stops when the knee is known within 2%");
  }
  if (!(a.start_rate > 0) || !(a.max_rate >= a.start_rate)) {
    util::usage_error("--start-rate must be above 0 and at most --max-rate",
                      "e.g. --start-rate 100 --max-rate 100000");
  }
  if (a.max_connections < a.connections) {
    util::usage_error("--max-connections must be at least --connections",
                      "raise --max-connections or lower --connections");
  }
  if (!(a.max_utilization > 0 && a.max_utilization <= 1)) {
    util::usage_error("--max-utilization must be in (0, 1]",
                      "0.8 plans each instance at 80% of its peak throughput");
  }
  const std::int64_t step_ns = parse_duration_ns(a.step, "--step");
  const std::int64_t warmup_ns = parse_duration_ns(a.warmup, "--warmup");
  const std::int64_t interval_ns = parse_duration_ns(a.interval, "--interval");
  if (step_ns < 100'000'000) util::usage_error("--step must be at least 100ms", "e.g. --step 5s");
  if (interval_ns < 1'000'000 || interval_ns > step_ns) {
    util::usage_error("--interval must be at least 1ms and at most --step",
                      "e.g. --interval 100ms");
  }

  // A run takes minutes: an output it could not write is reported now, not at its end.
  for (const std::string* path : {&a.html, &a.record}) {
    if (path->empty()) continue;
    if (auto w = util::check_writable(*path); !w) throw util::FatalError(w.error());
  }

  loadgen::LoadOptions& base = ro.base;
  apply_request_args(a.request, base);
  base.threads = a.threads;
  base.connections = a.max_connections;  // the most any step opens: checked against the fd limit
  base.warmup_ns = warmup_ns;
  base.duration_ns = step_ns;
  base.rate_per_s = a.start_rate;
  preflight(base);
  if (a.usl) {
    loadgen::LoadOptions sweep = base;
    sweep.connections = std::max(a.max_concurrency, 1);
    preflight(sweep);
  }
  ro.max_error_ratio = *max_errors;
  ro.search.start_rate_per_s = a.start_rate;
  ro.search.max_rate_per_s = a.max_rate;
  ro.search.tolerance = *tolerance;
  ro.search.max_steps = a.max_steps;
  ro.min_connections = a.connections;
  ro.max_connections = a.max_connections;
  ro.usl = a.usl;
  ro.max_concurrency = a.max_concurrency;
  ro.target_rate_per_s = a.target_rate;
  ro.max_utilization = a.max_utilization;

  const bool has_target = !a.target.pids.empty() || !a.target.name.empty() ||
                          !a.target.cgroup.empty() || !a.target.command.empty();
  std::unique_ptr<TargetSession> session;
  if (has_target) session = TargetSession::open(a.target);
  util::stop_on_signals();

  context.urls = a.request.urls;
  context.slo = a.slo;
  context.max_error_ratio = *max_errors;
  context.tolerance = *tolerance;
  context.step_s = static_cast<double>(step_ns) / 1e9;
  context.warmup_s = static_cast<double>(warmup_ns) / 1e9;
  if (session) context.target = session->describe();
  context.usl = a.usl;
  context.target_rate_per_s = a.target_rate;
  context.max_utilization = a.max_utilization;

  // The live tables, a row per finished step.
  const bool live = !a.json;
  if (live && search) std::cout << render::knee_search_header(context) << std::flush;
  std::size_t search_steps = 0;
  loadgen::KneeObserver observer;
  if (live) {
    observer.search_step = [&](const loadgen::KneeStep& s) {
      std::cout << render::knee_step_line(s, ++search_steps) << std::flush;
    };
    observer.sweep_start = [&] { std::cout << render::usl_sweep_header(context) << std::flush; };
    observer.sweep_step = [&](const loadgen::KneeStep& s) {
      std::cout << render::usl_step_line(s) << std::flush;
    };
  }
  const loadgen::StepRunner step_runner = [&](const loadgen::LoadOptions& o) {
    return run_step(o, session.get(), interval_ns);
  };
  const loadgen::KneeRun run = loadgen::run_knee(ro, step_runner, g_stop, observer);
  if (session) session->end_command();

  if (a.usl && !a.usl_csv.empty()) {
    if (auto w = util::write_file_atomically(a.usl_csv, render::usl_csv(run)); !w) {
      util::print_error(w.error());
    }
  }
  const nlohmann::json out = render::knee_json(run, context);
  if (a.json) {
    std::cout << render::json_text(out);
  } else {
    std::cout << render::knee_summary_text(run, context);
  }
  std::cout.flush();
  const std::string label = a.request.urls.size() == 1
                                ? a.request.urls[0]
                                : fmt::format("{} URLs", a.request.urls.size());
  if (!a.record.empty()) {
    // The text as the live run printed it: its tables, row by row, then the summary.
    std::string text;
    if (search) {
      text += render::knee_search_header(context);
      for (std::size_t i = 0; i < run.steps.size(); ++i) {
        text += render::knee_step_line(run.steps[i], i + 1);
      }
    }
    if (!run.sweep.empty()) {
      text += render::usl_sweep_header(context);
      for (const auto& s : run.sweep) text += render::usl_step_line(s);
    }
    text += render::knee_summary_text(run, context);
    record_run_alone(a.record, kKneeRunTargetKind, label, {out, text});
  }
  if (!a.html.empty()) {
    const std::string page = report::knee_html(label, out);
    if (auto w = util::write_file_atomically(a.html, page); !w) throw util::FatalError(w.error());
    std::cerr << fmt::format("chokepoint: wrote {} ({} bytes)\n", util::terminal_text(a.html),
                             page.size());
  }
  if (run.interrupted) return util::kExitRuntime;
  if (!run.any_response()) {
    // The first step's failure says what went wrong (every step failed the same way or worse).
    const loadgen::KneeStep* first = !run.steps.empty()   ? &run.steps.front()
                                     : !run.sweep.empty() ? &run.sweep.front()
                                                          : nullptr;
    if (!first) {
      throw util::FatalError(util::Error{"no request got a response",
                                         "check that the server is up and listening there", 0});
    }
    throw util::FatalError(
        util::Error{fmt::format("no request got a response ({})", first->load.first_error),
                    loadgen::failure_hint(first->load, base)});
  }
  return util::kExitOk;
}

}  // namespace

Subcommand make_knee_command(CLI::App& root) {
  auto args = std::make_shared<KneeArgs>();
  CLI::App* cli = root.add_subcommand(
      "knee",
      "Find the highest request rate that meets an SLO (double, then bisect), what saturates "
      "there, and project capacity with the Universal Scalability Law");
  // The URLs and a target command are both positional. Only arguments that look like URLs are
  // URLs, so `knee URL --slo .. -- ./server --port 8080` gives the rest to the command.
  CLI::Option* url = add_request_options(cli, args->request);
  url->check(CLI::Validator(
      [](std::string& text) {
        return text.find("://") == std::string::npos ? std::string("not a URL") : std::string();
      },
      "URL"));
  cli->validate_positionals();
  cli->add_option("--slo", args->slo, "latency objective, e.g. 'p99<50ms' or 'p50<5ms,p99<50ms'");
  cli->add_option("--max-errors", args->max_errors, "error bound per step, e.g. 0.1% or 0")
      ->capture_default_str();
  cli->add_option("--start-rate", args->start_rate, "first rate tried, req/s")
      ->capture_default_str();
  cli->add_option("--max-rate", args->max_rate, "highest rate tried, req/s")->capture_default_str();
  cli->add_option("--tolerance", args->tolerance, "bisect until the knee is known within this")
      ->capture_default_str();
  cli->add_option("--max-steps", args->max_steps, "give up after this many steps")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cli->add_option("--step", args->step, "measured time per step")->capture_default_str();
  cli->add_option("--warmup", args->warmup, "load before each step is measured")
      ->capture_default_str();
  cli->add_option("-c,--connections", args->connections,
                  "fewest connections per step (more when rate x SLO limit needs them)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  cli->add_option("--max-connections", args->max_connections, "most connections per step")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  cli->add_option("-t,--threads", args->threads, "generator threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  add_target_options(cli, args->target);
  cli->add_option("-i,--interval", args->interval, "with a target: thread sampling interval")
      ->capture_default_str();
  cli->add_flag("--usl", args->usl,
                "also sweep closed-loop concurrency 1, 2, 4, ... and fit the USL");
  cli->add_option("--max-concurrency", args->max_concurrency, "the USL sweep's last level")
      ->capture_default_str()
      ->check(CLI::Range(3, 100'000));
  cli->add_option("--target-rate", args->target_rate,
                  "req/s the whole service must carry: how many instances it needs (implies --usl)")
      ->check(CLI::PositiveNumber);
  cli->add_option("--max-utilization", args->max_utilization,
                  "plan each instance at most at this share of its USL peak")
      ->capture_default_str();
  cli->add_option("--usl-csv", args->usl_csv,
                  "write the sweep as concurrency,throughput (for chokepoint usl)");
  cli->add_flag("--json", args->json, "print the report as JSON");
  cli->add_option("--record", args->record,
                  "also keep the run in a recording: chokepoint replay prints it, diff compares "
                  "two runs (the knee, the USL peak), report draws it");
  cli->add_option("-o,--output", args->html,
                  "also write the run as one self-contained HTML page (the knee curve, the USL "
                  "fit)");
  cli->footer(
      "Examples:\n"
      "  chokepoint knee http://127.0.0.1:8080/ --slo 'p99<50ms'\n"
      "  chokepoint knee http://127.0.0.1:8080/ --slo 'p99<20ms' --pid 1234\n"
      "  chokepoint knee http://127.0.0.1:8080/ --usl --target-rate 50000\n"
      "  chokepoint knee http://127.0.0.1:8080/ --slo 'p99<50ms' --usl -o knee.html\n"
      "See docs/knee.md.");
  return {cli, [args] { return run_knee(*args); }};
}

}  // namespace chokepoint::app
