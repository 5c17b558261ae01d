#include "app/target_session.h"

#include "app/launch.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <iostream>

#include "collect/sampler/sampler.h"
#include "model/builder.h"
#include "util/clock.h"
#include "util/fatal.h"

namespace chokepoint::app {
namespace {

constexpr const char* kDelayAcctPath = "/proc/sys/kernel/task_delayacct";

// The directory for the delay accounting lock and marker: /run (root's tmpfs), else /tmp.
std::string delayacct_dir() {
  return access("/run", W_OK) == 0 ? "/run" : "/tmp";
}

int read_delayacct() {
  std::ifstream in(kDelayAcctPath);
  int value = -1;
  if (!(in >> value)) return -1;
  return value;
}

}  // namespace

// kernel.task_delayacct is one switch for the whole machine, and several chokepoint runs may
// overlap. Every run that may switch it holds a shared flock on a lock file for its lifetime. A
// marker file records that chokepoint (not the administrator) switched it on. At exit a run tries
// to turn its shared lock into an exclusive one without waiting: only the last run out gets it,
// and only that run restores 0, and only if the marker says chokepoint switched it. A run that
// crashed leaves the marker behind, and the next last run out restores the setting.
DelayAccountingSwitch::DelayAccountingSwitch() {
  if (geteuid() != 0) return;
  const std::string dir = delayacct_dir();
  lock_path_ = dir + "/chokepoint-delayacct.lock";
  marker_path_ = dir + "/chokepoint-delayacct.switched";
  lock_fd_ = util::ScopedFd(open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock_fd_.valid() || flock(lock_fd_.get(), LOCK_SH) != 0) {
    lock_fd_.reset();
    return;
  }
  if (read_delayacct() != 0) return;  // on already (by an admin or another run), or absent
  std::ofstream out(kDelayAcctPath);
  if (!(out << 1 << std::endl)) return;
  std::ofstream(marker_path_) << getpid() << "\n";
  switched_ = true;
  std::cerr << "chokepoint: switched delay accounting on for this run (kernel.task_delayacct=1); "
               "only tasks started from now on carry its data; it goes back to 0 at exit\n";
}

DelayAccountingSwitch::~DelayAccountingSwitch() {
  if (!lock_fd_.valid()) return;
  // Converting a flock is not atomic (flock(2)): the shared lock is dropped first. That is fine:
  // this run is leaving either way.
  if (flock(lock_fd_.get(), LOCK_EX | LOCK_NB) != 0) return;  // others still run; the last restores
  if (access(marker_path_.c_str(), F_OK) == 0) {
    std::ofstream out(kDelayAcctPath);
    out << 0 << std::endl;
    unlink(marker_path_.c_str());
  }
}

namespace {}  // namespace

void add_target_options(CLI::App* cli, TargetArgs& args) {
  cli->add_option("-p,--pid", args.pid, "a process (all its threads)");
  cli->add_flag("--children", args.children, "with --pid: its descendants too");
  cli->add_option("-n,--name", args.name, "every process with this name (comm or executable)");
  cli->add_option("--cgroup", args.cgroup,
                  "every task in a cgroup directory (v1 or v2): a container or systemd service");
  cli->add_option("command", args.command, "after --: a command to start and watch")->expected(-1);
}

collect::sampler::TargetSpec target_spec(const TargetArgs& a) {
  int targets = (a.pid != 0) + !a.name.empty() + !a.cgroup.empty() + !a.command.empty();
  if (targets > 1) {
    util::usage_error("give one target: --pid, --name, --cgroup or -- COMMAND",
                      "without a target, the whole host is watched");
  }
  if (a.pid < 0)
    util::usage_error(fmt::format("--pid {} is not a process id", a.pid), "pass a positive pid");
  if (a.children && a.pid == 0)
    util::usage_error("--children needs --pid", "pass --pid PID --children");
  using Kind = collect::sampler::TargetSpec::Kind;
  collect::sampler::TargetSpec t;
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
  }
  return t;
}

std::unique_ptr<TargetSession> TargetSession::open(const TargetArgs& a) {
  std::unique_ptr<TargetSession> s(new TargetSession());
  s->spec_ = target_spec(a);
  // Before a command is launched, so that it carries the data.
  s->delay_accounting_ = std::make_unique<DelayAccountingSwitch>();
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

util::Result<DiagnosisWindow> TargetSession::diagnose(std::int64_t duration_ns,
                                                      std::int64_t interval_ns,
                                                      const std::atomic<bool>* stop,
                                                      bool keep_samples) const {
  collect::sampler::SamplerOptions opt;
  opt.target = spec_;
  opt.duration_ns = duration_ns;
  opt.interval_ns = interval_ns;
  opt.stop = stop;
  auto sampler = collect::sampler::Sampler::create(opt);
  if (!sampler) return sampler.error();
  DiagnosisWindow w;
  model::ObservationSink sink(keep_samples ? &w.samples : nullptr);
  if (auto ran = (*sampler)->run(sink); !ran) return ran.error();
  w.observation = sink.finish();
  if (w.observation.threads.empty()) {
    return util::Error{"the target exited before it could be observed",
                       "start the service first, or watch it with -- COMMAND", ESRCH};
  }
  w.diagnosis = analysis::diagnose(w.observation);
  return w;
}

}  // namespace chokepoint::app
