// chokepoint check: the Nagios/Icinga plugin mode. Watches TARGET for one window (the diagnose
// path), judges its state shares against --warn and --crit, prints one status line with
// perfdata and exits with the plugin API's code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad
// input or a target that cannot be watched).
#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <optional>

#include "app/cli_values.h"
#include "app/subcommand.h"
#include "collect/delayacct/delay_accounting.h"
#include "collect/procfs/proc_fs.h"
#include "monitor/nagios.h"
#include "monitor/target.h"
#include "monitor/threshold.h"
#include "monitor/window.h"
#include "util/fatal.h"
#include "util/stop_signal.h"

namespace chokepoint::app {
namespace {

constexpr int kUnknown = static_cast<int>(monitor::PluginState::kUnknown);

struct CheckArgs {
  std::string target;
  std::string warn;
  std::string crit;
  std::string duration = "5s";
  std::string interval = "100ms";
};

// Prints the UNKNOWN line (stdout, for the monitoring system) and the error with its hint
// (stderr, for a person); returns 3.
int unknown(const util::Error& e) {
  std::cout << monitor::nagios_unknown_line(e.message);
  std::cout.flush();
  util::print_error(e);
  return kUnknown;
}

std::optional<monitor::Threshold> threshold(const std::string& text, const char* flag) {
  if (text.empty()) return std::nullopt;
  auto t = monitor::parse_threshold(text);
  if (!t) {
    throw util::FatalError({fmt::format("{}: {}", flag, t.error().message), t.error().hint},
                           kUnknown);
  }
  return std::move(*t);
}

int run_check(const CheckArgs& a) {
  try {
    const auto warn = threshold(a.warn, "--warn");
    const auto crit = threshold(a.crit, "--crit");
    if (!warn && !crit) {
      return unknown({"give --warn, --crit or both",
                      "e.g. chokepoint check name:nginx --warn 'disk>0.3' --crit 'disk>0.6'"});
    }
    const std::int64_t duration_ns = parse_duration_ns(a.duration, "--duration");
    const std::int64_t interval_ns = parse_duration_ns(a.interval, "--interval");
    if (duration_ns <= 0 || interval_ns < 1'000'000 || interval_ns > duration_ns) {
      return unknown({"--duration must be above 0 and --interval from 1ms to --duration",
                      "pass e.g. --duration 5s --interval 100ms"});
    }
    auto target = monitor::parse_target(a.target);
    if (!target) return unknown(target.error());
    auto spec = monitor::resolve(*target);
    if (!spec) return unknown(spec.error());
    if (auto ok = collect::sampler::validate(*spec, collect::procfs::ProcFs()); !ok) {
      return unknown(ok.error());
    }
    collect::delayacct::DelayAccountingSwitch delay_accounting;
    std::atomic<bool>& stop = util::stop_on_signals();
    auto window = monitor::diagnose_window(*spec, {duration_ns, interval_ns, &stop, false});
    if (!window) return unknown(window.error());
    const monitor::StateShares shares = monitor::state_shares(window->diagnosis.split);
    const monitor::CheckResult result = monitor::judge(shares, warn, crit);
    std::cout << monitor::nagios_line(target->text, result, shares, window->diagnosis, warn, crit);
    std::cout.flush();
    return static_cast<int>(result.state);
  } catch (const util::FatalError& e) {
    return unknown(e.error());
  }
}

}  // namespace

Subcommand make_check_command(CLI::App& root) {
  auto args = std::make_shared<CheckArgs>();
  CLI::App* cli = root.add_subcommand(
      "check",
      "Nagios/Icinga plugin: watch a target for a window and alert on its time split (exit 0 OK, "
      "1 WARNING, 2 CRITICAL, 3 UNKNOWN)");
  cli->add_option("target", args->target,
                  "host, pid:PID, name:NAME, cgroup:/sys/fs/cgroup/PATH or service:UNIT")
      ->required();
  cli->add_option("-w,--warn", args->warn, "WARNING when this holds, e.g. 'disk>0.3'");
  cli->add_option("-c,--crit", args->crit, "CRITICAL when this holds, e.g. 'disk>0.6'");
  cli->add_option("-d,--duration", args->duration, "how long to watch")->capture_default_str();
  cli->add_option("-i,--interval", args->interval, "how often to sample thread states")
      ->capture_default_str();
  cli->footer(
      "A threshold is STATE OP SHARE, terms joined by ',' (any term that holds alerts).\n"
      "STATE: on_cpu, cpu_wait, disk, network, lock, memory (shares of busy time, the scale of\n"
      "diagnose's bottleneck shares), sleep, idle, busy (shares of all thread time).\n"
      "OP: >, >=, <, <=. SHARE: 0 to 1. Examples:\n"
      "  chokepoint check name:postgres --warn 'disk>0.3' --crit 'disk>0.6'\n"
      "  chokepoint check service:nginx --crit 'network>0.5,lock>0.5' --duration 10s");
  Subcommand sub{cli, [args] { return run_check(*args); }};
  sub.usage_error = unknown;
  return sub;
}

}  // namespace chokepoint::app
