#include "app/target_session.h"

#include "app/launch.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "collect/procfs/proc_fs.h"
#include "util/clock.h"
#include "util/fatal.h"

namespace chokepoint::app {
namespace {

// A kernel thread has no user-space code, memory or syscalls of its own: say so before watching
// one. PF_KTHREAD is 0x00200000 in /proc/PID/stat's flags (field 9), see include/linux/sched.h.
bool is_kernel_thread(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  if (paren == std::string::npos) return false;
  std::istringstream fields(text.substr(paren + 2));
  std::string field;
  unsigned long flags = 0;
  // After the comm: state (3), ppid (4), pgrp (5), session (6), tty_nr (7), tpgid (8), flags (9).
  for (int i = 3; i <= 9 && fields >> field; ++i) {
    if (i == 9) flags = std::strtoul(field.c_str(), nullptr, 10);
  }
  return (flags & 0x00200000UL) != 0;
}

}  // namespace

void add_target_options(CLI::App* cli, TargetArgs& args) {
  cli->add_option("-p,--pid", args.pids,
                  "a process (all its threads); diagnose takes several: one tier each, with its "
                  "children");
  cli->add_flag("--children", args.children, "with --pid: its descendants too");
  cli->add_option("-n,--name", args.name, "every process with this name (comm or executable)");
  cli->add_option("--cgroup", args.cgroup,
                  "every task in a cgroup directory (v1 or v2): a container or systemd service");
  cli->add_option("command", args.command, "after --: a command to start and watch")->expected(-1);
}

collect::sampler::TargetSpec target_spec(const TargetArgs& a, bool several_pids) {
  int targets = !a.pids.empty() + !a.name.empty() + !a.cgroup.empty() + !a.command.empty();
  if (targets > 1) {
    util::usage_error("give one target: --pid, --name, --cgroup or -- COMMAND",
                      "without a target, the whole host is watched");
  }
  for (int pid : a.pids) {
    if (pid <= 0) {
      util::usage_error(fmt::format("--pid {} is not a process id", pid), "pass a positive pid");
    }
  }
  if (a.pids.size() > 1 && !several_pids) {
    util::usage_error("--pid is given more than once",
                      "this command watches one process: pass one --pid (with --children for "
                      "its descendants); diagnose takes several, one tier each");
  }
  for (std::size_t i = 0; i < a.pids.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (a.pids[i] == a.pids[j]) {
        util::usage_error(fmt::format("--pid {} is given twice", a.pids[i]),
                          "pass each tier's process once");
      }
    }
  }
  if (a.children && a.pids.empty())
    util::usage_error("--children needs --pid", "pass --pid PID --children");
  using Kind = collect::sampler::TargetSpec::Kind;
  collect::sampler::TargetSpec t;
  if (!a.pids.empty()) {
    t.kind = Kind::kPid;
    t.pid = a.pids.front();
    t.more_pids.assign(a.pids.begin() + 1, a.pids.end());
    // Each tier is a process and its children (an nginx master and its workers).
    t.children = a.children || !t.more_pids.empty();
  } else if (!a.name.empty()) {
    t.kind = Kind::kName;
    t.name = a.name;
  } else if (!a.cgroup.empty()) {
    t.kind = Kind::kCgroup;
    t.cgroup_path = a.cgroup;
  } else if (!a.command.empty()) {
    t.kind = Kind::kCommand;
    for (const auto& c : a.command) t.command_text += (t.command_text.empty() ? "" : " ") + c;
  }
  return t;
}

std::unique_ptr<TargetSession> TargetSession::open(const TargetArgs& a, bool several_pids) {
  std::unique_ptr<TargetSession> s(new TargetSession());
  s->spec_ = target_spec(a, several_pids);
  // Check the target before changing anything on the machine.
  if (s->spec_.kind != collect::sampler::TargetSpec::Kind::kCommand) {
    auto ok = collect::sampler::validate(s->spec_, collect::procfs::ProcFs());
    if (!ok) throw util::FatalError(ok.error());
  }
  if (s->spec_.kind == collect::sampler::TargetSpec::Kind::kPid && is_kernel_thread(s->spec_.pid)) {
    std::cerr << fmt::format(
        "chokepoint: pid {} is a kernel thread: it runs only kernel code, so its time splits by "
        "state alone (no syscalls, files or sockets of its own)\n",
        s->spec_.pid);
  }
  // Before a command is launched, so that it carries the data.
  s->delay_accounting_ = std::make_unique<collect::delayacct::DelayAccountingSwitch>();
  if (s->spec_.kind == collect::sampler::TargetSpec::Kind::kCommand) {
    s->launched_ = launch(a.command);
    s->spec_.pid = s->launched_;
  }
  return s;
}

TargetSession::~TargetSession() {
  end_command();
}

void TargetSession::end_command() {
  if (launched_ == 0) return;
  reap(launched_);
  launched_ = 0;
}

std::string describe_target(const collect::sampler::TargetSpec& t) {
  using Kind = collect::sampler::TargetSpec::Kind;
  switch (t.kind) {
    case Kind::kPid:
      if (!t.more_pids.empty()) {
        return fmt::format("pids {}, {} and their children", t.pid, fmt::join(t.more_pids, ", "));
      }
      return fmt::format("pid {}{}", t.pid, t.children ? " and its children" : "");
    case Kind::kName:
      return "name " + t.name;
    case Kind::kCgroup:
      return "cgroup " + t.cgroup_path;
    case Kind::kCommand:
      return "command " + t.command_text;
    case Kind::kHost:
      return "the whole host";
  }
  return "";
}

util::Result<DiagnosisWindow> TargetSession::diagnose(
    std::int64_t duration_ns, std::int64_t interval_ns, const std::atomic<bool>* stop,
    bool keep_samples, std::optional<collect::sampler::SplitMode> split_mode) const {
  monitor::WindowOptions o{duration_ns, interval_ns, stop, keep_samples};
  o.split_mode = split_mode;
  return monitor::diagnose_window(spec_, o);
}

util::Result<DiagnosisWindow> TargetSession::next_window(
    std::int64_t duration_ns, std::int64_t interval_ns, const std::atomic<bool>* stop,
    std::optional<collect::sampler::SplitMode> split_mode) {
  if (!series_ || series_->ended()) {
    series_.reset();
    monitor::WindowOptions o{duration_ns, interval_ns, stop, false, true};
    o.split_mode = split_mode;
    auto opened = monitor::WindowSeries::open(spec_, o);
    if (!opened) return opened.error();
    series_ = std::move(*opened);
  }
  return series_->next();
}

}  // namespace chokepoint::app
