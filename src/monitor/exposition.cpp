// The agent's metrics in the Prometheus text format. Names follow Prometheus conventions: base
// units in the name (_seconds, _bytes, _ratio), counters end in _total. Labels: target (what the
// user named, escaped), state, resource, kind, disk, source: all closed sets or kernel device
// names except target. Thread and process names never become labels.
#include <fmt/format.h>

#include "analysis/verdict.h"
#include "monitor/agent.h"
#include "render/prometheus_text.h"

namespace chokepoint::monitor {
namespace {

using render::ExpositionWriter;

// A gauge family with one sample per target that has a window, from `value(state)`.
template <typename F>
void per_target(ExpositionWriter& w, const std::vector<TargetState>& targets, const char* name,
                const char* help, F value) {
  w.family(name, "gauge", help);
  for (const auto& t : targets) {
    if (t.has_window) w.sample(name, {{"target", t.label}}, value(t));
  }
}

}  // namespace

std::string agent_exposition(const std::vector<TargetState>& targets, const AgentSelfStats& self,
                             const std::string& extra) {
  ExpositionWriter w;
  w.family("chokepoint_thread_seconds_total", "counter",
           "Thread time of the target by state, summed over every window (diagnose's time split)");
  for (const auto& t : targets) {
    for (std::size_t r = 0; r < model::kResourceCount; ++r) {
      w.sample(
          "chokepoint_thread_seconds_total",
          {{"target", t.label}, {"state", model::resource_name(static_cast<model::Resource>(r))}},
          t.thread_seconds[r]);
    }
  }
  w.family("chokepoint_bottleneck_share", "gauge",
           "Share of the target's busy time a bottleneck held in the last window; for "
           "kind=\"backlog\" the fraction of connection attempts dropped, for kind=\"leak\" the "
           "fraction of the free memory its growth eats per hour (1: within the hour)");
  for (const auto& t : targets) {
    if (!t.has_window) continue;
    for (const auto& b : t.diagnosis.bottlenecks) {
      w.sample("chokepoint_bottleneck_share",
               {{"target", t.label},
                {"resource", analysis::verdict_name(b.resource)},
                {"kind", analysis::kind_name(b.kind)}},
               b.share);
    }
  }
  w.family("chokepoint_verdict", "gauge",
           "The last window's verdict: one series per target, value 1 (resource none: no "
           "bottleneck)");
  for (const auto& t : targets) {
    if (!t.has_window) continue;
    const auto& d = t.diagnosis;
    const bool has = d.verdict != analysis::Verdict::kNone && !d.bottlenecks.empty();
    w.sample("chokepoint_verdict",
             {{"target", t.label},
              {"resource", analysis::verdict_name(d.verdict)},
              {"kind", has ? analysis::kind_name(d.bottlenecks[0].kind) : std::string_view("")}},
             1);
  }
  w.family("chokepoint_target_up", "gauge",
           "1 when the target's last window worked, 0 when the target is missing or unreadable");
  for (const auto& t : targets) w.sample("chokepoint_target_up", {{"target", t.label}}, t.up);
  w.family("chokepoint_windows_total", "counter", "Diagnosis windows run, by outcome");
  for (const auto& t : targets) {
    w.sample("chokepoint_windows_total", {{"target", t.label}, {"outcome", "ok"}},
             static_cast<double>(t.windows_ok));
    w.sample("chokepoint_windows_total", {{"target", t.label}, {"outcome", "failed"}},
             static_cast<double>(t.windows_failed));
  }
  per_target(w, targets, "chokepoint_last_window_timestamp_seconds",
             "Unix time the target's last good window ended",
             [](const TargetState& t) { return t.window_end_unix_s; });
  per_target(w, targets, "chokepoint_target_processes",
             "Processes of the target in the last window",
             [](const TargetState& t) { return t.processes; });
  per_target(w, targets, "chokepoint_target_threads", "Threads of the target in the last window",
             [](const TargetState& t) { return t.threads; });

  // USE evidence behind the verdict, as the target's last window measured it.
  per_target(w, targets, "chokepoint_cpu_utilization_ratio", "Busy fraction of all online CPUs",
             [](const TargetState& t) { return t.system.cpu_utilization; });
  per_target(w, targets, "chokepoint_cpu_iowait_ratio", "Fraction of CPU time in iowait",
             [](const TargetState& t) { return t.system.iowait_share; });
  per_target(w, targets, "chokepoint_cpus_allowed", "CPUs the target may use (cpuset, quota)",
             [](const TargetState& t) { return t.system.cpus_allowed; });
  per_target(w, targets, "chokepoint_run_queue_length",
             "Runnable tasks (procs_running) averaged over the window",
             [](const TargetState& t) { return t.system.run_queue_avg; });
  w.family("chokepoint_pressure_some_ratio", "gauge",
           "PSI: fraction of the window some task stalled on the resource");
  for (const auto& t : targets) {
    if (!t.has_window) continue;
    const std::pair<const char*, const model::PsiSummary*> psi[] = {
        {"cpu", &t.system.psi_cpu}, {"memory", &t.system.psi_memory}, {"io", &t.system.psi_io}};
    for (const auto& [resource, p] : psi) {
      if (p->available) {
        w.sample("chokepoint_pressure_some_ratio", {{"target", t.label}, {"resource", resource}},
                 p->some_share);
      }
    }
  }
  per_target(
      w, targets, "chokepoint_memory_available_bytes", "MemAvailable",
      [](const TargetState& t) { return static_cast<double>(t.system.mem_available_bytes); });
  per_target(w, targets, "chokepoint_swap_used_bytes", "Swap in use",
             [](const TargetState& t) { return static_cast<double>(t.system.swap_used_bytes); });
  per_target(w, targets, "chokepoint_major_faults_per_second", "Major page faults per second",
             [](const TargetState& t) { return t.system.majflt_per_s; });
  per_target(w, targets, "chokepoint_refaults_per_second", "Working-set refaults per second",
             [](const TargetState& t) { return t.system.refaults_per_s; });
  per_target(w, targets, "chokepoint_tcp_retransmits_per_second", "TCP segments retransmitted",
             [](const TargetState& t) { return t.system.tcp_retrans_per_s; });
  per_target(w, targets, "chokepoint_listen_drops",
             "SYNs dropped by full listen queues in the window",
             [](const TargetState& t) { return static_cast<double>(t.system.listen_drops); });
  per_target(w, targets, "chokepoint_open_files", "Open files on the host (fs.file-nr)",
             [](const TargetState& t) { return static_cast<double>(t.system.files_open); });
  per_target(w, targets, "chokepoint_cgroup_throttled_ratio",
             "Fraction of the window the target's cgroup was CPU-throttled",
             [](const TargetState& t) { return t.system.cgroup_throttled_share; });
  const std::pair<const char*, const char*> disk_families[] = {
      {"chokepoint_disk_utilization_ratio", "Busy fraction of the disk (io_ticks)"},
      {"chokepoint_disk_await_seconds", "Mean time per completed IO"},
      {"chokepoint_disk_queue_depth", "Mean IOs in flight"}};
  for (std::size_t f = 0; f < 3; ++f) {
    w.family(disk_families[f].first, "gauge", disk_families[f].second);
    for (const auto& t : targets) {
      if (!t.has_window) continue;
      for (const auto& d : t.system.disks) {
        const double v = f == 0 ? d.utilization : f == 1 ? d.await_ms / 1000 : d.queue_depth;
        w.sample(disk_families[f].first, {{"target", t.label}, {"disk", d.name}}, v);
      }
    }
  }
  w.family("chokepoint_source_available", "gauge",
           "1 when a measurement source worked in the target's last window");
  for (const auto& t : targets) {
    if (!t.has_window) continue;
    for (const auto& s : t.sources) {
      w.sample("chokepoint_source_available", {{"target", t.label}, {"source", s.name}},
               s.available);
    }
  }

  // The agent itself.
  w.family("chokepoint_agent_cpu_seconds_total", "counter", "CPU time the agent used");
  w.sample("chokepoint_agent_cpu_seconds_total", {}, self.cpu_seconds);
  w.family("chokepoint_agent_resident_memory_bytes", "gauge", "Resident memory of the agent");
  w.sample("chokepoint_agent_resident_memory_bytes", {}, static_cast<double>(self.resident_bytes));
  w.family("chokepoint_agent_start_time_seconds", "gauge", "Unix time the agent started");
  w.sample("chokepoint_agent_start_time_seconds", {}, self.start_unix_s);
  w.family("chokepoint_agent_targets", "gauge", "Targets the agent watches");
  w.sample("chokepoint_agent_targets", {}, static_cast<double>(targets.size()));
  w.family("chokepoint_agent_recording_ticks_lost_total", "counter",
           "Ticks the target's recording could not write (a full disk)");
  for (const auto& t : targets) {
    if (!t.recording.empty()) {
      w.sample("chokepoint_agent_recording_ticks_lost_total", {{"target", t.label}},
               static_cast<double>(t.recording_ticks_lost));
    }
  }
  return w.take() + extra;
}

}  // namespace chokepoint::monitor
