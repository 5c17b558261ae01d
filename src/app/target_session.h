#pragma once
// The target of a subcommand that watches a service (diagnose, knee): the --pid / --children /
// --name / --cgroup / -- COMMAND options, the command launched and ended, delay accounting
// switched on and restored, and a diagnosis window run on demand.
//
// Thread-safety: one thread owns a TargetSession. The stop flag may be set from a signal handler.

#include <sys/types.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "analysis/diagnosis.h"
#include "collect/delayacct/delay_accounting.h"
#include "collect/sampler/target.h"
#include "model/observation.h"
#include "model/samples.h"
#include "monitor/window.h"
#include "util/result.h"

namespace chokepoint::app {

struct TargetArgs {
  // --pid, repeatable: with several (diagnose only), each is a tier: it and its children.
  std::vector<int> pids;
  bool children = false;
  std::string name;
  std::string cgroup;
  std::vector<std::string> command;  // after --
};

// Adds --pid, --children, --name, --cgroup and the positional command to `cli`.
void add_target_options(CLI::App* cli, TargetArgs& args);

// Checks the target options (one target at most, positive pids, --children only with --pid, a
// second --pid only with several_pids) and turns them into a spec; a command is not launched here
// (its pid stays 0). Several pids give a kPid spec with more_pids and children on (tiers). Usage
// errors exit 2. Throws util::FatalError.
collect::sampler::TargetSpec target_spec(const TargetArgs& args, bool several_pids = false);

// "pid 1234", "pid 1234 and its children", "cgroup /sys/fs/cgroup/x", "the whole host".
std::string describe_target(const collect::sampler::TargetSpec& spec);

using DiagnosisWindow = monitor::DiagnosisWindow;

class TargetSession {
 public:
  // Checks the options (usage errors exit 2) and that the target exists (a pid, a cgroup, a name),
  // then switches delay accounting on as root, and launches the command if one was given: nothing
  // is changed for a target that is not there. Without a target the session watches the whole
  // host. Throws util::FatalError.
  static std::unique_ptr<TargetSession> open(const TargetArgs& args, bool several_pids = false);
  ~TargetSession();  // ends a launched command (SIGTERM, then SIGKILL) and restores delayacct
  TargetSession(const TargetSession&) = delete;
  TargetSession& operator=(const TargetSession&) = delete;

  const collect::sampler::TargetSpec& spec() const { return spec_; }
  bool is_host() const { return spec_.kind == collect::sampler::TargetSpec::Kind::kHost; }
  bool launched() const { return launched_ != 0; }
  std::string describe() const { return describe_target(spec_); }

  // Watches the target for one window and diagnoses it. `stop` ends the window early. With
  // keep_samples the window's samples are kept (for a recording). Errors: the target is gone or
  // cannot be read (with hints).
  util::Result<DiagnosisWindow> diagnose(
      std::int64_t duration_ns, std::int64_t interval_ns, const std::atomic<bool>* stop,
      bool keep_samples = false,
      std::optional<collect::sampler::SplitMode> split_mode = std::nullopt) const;

  // The next of consecutive windows (top's frames), all from one sampler (monitor::WindowSeries):
  // the first call opens it, later calls continue it. duration_ns and interval_ns must not change
  // between calls, nor split_mode (the time split, as diagnose's; nullopt: sampled, without a
  // word about it). Errors as diagnose's; after one, or after the target exited, the next call
  // starts a new series.
  util::Result<DiagnosisWindow> next_window(
      std::int64_t duration_ns, std::int64_t interval_ns, const std::atomic<bool>* stop,
      std::optional<collect::sampler::SplitMode> split_mode = std::nullopt);

  // Ends a launched command now (idempotent).
  void end_command();

 private:
  TargetSession() = default;
  collect::sampler::TargetSpec spec_;
  std::unique_ptr<collect::delayacct::DelayAccountingSwitch> delay_accounting_;
  pid_t launched_ = 0;
  std::unique_ptr<monitor::WindowSeries> series_;
};

}  // namespace chokepoint::app
