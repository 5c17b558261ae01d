#pragma once
// chokepoint agent's engine: one thread per target runs diagnosis windows back to back (the
// diagnose path, monitor/window.h), keeps what the last window found and counters over all of
// them, and optionally appends every window's samples to a bounded recording per target (a ring:
// store/ rotation deletes what is older than keep_for_ns), so replay works on the last hour.
//
// A target that is not there (a stopped service, a removed cgroup, no process of that name) is
// marked down and looked up again every window; it is picked up when it comes back.
//
// Thread-safety: run() is called once, from one thread, and returns when `stop` is set. snapshot()
// and self_stats() may be called from any thread at any time (a scrape), also during run().

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "analysis/diagnosis.h"
#include "model/observation.h"
#include "model/time_split.h"
#include "monitor/target.h"
#include "util/result.h"

namespace chokepoint::monitor {

struct AgentOptions {
  std::vector<WatchTarget> targets;  // at least one
  std::int64_t window_ns = 10'000'000'000;
  std::int64_t interval_ns = 1'000'000'000;
  std::string record_dir;  // empty: no recordings
  std::int64_t keep_for_ns = 3'600'000'000'000;
  std::uint64_t record_max_bytes = 256ULL << 20;  // per target
  std::string chokepoint_version;
  bool log = true;  // one stderr line when a target goes down or comes back
};

// What the agent knows about one target: counters over every window, and the last good window.
struct TargetState {
  std::string label;  // WatchTarget::text: hostile, escaped by each output
  bool up = false;
  std::string error;  // why the last attempt failed (empty when up)
  std::uint64_t windows_ok = 0;
  std::uint64_t windows_failed = 0;
  std::array<double, model::kResourceCount> thread_seconds{};  // summed over every window
  bool has_window = false;  // the fields below hold the last good window
  double window_end_unix_s = 0;
  analysis::Diagnosis diagnosis;
  model::SystemSummary system;
  std::vector<model::Source> sources;
  int processes = 0;
  int threads = 0;
  std::string recording;  // its path, empty when not recording
  std::uint64_t recording_ticks_lost = 0;
};

// Called on a target's thread after each of its windows, outside the agent's lock, with the
// target's state (up false for a window that failed) and the window's own time split: other
// exporters (StatsD) push from here. Must be safe to call from several threads at once.
using WindowObserver = std::function<void(const TargetState&, const model::TimeSplit&)>;

struct AgentSelfStats {
  double cpu_seconds = 0;  // user + system of the whole agent process
  std::uint64_t resident_bytes = 0;
  double start_unix_s = 0;
};

class Agent {
 public:
  // Checks the options and creates the recordings (errors: a directory that cannot be written,
  // with hints). Targets need not exist yet.
  static util::Result<std::unique_ptr<Agent>> create(AgentOptions options,
                                                     WindowObserver on_window = nullptr);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Runs the windows until `stop` is set (checked at least every 100 ms), then joins its threads.
  void run(const std::atomic<bool>& stop);

  // A copy of every target's state, in the order of the options.
  std::vector<TargetState> snapshot() const;
  AgentSelfStats self_stats() const;

 private:
  struct Impl;
  explicit Agent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The Prometheus exposition of the agent's state (docs/agent.md lists every metric). Thread names
// never become labels; targets are labels, escaped. `extra` lines (other exporters' counters) are
// appended as they are.
std::string agent_exposition(const std::vector<TargetState>& targets, const AgentSelfStats& self,
                             const std::string& extra = {});

}  // namespace chokepoint::monitor
