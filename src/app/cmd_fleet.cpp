// chokepoint fleet: which instances a Prometheus server sees bound by what, per tier, from the
// chokepoint agents it scrapes (now, or the most frequent verdict over --range).
#include <iostream>
#include <memory>

#include "app/cli_values.h"
#include "app/subcommand.h"
#include "monitor/fleet.h"
#include "util/fatal.h"

namespace chokepoint::app {
namespace {

struct FleetArgs {
  std::string prometheus;
  std::string range;
  std::string tier_label = "job";
  std::string timeout = "5s";
};

int run_fleet(const FleetArgs& a) {
  monitor::FleetOptions o;
  o.prometheus_url = a.prometheus;
  o.range = a.range;
  o.tier_label = a.tier_label;
  o.timeout_ns = parse_duration_ns(a.timeout, "--timeout");
  if (o.timeout_ns <= 0) util::usage_error("--timeout must be above 0", "pass e.g. --timeout 5s");
  if (o.prometheus_url.rfind("http://", 0) != 0 && o.prometheus_url.rfind("https://", 0) != 0) {
    util::usage_error("--prometheus must be an http:// or https:// URL",
                      "pass e.g. --prometheus http://127.0.0.1:9090");
  }
  auto report = monitor::query_fleet(o);
  if (!report) {
    throw util::FatalError(report.error(), report.error().errno_value == EINVAL
                                               ? util::kExitUsage
                                               : util::kExitRuntime);
  }
  std::cout << monitor::fleet_text(*report, o);
  return util::kExitOk;
}

}  // namespace

Subcommand make_fleet_command(CLI::App& root) {
  auto args = std::make_shared<FleetArgs>();
  CLI::App* cli = root.add_subcommand(
      "fleet", "Ask Prometheus which instances the chokepoint agents find bound, and by what");
  cli->add_option("--prometheus", args->prometheus, "the Prometheus server's base URL")->required();
  cli->add_option("--range", args->range,
                  "the most frequent verdict over this PromQL duration (10m, 1h) instead of now");
  cli->add_option("--tier-label", args->tier_label, "the label that names a tier")
      ->capture_default_str();
  cli->add_option("--timeout", args->timeout, "per query")->capture_default_str();
  cli->footer(
      "Examples:\n"
      "  chokepoint fleet --prometheus http://127.0.0.1:9090\n"
      "  chokepoint fleet --prometheus http://prometheus:9090 --range 1h --tier-label service");
  return {cli, [args] { return run_fleet(*args); }};
}

}  // namespace chokepoint::app
