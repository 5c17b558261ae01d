// chokepoint fleet: which instances a Prometheus server sees bound by what, per tier, from the
// chokepoint agents it scrapes (now, or the most frequent verdict over --range).
#include <fmt/format.h>

#include <cmath>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "app/cli_values.h"
#include "app/subcommand.h"
#include "monitor/fleet.h"
#include "util/decimal.h"
#include "util/fatal.h"

namespace chokepoint::app {
namespace {

struct FleetArgs {
  std::string prometheus;
  std::string range;
  std::string tier_label = "job";
  std::string timeout = "5s";
  std::vector<std::string> usl;          // TIER=FILE.csv
  std::vector<std::string> target_rate;  // TIER=REQ_PER_S
  double max_utilization = 0.8;
};

// "TIER=VALUE" split at its first '='; a usage error naming the flag otherwise.
std::pair<std::string, std::string> tier_value(const std::string& arg, const char* flag,
                                               const char* example) {
  const auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == arg.size()) {
    util::usage_error(fmt::format("{} takes TIER=VALUE, not '{}'", flag, arg),
                      fmt::format("name the tier as --tier-label does, e.g. {} {}", flag, example));
  }
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

// --usl and --target-rate, tier by tier: each tier named by one needs the other.
std::map<std::string, monitor::TierCapacity> capacity_options(const FleetArgs& a) {
  if (!(a.max_utilization > 0 && a.max_utilization <= 1)) {
    util::usage_error("--max-utilization must be in (0, 1]", "pass e.g. --max-utilization 0.8");
  }
  std::map<std::string, double> rates;
  for (const auto& arg : a.target_rate) {
    auto [tier, text] = tier_value(arg, "--target-rate", "web=20000");
    auto rate = util::parse_decimal(text);
    if (!rate || !(*rate > 0) || !std::isfinite(*rate)) {
      util::usage_error(fmt::format("--target-rate {}: '{}' is not a rate above 0", tier, text),
                        "give requests per second, e.g. --target-rate web=20000");
    }
    rates[tier] = *rate;
  }
  std::map<std::string, monitor::TierCapacity> out;
  for (const auto& arg : a.usl) {
    auto [tier, path] = tier_value(arg, "--usl", "web=web-usl.csv");
    auto rate = rates.find(tier);
    if (rate == rates.end()) {
      util::usage_error(fmt::format("--usl {} needs --target-rate {}=RATE", tier, tier),
                        "say what the tier must carry, e.g. --target-rate " + tier + "=20000");
    }
    auto fit = loadgen::fit_usl_file(path);
    if (!fit) throw util::FatalError(fit.error());
    out[tier] = monitor::TierCapacity{path, fit->fit, rate->second, a.max_utilization};
  }
  for (const auto& [tier, rate] : rates) {
    if (out.count(tier) == 0) {
      util::usage_error(fmt::format("--target-rate {} needs --usl {}=FILE.csv", tier, tier),
                        "measure one instance with chokepoint knee URL --usl --usl-csv FILE.csv");
    }
  }
  return out;
}

int run_fleet(const FleetArgs& a) {
  monitor::FleetOptions o;
  o.prometheus_url = a.prometheus;
  o.range = a.range;
  o.tier_label = a.tier_label;
  o.timeout_ns = parse_duration_ns(a.timeout, "--timeout");
  o.capacity = capacity_options(a);
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
  cli->add_option("--usl", args->usl,
                  "TIER=FILE.csv: one instance's concurrency,throughput sweep (chokepoint knee "
                  "URL --usl --usl-csv FILE.csv); with --target-rate, how many instances the "
                  "tier needs")
      ->type_name("TIER=FILE");
  cli->add_option("--target-rate", args->target_rate, "TIER=REQ_PER_S the tier must carry")
      ->type_name("TIER=RATE");
  cli->add_option("--max-utilization", args->max_utilization,
                  "plan each instance at most at this share of its USL peak")
      ->capture_default_str();
  cli->footer(
      "Examples:\n"
      "  chokepoint fleet --prometheus http://127.0.0.1:9090\n"
      "  chokepoint fleet --prometheus http://prometheus:9090 --range 1h --tier-label service\n"
      "  chokepoint fleet --prometheus http://127.0.0.1:9090 --usl web=web-usl.csv "
      "--target-rate web=20000");
  return {cli, [args] { return run_fleet(*args); }};
}

}  // namespace chokepoint::app
