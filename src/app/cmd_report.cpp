// chokepoint report: one self-contained HTML page from a recording (or two: before and after).
#include <fmt/format.h>

#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "app/recorded_window.h"
#include "app/replay_window.h"
#include "app/subcommand.h"
#include "render/diagnosis_diff.h"
#include "render/tiers_report.h"
#include "report/page.h"
#include "report/service_series.h"
#include "report/timeline.h"
#include "util/atomic_file.h"
#include "util/escape.h"
#include "util/fatal.h"

namespace chokepoint::app {
namespace {

struct ReportArgs {
  std::vector<std::string> files;
  std::string output;
};

// NOLINTNEXTLINE(bugprone-exception-escape): see ReplayedWindow
struct ReportedRecording {
  ReplayedWindow window;
  nlohmann::json timeline;
  // The stacks record kept: on-CPU and off-CPU of the whole recording, then of the verdict's
  // window when that is a part of it; with their scope.
  std::vector<profile::Profile> recorded;
  std::vector<std::string> scopes;
  nlohmann::json services;  // report/service_series.h
  nlohmann::json tiers;     // null: one target
  // Each tier's own stacks (multi-tier diagnose --record), by root pid in the tiers' order.
  std::vector<std::pair<int, profile::Profile>> tier_profiles;
};

// The flame graphs of the stacks record kept (report/page.h RecordedFlameGraph).
void add_recorded_graphs(ReportedRecording& r) {
  const RecordedStacks& stacks = r.window.recorded_stacks;
  if (stacks.empty()) return;
  const std::vector<TimeSpan> whole{{INT64_MIN, INT64_MAX}};
  auto add = [&](const std::vector<store::StackSlice>& slices, const std::vector<TimeSpan>& spans,
                 const std::string& scope) {
    if (auto p = merge_slices(slices, spans, scope)) {
      r.recorded.push_back(std::move(*p));
      r.scopes.push_back(scope);
    }
  };
  add(stacks.on_cpu, whole, "the whole recording");
  add(stacks.off_cpu, whole, "the whole recording");
  // The window the verdict describes: the columns whose own verdict is the whole recording's
  // (of any kind: a column's kind flips between neighbours such as saturated and contended).
  const auto& d = r.window.diagnosis;
  if (d.verdict == analysis::Verdict::kNone || r.timeline.is_null()) return;
  const report::VerdictWindow vw =
      report::verdict_window(r.timeline, std::string(analysis::verdict_name(d.verdict)), "");
  if (vw.columns == 0 || vw.columns == vw.of_columns) return;  // none, or the whole recording
  std::vector<TimeSpan> spans;
  for (const auto& [from_s, to_s] : vw.spans_s) {
    spans.push_back({r.window.first_tick_ns + static_cast<std::int64_t>(from_s * 1e9),
                     r.window.first_tick_ns + static_cast<std::int64_t>(to_s * 1e9)});
  }
  const std::string scope =
      fmt::format("the verdict's window ({}: {} of {} columns)", analysis::verdict_name(d.verdict),
                  vw.columns, vw.of_columns);
  add(stacks.on_cpu, spans, scope);
  add(stacks.off_cpu, spans, scope);
  // The evidence the stacks gave the verdict, narrowed to its window as the graphs are.
  if (r.window.recorded_evidence_at) set_recorded_evidence(r.window, spans);
}

// A multi-tier recording's tiers as replay prints them (render::tiers_json), each tier's
// per-thread list left out (the heat map has the threads); null for one target.
nlohmann::json recorded_tiers_json(const std::string& path) {
  auto t = replay_tiers(path, "", "");
  if (!t) return nullptr;
  const monitor::TierWindows& tw = t->tiers;
  nlohmann::json j = render::tiers_json({tw.tiers, tw.observations, tw.links, tw.limiting});
  for (auto& tier : j["tiers"]) tier["diagnosis"].erase("threads");
  return j;
}

// The recording replayed as a whole (the report replay prints) and, in the same pass, cut into
// the page's columns; the services' polls (schema 5) reduced to the same columns.
ReportedRecording read_recording(const std::string& path) {
  std::optional<report::TimelineBuilder> timeline;
  std::int64_t first_unix_ns = 0;
  std::vector<model::ServiceProbe> probes;
  std::vector<model::ServicePoll> polls;
  TickTap tap;
  tap.begin = [&](const store::RecordingReader& reader, std::int64_t from_ns, std::int64_t to_ns) {
    timeline.emplace(reader.info(), from_ns, to_ns);
    first_unix_ns = from_ns - reader.meta().created_monotonic_ns + reader.meta().created_unix_ns;
    probes = reader.probes();
    if (probes.empty()) return;
    auto read = reader.probe_polls(std::numeric_limits<std::int64_t>::min(),
                                   std::numeric_limits<std::int64_t>::max());
    if (!read) throw util::FatalError(read.error(), util::kExitRuntime);
    polls = std::move(*read);
  };
  tap.each = [&](const model::Tick& t) { timeline->add(t); };
  ReportedRecording r{replay_window(path, "", "", tap), nullptr, {}, {}, nullptr, nullptr, {}};
  if (timeline) {
    r.timeline = timeline->finish(first_unix_ns);
    const report::ColumnGrid grid{timeline->column_starts_ns()};
    r.services = report::service_series_json(probes, polls, grid);
  }
  add_recorded_graphs(r);
  if (r.window.sampled) r.tiers = recorded_tiers_json(path);
  if (!r.tiers.is_null()) {
    auto reader = store::RecordingReader::open(path);
    if (!reader) throw util::FatalError(reader.error(), util::kExitRuntime);
    std::map<int, VerdictStacks> stacks = saved_tier_stacks(*reader);
    for (const auto& tier : r.tiers.value("tiers", nlohmann::json::array())) {
      auto it = stacks.find(tier.value("root_pid", 0));
      if (it != stacks.end() && it->second.profile) {
        r.tier_profiles.emplace_back(it->first, std::move(*it->second.profile));
      }
    }
  }
  return r;
}

nlohmann::json page_json(const std::string& label, const ReportedRecording& r) {
  report::RecordingPage page;
  page.label = label;
  page.meta = r.window.meta;
  page.whole = &r.window.observation;
  page.diagnosis = &r.window.diagnosis;
  page.timeline = &r.timeline;
  page.load = &r.window.load.json;
  if (r.window.profile) page.profile = &*r.window.profile;
  for (std::size_t i = 0; i < r.recorded.size(); ++i) {
    page.recorded.push_back({&r.recorded[i], r.scopes[i]});
  }
  page.on_cpu_slices = &r.window.recorded_stacks.on_cpu;
  page.off_cpu_slices = &r.window.recorded_stacks.off_cpu;
  page.first_ns = r.window.first_tick_ns;
  page.services = &r.services;
  page.services_summary_only =
      !r.window.service_observations.empty() && (r.services.is_null() || r.services.empty());
  page.tiers = &r.tiers;
  for (const auto& [root, profile] : r.tier_profiles) page.tier_graphs.push_back({root, &profile});
  for (const auto& s : r.window.observation.sources) {
    const bool recorded = s.name == kRecordedOnCpuSource || s.name == kRecordedOffCpuSource;
    if (recorded && !s.available && page.recorded_absent_why.empty()) {
      page.recorded_absent_why = s.detail;
    } else if (s.name.find("stack") != std::string::npos && s.name != "stack scan" && s.available &&
               !recorded) {
      page.stacks_kept = true;
    }
  }
  return report::recording_json(page);
}

int run_report(const ReportArgs& a) {
  if (a.files.size() > 2) {
    util::usage_error("report takes one recording, or two (before and after)",
                      "chokepoint report BEFORE AFTER -o report.html");
  }
  if (auto w = util::check_writable(a.output); !w) throw util::FatalError(w.error());
  std::vector<ReportedRecording> recs;
  for (const auto& f : a.files) recs.push_back(read_recording(f));
  // A run alone (chokepoint load or knee --record) has no samples: its page is load -o's or
  // knee -o's.
  if (recs.size() == 1 && !recs[0].window.sampled) {
    const auto& w = recs[0].window;
    const std::string& label = w.observation.target.spec;
    const std::string page = w.observation.target.kind == kKneeRunTargetKind
                                 ? report::knee_html(label, w.knee.json)
                                 : report::load_html(label, w.load.json);
    if (auto ok = util::write_file_atomically(a.output, page); !ok) {
      throw util::FatalError(ok.error());
    }
    std::cerr << fmt::format("chokepoint: wrote {} ({} bytes, the {} run)\n",
                             util::terminal_text(a.output), page.size(), w.observation.target.kind);
    return util::kExitOk;
  }
  for (std::size_t i = 0; i < recs.size(); ++i) {
    if (!recs[i].window.sampled) {
      util::usage_error(
          fmt::format("{} holds a {} run alone, with no samples to set beside the other",
                      a.files[i], recs[i].window.observation.target.kind),
          "compare two runs with chokepoint diff; or write its own page: chokepoint report " +
              a.files[i] + " -o run.html");
    }
  }
  nlohmann::json data;
  data["recordings"] = nlohmann::json::array();
  for (std::size_t i = 0; i < recs.size(); ++i) {
    data["recordings"].push_back(page_json(a.files[i], recs[i]));
  }
  data["diff"] = nullptr;
  if (recs.size() == 2) {
    const auto& b = recs[0].window;
    const auto& f = recs[1].window;
    data["diff"] =
        render::diagnosis_diff_json({a.files[0], &b.observation, &b.diagnosis, &b.load.json},
                                    {a.files[1], &f.observation, &f.diagnosis, &f.load.json});
  }
  std::string title = "chokepoint report: " + a.files[0];
  if (a.files.size() == 2) title += " -> " + a.files[1];
  std::vector<const profile::Profile*> flamegraphs;
  flamegraphs.reserve(recs.size());
  for (const auto& r : recs) flamegraphs.push_back(r.window.profile ? &*r.window.profile : nullptr);
  std::vector<std::vector<const profile::Profile*>> recorded;
  for (const auto& r : recs) {
    recorded.emplace_back();
    for (const auto& p : r.recorded) recorded.back().push_back(&p);
  }
  std::vector<std::vector<const profile::Profile*>> tier_graphs;
  for (const auto& r : recs) {
    tier_graphs.emplace_back();
    for (const auto& [root, p] : r.tier_profiles) tier_graphs.back().push_back(&p);
  }
  const std::string page = report::report_html(data, title, flamegraphs, recorded, tier_graphs);
  if (auto w = util::write_file_atomically(a.output, page); !w) throw util::FatalError(w.error());
  std::cerr << fmt::format("chokepoint: wrote {} ({} bytes)\n", util::terminal_text(a.output),
                           page.size());
  return util::kExitOk;
}

}  // namespace

Subcommand make_report_command(CLI::App& root) {
  auto args = std::make_shared<ReportArgs>();
  CLI::App* cli = root.add_subcommand(
      "report",
      "Write one self-contained HTML page from a recording (two: before and after side by side)");
  cli->add_option("FILE", args->files, "one recording, or two (before, after)")
      ->required()
      ->expected(1, 2);
  cli->add_option("-o,--output", args->output, "the HTML file to write")->required();
  cli->footer(
      "Examples:\n"
      "  chokepoint report svc.chokepoint -o report.html\n"
      "  chokepoint report before.chokepoint after.chokepoint -o fix.html");
  return {cli, [args] { return run_report(*args); }};
}

}  // namespace chokepoint::app
