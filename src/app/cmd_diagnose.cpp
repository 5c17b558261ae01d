// chokepoint diagnose: watch a target for a window, split its threads' time by resource, and print
// the verdict, the evidence and the fix to do first.
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>

#include "analysis/diagnosis.h"
#include "app/cli_values.h"
#include "app/launch.h"
#include "app/subcommand.h"
#include "collect/sampler/sampler.h"
#include "render/diagnosis_report.h"
#include "util/clock.h"
#include "util/fatal.h"

namespace chokepoint::app {
namespace {

std::atomic<bool> g_stop{false};

// As root, switches kernel.task_delayacct on for the run (off by default since 5.14) and restores
// it afterwards. Only tasks started after the switch carry the data, so it helps `-- CMD`
// targets and threads that start during the window.
class DelayAccounting {
 public:
  DelayAccounting() {
    if (geteuid() != 0) return;
    std::ifstream in(kPath);
    int value = -1;
    if (!(in >> value) || value != 0) return;
    std::ofstream out(kPath);
    if (!(out << 1 << std::endl)) return;
    switched_ = true;
    std::cerr << "chokepoint: switched delay accounting on for this run (kernel.task_delayacct=1); "
                 "only tasks started from now on carry its data; it goes back to 0 at exit\n";
  }
  ~DelayAccounting() {
    if (!switched_) return;
    std::ofstream out(kPath);
    out << 0 << std::endl;
  }
  DelayAccounting(const DelayAccounting&) = delete;
  DelayAccounting& operator=(const DelayAccounting&) = delete;

 private:
  static constexpr const char* kPath = "/proc/sys/kernel/task_delayacct";
  bool switched_ = false;
};
void on_signal(int) {
  g_stop.store(true);
}

struct DiagnoseArgs {
  int pid = 0;
  bool children = false;
  std::string name;
  std::string cgroup;
  std::vector<std::string> command;
  std::string duration = "5s";
  std::string interval = "100ms";
  bool json = false;
};

int run_diagnose(const DiagnoseArgs& a) {
  int targets = (a.pid != 0) + !a.name.empty() + !a.cgroup.empty() + !a.command.empty();
  if (targets > 1) {
    util::usage_error("give one target: --pid, --name, --cgroup or -- COMMAND",
                      "without a target, diagnose watches the whole host");
  }
  if (a.pid < 0)
    util::usage_error(fmt::format("--pid {} is not a process id", a.pid), "pass a positive pid");
  if (a.children && a.pid == 0)
    util::usage_error("--children needs --pid", "pass --pid PID --children");

  collect::sampler::SamplerOptions opt;
  opt.duration_ns = parse_duration_ns(a.duration, "--duration");
  opt.interval_ns = parse_duration_ns(a.interval, "--interval");
  if (opt.duration_ns <= 0)
    util::usage_error("--duration must be above 0", "pass e.g. --duration 5s");
  if (opt.interval_ns < 1'000'000 || opt.interval_ns > opt.duration_ns) {
    util::usage_error("--interval must be at least 1ms and at most --duration",
                      "pass e.g. --interval 100ms");
  }
  opt.stop = &g_stop;

  using Kind = collect::sampler::TargetSpec::Kind;
  auto& t = opt.target;
  pid_t launched = 0;
  DelayAccounting delay_accounting;  // before a command is launched, so that it carries the data
  if (a.pid) {
    t.kind = Kind::kPid;
    t.pid = a.pid;
    t.children = a.children;
  } else if (!a.name.empty()) {
    t.kind = Kind::kName;
    t.name = a.name;
  } else if (!a.cgroup.empty()) {
    t.kind = Kind::kCgroup;
    t.cgroup_path = a.cgroup;
  } else if (!a.command.empty()) {
    t.kind = Kind::kCommand;
    for (const auto& c : a.command) t.command_text += (t.command_text.empty() ? "" : " ") + c;
    launched = launch(a.command);
    t.pid = launched;
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  auto sampler = collect::sampler::Sampler::create(opt);
  if (!sampler) {
    if (launched) reap(launched);
    throw util::FatalError(sampler.error(), sampler.error().errno_value == EINVAL
                                                ? util::kExitUsage
                                                : util::kExitRuntime);
  }
  if (!a.json) {
    std::cerr << fmt::format("chokepoint: watching {} for {:.1f} s (Ctrl-C ends early)...\n",
                             t.kind == Kind::kHost
                                 ? "the whole host"
                                 : collect::sampler::kind_name(t.kind) + " " +
                                       (t.kind == Kind::kPid      ? std::to_string(t.pid)
                                        : t.kind == Kind::kName   ? t.name
                                        : t.kind == Kind::kCgroup ? t.cgroup_path
                                                                  : t.command_text),
                             opt.duration_ns / 1e9);
  }
  auto obs = (*sampler)->run();
  if (launched) reap(launched);
  if (!obs) throw util::FatalError(obs.error());
  if (obs->threads.empty()) {
    throw util::FatalError(util::Error{"the target exited before it could be observed",
                                       "start the service first, or diagnose it with -- COMMAND",
                                       ESRCH});
  }

  analysis::Diagnosis d = analysis::diagnose(*obs);
  if (a.json) {
    std::cout << render::diagnosis_json(*obs, d).dump(2) << "\n";
  } else {
    std::cout << render::diagnosis_text(*obs, d);
  }
  std::cout.flush();
  if (obs->target_exited && !launched) {
    util::print_error(
        {"the target exited during the window", "the report covers the time until it exited", 0});
    return util::kExitRuntime;
  }
  return util::kExitOk;
}

}  // namespace

Subcommand make_diagnose_command(CLI::App& root) {
  auto args = std::make_shared<DiagnoseArgs>();
  CLI::App* cli = root.add_subcommand("diagnose",
                                      "Watch a service and name what limits it: network, disk, "
                                      "memory, lock or CPU, with evidence and the fix to do first");
  cli->add_option("-p,--pid", args->pid, "a process (all its threads)");
  cli->add_flag("--children", args->children, "with --pid: its descendants too");
  cli->add_option("-n,--name", args->name, "every process with this name (comm or executable)");
  cli->add_option("--cgroup", args->cgroup,
                  "every task in a cgroup directory (v1 or v2): a container or systemd service");
  cli->add_option("-d,--duration", args->duration, "how long to watch (500ms, 5s, 2m)")
      ->capture_default_str();
  cli->add_option("-i,--interval", args->interval, "how often to sample thread states")
      ->capture_default_str();
  cli->add_flag("--json", args->json, "print the JSON report (schema 1) instead of text");
  cli->add_option("command", args->command, "after --: a command to start and watch")->expected(-1);
  cli->footer(
      "Without a target, diagnose watches the whole host. Examples:\n"
      "  chokepoint diagnose --pid 1234\n"
      "  chokepoint diagnose --name nginx --duration 10s\n"
      "  chokepoint diagnose -- ./server --port 8080");
  return {cli, [args] { return run_diagnose(*args); }};
}

}  // namespace chokepoint::app
