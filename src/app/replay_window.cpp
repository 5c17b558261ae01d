#include "app/replay_window.h"

#include "app/probe_options.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <tuple>
#include <utility>

#include "app/cli_values.h"
#include "app/recorded_window.h"
#include "model/builder.h"
#include "util/fatal.h"

namespace chokepoint::app {

namespace {

// The window --from and --to choose, as offsets from the recording's first tick: (from, end,
// the recording's length), in ns. Usage errors: no samples, or a window empty or outside it.
std::tuple<std::int64_t, std::int64_t, std::int64_t> window_bounds(
    const std::optional<std::pair<std::int64_t, std::int64_t>>& range, const std::string& path,
    const std::string& from, const std::string& to) {
  if (!range) {
    util::usage_error(fmt::format("{} holds no samples", path),
                      "record for longer than one interval");
  }
  const std::int64_t length_ns = range->second - range->first;
  const std::int64_t from_ns = from.empty() ? 0 : parse_duration_ns(from, "--from");
  const std::int64_t to_ns = to.empty() ? length_ns : parse_duration_ns(to, "--to");
  if (from_ns >= to_ns || from_ns >= length_ns) {
    util::usage_error(
        fmt::format("the window {:.1f} s to {:.1f} s is empty or outside the recording",
                    from_ns / 1e9, to_ns / 1e9),
        fmt::format("{} covers 0 s to {:.1f} s: pick --from below --to within it", path,
                    length_ns / 1e9));
  }
  return {from_ns, std::min(to_ns, length_ns), length_ns};
}

// replay --mode sample: the tick's exact-mode sums set aside, leaving its sampled split.
void set_exact_aside(model::Tick& t) {
  if (!t.exact) return;
  model::ExactSample off;
  off.state.mode = "sample";
  off.state.problem = "replay --mode sample set the recorded kernel sums aside";
  t.exact = std::move(off);
}

}  // namespace

void set_recorded_evidence(ReplayedWindow& w, const std::vector<TimeSpan>& spans) {
  if (w.diagnosis.bottlenecks.empty()) return;
  auto& evidence = w.diagnosis.bottlenecks.front().evidence;
  if (w.recorded_evidence_at) {
    evidence.resize(std::min(evidence.size(), *w.recorded_evidence_at));
    w.recorded_evidence_at.reset();
  }
  auto lines = recorded_stack_evidence(w.recorded_stacks, spans, w.diagnosis.verdict);
  if (lines.empty()) return;
  w.recorded_evidence_at = evidence.size();
  evidence.insert(evidence.end(), lines.begin(), lines.end());
}

ReplayedWindow replay_window(const std::string& path, const std::string& from,
                             const std::string& to, const TickTap& tap, bool sampled_only) {
  auto reader = store::RecordingReader::open(path);
  if (!reader) throw util::FatalError(reader.error(), util::kExitRuntime);
  const auto range = reader->time_range();
  const std::string& kind = reader->info().target.kind;
  if (!range && (kind == kLoadRunTargetKind || kind == kKneeRunTargetKind)) {
    if (!from.empty() || !to.empty()) {
      util::usage_error(fmt::format("{} holds a {} run alone: it has no window to cut", path, kind),
                        "leave out --from and --to");
    }
    ReplayedWindow w;
    w.sampled = false;
    w.observation.target = reader->info().target;
    w.load = saved_load(*reader);
    w.knee = saved_knee(*reader);
    w.meta = reader->meta();
    if ((kind == kLoadRunTargetKind ? w.load : w.knee).json.is_null()) {
      throw util::FatalError(
          util::Error{fmt::format("{} holds no {} result", path, kind),
                      fmt::format("record the run again with chokepoint {} --record", kind)},
          util::kExitRuntime);
    }
    return w;
  }
  const auto [from_ns, end_ns, length_ns] = window_bounds(range, path, from, to);
  model::ObservationBuilder builder(reader->info(), range->first + from_ns, range->first + end_ns);
  if (tap.begin) tap.begin(*reader, range->first + from_ns, range->first + end_ns);
  auto read = reader->read_ticks(range->first + end_ns, [&](model::Tick&& t) {
    if (tap.each) tap.each(t);
    if (sampled_only) set_exact_aside(t);
    return builder.add(t);
  });
  if (!read) throw util::FatalError(read.error(), util::kExitRuntime);
  ReplayedWindow w;
  w.observation = builder.finish();
  if (w.observation.threads.empty()) {
    util::usage_error(fmt::format("no thread of the target was seen in that part of {}", path),
                      "widen the window with --from and --to");
  }
  w.diagnosis = analysis::diagnose(w.observation);
  bool diagnose_stacks = false;  // diagnose --record kept the stacks behind its verdict
  const bool whole = from.empty() && to.empty();
  // As the live run did it: the services refine the split and fold into the verdict, then the
  // stacks add their evidence (app/cmd_diagnose.cpp). A part of a recording has the services'
  // own evidence of that part when it kept their series (schema 5).
  {
    const RecordedServices services =
        window_services(*reader, range->first + from_ns, range->first + end_ns, whole);
    w.services =
        fold_service_view(w.observation, w.diagnosis, services.observations, services.notes);
    w.service_observations = services.observations;
  }
  // The stacks and the run's cost belong to the whole window diagnose saw, not to a part of it.
  if (whole) {
    if (auto stacks = saved_stacks(*reader)) {
      add_stacks(*stacks, w.observation, w.diagnosis);
      w.profile = std::move(stacks->profile);
      diagnose_stacks = true;
    }
    w.load = saved_load(*reader);
    const RecordedRunCost cost = saved_run_cost(*reader);
    w.observation.overhead.run_wall_s = cost.wall_s;
    w.observation.overhead.run_cpu_s = cost.cpu_s;
    w.run = cost.run;
  }
  // The stacks record kept over time, for the window replayed, and their sources (why not, when
  // it could not keep them).
  for (auto& s : recorded_stack_sources(*reader)) w.observation.sources.push_back(std::move(s));
  if (auto stacks = read_recorded_stacks(*reader, range->first + from_ns, range->first + end_ns);
      stacks) {
    w.recorded_stacks = std::move(*stacks);
    // As a live diagnose's stacks after its window: the verdict's evidence names the code.
    if (!diagnose_stacks) {
      set_recorded_evidence(w, {{range->first + from_ns, range->first + end_ns}});
    }
  } else {
    w.observation.sources.push_back(
        {"recorded stacks", false, stacks.error().message, stacks.error().hint});
  }
  w.first_tick_ns = range->first;
  w.meta = reader->meta();
  w.from_s = static_cast<double>(from_ns) / 1e9;
  w.to_s = static_cast<double>(end_ns) / 1e9;
  w.length_s = static_cast<double>(length_ns) / 1e9;
  return w;
}

std::optional<ReplayedTiers> replay_tiers(const std::string& path, const std::string& from,
                                          const std::string& to, bool sampled_only) {
  auto reader = store::RecordingReader::open(path);
  if (!reader) throw util::FatalError(reader.error(), util::kExitRuntime);
  const std::vector<int> roots = saved_tier_roots(*reader);
  if (roots.empty()) return std::nullopt;
  const auto range = reader->time_range();
  const auto [from_ns, end_ns, length_ns] = window_bounds(range, path, from, to);
  // Every tick up to the window's end: those before it set each thread's starting point.
  model::Samples samples;
  samples.info = reader->info();
  auto read = reader->read_ticks(range->first + end_ns, [&](model::Tick&& t) {
    if (sampled_only) set_exact_aside(t);
    samples.ticks.push_back(std::move(t));
    return true;
  });
  if (!read) throw util::FatalError(read.error(), util::kExitRuntime);
  ReplayedTiers out;
  const bool whole = from.empty() && to.empty();
  const RecordedServices services =
      window_services(*reader, range->first + from_ns, range->first + end_ns, whole);
  out.tiers = monitor::diagnose_tiers(samples, roots, services.observations,
                                      {range->first + from_ns, range->first + end_ns});
  out.services = analysis::assess_services(services.observations);
  if (whole) {
    // Each tier's stacks, taken after the window for its verdict, add their evidence as live.
    const std::map<int, VerdictStacks> stacks = saved_tier_stacks(*reader);
    for (std::size_t i = 0; i < out.tiers.tiers.size(); ++i) {
      auto it = stacks.find(out.tiers.tiers[i].root_pid);
      if (it != stacks.end()) {
        add_stacks(it->second, out.tiers.observations[i], out.tiers.tiers[i].diagnosis);
      }
    }
    out.load = saved_load(*reader);
    out.run = saved_run_cost(*reader).run;
  }
  out.from_s = static_cast<double>(from_ns) / 1e9;
  out.to_s = static_cast<double>(end_ns) / 1e9;
  out.length_s = static_cast<double>(length_ns) / 1e9;
  return out;
}

}  // namespace chokepoint::app
