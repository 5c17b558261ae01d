// chokepoint agent: watch targets continuously, one diagnosis window after another, and serve
// the time split, the verdict and the evidence to Prometheus (--listen). With --record-dir every
// target's windows go to a bounded recording, so replay works on the last hour.
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "app/cli_values.h"
#include "app/subcommand.h"
#include "app/version.h"
#include "collect/delayacct/delay_accounting.h"
#include "monitor/agent.h"
#include "monitor/config.h"
#include "monitor/metrics_server.h"
#include "monitor/statsd.h"
#include "monitor/target.h"
#include "util/escape.h"
#include "util/fatal.h"
#include "util/stop_signal.h"

namespace chokepoint::app {
namespace {

struct AgentArgs {
  std::vector<std::string> targets;
  std::string config;
  std::string listen = "127.0.0.1:9464";
  std::string window = "10s";
  std::string interval = "1s";
  std::string record_dir;
  std::string keep = "1h";
  std::string statsd;
};

int run_agent(AgentArgs a, const CLI::App& cli) {
  if (!a.config.empty()) {
    auto c = monitor::read_agent_config(a.config);
    if (!c) throw util::FatalError(c.error(), util::kExitUsage);
    // Flags win over the file.
    auto take = [&](const std::optional<std::string>& from, std::string& to, const char* flag) {
      if (from && cli.count(flag) == 0) to = *from;
    };
    take(c->listen, a.listen, "--listen");
    take(c->window, a.window, "--window");
    take(c->interval, a.interval, "--interval");
    take(c->record_dir, a.record_dir, "--record-dir");
    take(c->keep, a.keep, "--keep");
    take(c->statsd, a.statsd, "--statsd");
    if (a.targets.empty()) a.targets = c->targets;
  }
  monitor::AgentOptions o;
  o.chokepoint_version = kVersion;
  o.window_ns = parse_duration_ns(a.window, "--window");
  o.interval_ns = parse_duration_ns(a.interval, "--interval");
  o.keep_for_ns = parse_duration_ns(a.keep, "--keep");
  if (o.window_ns < 1'000'000'000) {
    util::usage_error("--window must be at least 1s", "pass e.g. --window 10s");
  }
  if (o.interval_ns < 1'000'000 || o.interval_ns > o.window_ns) {
    util::usage_error("--interval must be at least 1ms and at most --window",
                      "pass e.g. --interval 100ms");
  }
  if (o.keep_for_ns < o.window_ns) {
    util::usage_error("--keep must be at least one --window", "pass e.g. --keep 1h");
  }
  if (a.targets.empty()) {
    util::usage_error("give at least one --target (or targets in --config)",
                      "e.g. chokepoint agent --target host --target service:nginx");
  }
  for (const auto& text : a.targets) {
    auto t = monitor::parse_target(text);
    if (!t) throw util::FatalError(t.error(), util::kExitUsage);
    o.targets.push_back(std::move(*t));
  }
  o.record_dir = a.record_dir;
  auto listen = monitor::parse_listen(a.listen);
  if (!listen) throw util::FatalError(listen.error(), util::kExitUsage);

  std::unique_ptr<monitor::StatsdPusher> statsd;
  if (!a.statsd.empty()) {
    auto address = monitor::parse_listen(a.statsd, "--statsd");
    if (!address) throw util::FatalError(address.error(), util::kExitUsage);
    auto pusher = monitor::StatsdPusher::open(*address);
    if (!pusher) throw util::FatalError(pusher.error());
    statsd = std::move(*pusher);
  }
  monitor::StatsdPusher* push = statsd.get();
  monitor::WindowObserver on_window;
  if (push) {
    on_window = [push](const monitor::TargetState& s, const model::TimeSplit& w) {
      push->push(s, w);
    };
  }
  const double window_s = static_cast<double>(o.window_ns) / 1e9;
  auto agent = monitor::Agent::create(std::move(o), std::move(on_window));
  if (!agent) throw util::FatalError(agent.error());
  monitor::Agent* engine = agent->get();
  auto server = monitor::MetricsServer::start(*listen, [engine, push] {
    return monitor::agent_exposition(engine->snapshot(), engine->self_stats(),
                                     push ? push->exposition() : std::string());
  });
  if (!server) throw util::FatalError(server.error());
  collect::delayacct::DelayAccountingSwitch delay_accounting;
  std::atomic<bool>& stop = util::stop_on_signals();
  std::cerr << fmt::format(
      "chokepoint agent: serving http://{}:{}/metrics; watching {} target(s) in {:g} s windows\n",
      listen->host, (*server)->port(), a.targets.size(), window_s);
  engine->run(stop);
  std::cerr << "chokepoint agent: stopped\n";
  return util::kExitOk;
}

}  // namespace

Subcommand make_agent_command(CLI::App& root) {
  auto args = std::make_shared<AgentArgs>();
  CLI::App* cli = root.add_subcommand(
      "agent", "Watch targets continuously and serve their time split and verdict to Prometheus");
  cli->add_option("-t,--target", args->targets,
                  "host, pid:PID, name:NAME, cgroup:/sys/fs/cgroup/PATH or service:UNIT "
                  "(repeat for more)");
  cli->add_option("--config", args->config, "a TOML file with the options and targets")
      ->option_text("FILE");
  cli->add_option("--listen", args->listen, "serve /metrics on HOST:PORT (port 0: any free port)")
      ->capture_default_str();
  cli->add_option("-w,--window", args->window, "length of each diagnosis window")
      ->capture_default_str();
  cli->add_option("-i,--interval", args->interval, "how often to sample thread states")
      ->capture_default_str();
  cli->add_option("--record-dir", args->record_dir,
                  "keep every target's windows in DIR/targetN-NAME.chokepoint, for replay")
      ->option_text("DIR");
  cli->add_option("--keep", args->keep, "with --record-dir: how much of the past to keep")
      ->capture_default_str();
  cli->add_option("--statsd", args->statsd,
                  "also push every window to a StatsD server at HOST:PORT (UDP)");
  cli->footer(
      "SIGTERM or SIGINT stops the agent after the current windows. Examples:\n"
      "  chokepoint agent --target host --target service:nginx\n"
      "  chokepoint agent --target name:postgres --listen 127.0.0.1:9464 --record-dir "
      "/var/lib/chokepoint\n"
      "  chokepoint agent --target service:nginx --statsd 127.0.0.1:8125\n"
      "  chokepoint agent --config /etc/chokepoint/agent.toml");
  const CLI::App* parsed = cli;
  return {cli, [args, parsed] { return run_agent(*args, *parsed); }};
}

}  // namespace chokepoint::app
