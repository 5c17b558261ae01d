// chokepoint replay: re-run today's rules on a recording (or a part of it) and print the report a
// live diagnose prints. With --over-time (or --column), also the verdict over time: the window cut
// into the report's columns, each change of their verdict with why it changed
// (report/verdict_changes.h, the page's sentence). Decided: it is asked for, not the default: it
// costs a diagnosis per column (more than the replay itself on an hour: issue 10's goal is an
// hour's replay in 2 s), and a diagnose --record recording replays exactly as the diagnosis
// printed it. A recording made over time says how to get it.
#include <fmt/format.h>

#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>

#include "analysis/diagnosis.h"
#include "app/cli_values.h"
#include "app/recorded_window.h"
#include "app/replay_window.h"
#include "app/subcommand.h"
#include "render/diagnosis_report.h"
#include "render/json_text.h"
#include "render/services_report.h"
#include "render/tiers_report.h"
#include "report/timeline.h"
#include "report/verdict_changes.h"
#include "util/escape.h"
#include "util/fatal.h"

namespace chokepoint::app {
namespace {

struct ReplayArgs {
  std::string path;
  std::string from;
  std::string to;
  bool json = false;
  std::string mode = "auto";
  std::string column;      // the verdict over time's column length; "": the report's
  bool over_time = false;  // print the verdict over time (--column implies it)
};

int run_replay(const ReplayArgs& a) {
  const bool sampled_only = parse_split_mode_arg(a.mode) == collect::sampler::SplitMode::kSample;
  // A multi-tier recording: one verdict per tier and the limiting tier, as diagnose printed them.
  if (auto t = replay_tiers(a.path, a.from, a.to, sampled_only)) {
    const monitor::TierWindows& tw = t->tiers;
    const render::TiersView view{tw.tiers, tw.observations, tw.links, tw.limiting};
    if (a.json) {
      nlohmann::json j = render::tiers_json(view);
      if (!t->services.empty()) j["services"] = render::services_json(t->services);
      if (!t->load.json.is_null()) j["load"] = t->load.json;
      if (!t->run.is_null()) j["run"] = t->run;
      std::cout << render::json_text(j);
    } else {
      std::cerr << fmt::format("chokepoint: replaying {} ({:.1f} s to {:.1f} s of {:.1f} s)\n",
                               util::terminal_text(a.path), t->from_s, t->to_s, t->length_s);
      std::cout << render::tiers_text(view) << render::services_text(t->services) << t->load.text;
    }
    std::cout.flush();
    return util::kExitOk;
  }
  // The window cut into the report's columns in the same pass (the page's columns when the
  // window is the whole recording).
  report::TimelineOptions columns;
  if (!a.column.empty()) {
    columns.column_ns = parse_duration_ns(a.column, "--column");
    if (columns.column_ns <= 0)
      util::usage_error("--column must be above 0", "pass e.g. --column 1s");
  }
  std::optional<report::TimelineBuilder> timeline;
  bool over_time_tip = false;  // a recording made over time, replayed without the list
  TickTap tap;
  tap.begin = [&](const store::RecordingReader& reader, std::int64_t from_ns, std::int64_t to_ns) {
    if (a.over_time || !a.column.empty()) {
      timeline.emplace(reader.info(), from_ns, to_ns, columns);
    } else {
      over_time_tip = !is_diagnosis_recording(reader);
    }
  };
  tap.each = [&](const model::Tick& t) {
    if (timeline) timeline->add(t);
  };
  ReplayedWindow w = replay_window(a.path, a.from, a.to, tap, sampled_only);
  // Wall-clock times are not printed: the changes' times are offsets into the window.
  const nlohmann::json over_time = timeline ? timeline->finish(0) : nlohmann::json();
  if (!w.sampled) {
    const std::string& kind = w.observation.target.kind;  // "load" or "knee"
    const RecordedLoad& run = kind == kKneeRunTargetKind ? w.knee : w.load;
    if (a.json) {
      std::cout << render::json_text(
          {{"schema", 1},
           {"recording", a.path},
           {"sampled", false},
           {"target", {{"kind", kind}, {"spec", w.observation.target.spec}}},
           {kind, run.json}});
    } else {
      std::cerr << fmt::format(
          "chokepoint: replaying {}: a {} run alone (chokepoint {} --record), no target was "
          "sampled\n",
          util::terminal_text(a.path), kind, kind);
      std::cout << run.text;
    }
    std::cout.flush();
    return util::kExitOk;
  }
  if (a.json) {
    nlohmann::json j = render::diagnosis_json(w.observation, w.diagnosis);
    if (!w.services.empty()) j["services"] = render::services_json(w.services);
    if (!w.load.json.is_null()) j["load"] = w.load.json;
    if (!w.run.is_null()) j["run"] = w.run;
    if (!w.recorded_stacks.empty()) j["recorded_stacks"] = recorded_stacks_json(w.recorded_stacks);
    const nlohmann::json changes = report::verdict_over_time_json(over_time, w.from_s);
    if (!changes.is_null()) j["verdict_over_time"] = changes;
    std::cout << render::json_text(j);
  } else {
    std::cerr << fmt::format("chokepoint: replaying {} ({:.1f} s to {:.1f} s of {:.1f} s)\n",
                             util::terminal_text(a.path), w.from_s, w.to_s, w.length_s);
    const std::string changes = report::verdict_over_time_text(over_time, w.from_s);
    std::cout << render::diagnosis_text(w.observation, w.diagnosis) << (changes.empty() ? "" : "\n")
              << changes << render::services_text(w.services) << w.load.text;
    if (over_time_tip) {
      std::cerr << "chokepoint: replay --over-time lists how the verdict changed over the window, "
                   "and why (chokepoint report draws it)\n";
    }
  }
  std::cout.flush();
  return util::kExitOk;
}

}  // namespace

Subcommand make_replay_command(CLI::App& root) {
  auto args = std::make_shared<ReplayArgs>();
  CLI::App* cli = root.add_subcommand(
      "replay", "Diagnose a recording again, or a part of it: the report a live diagnose prints");
  cli->add_option("FILE", args->path, "a recording (chokepoint record, or diagnose --record)")
      ->required();
  cli->add_option("--from", args->from, "start this far into the recording (10s, 2m)");
  cli->add_option("--to", args->to, "end this far into the recording");
  cli->add_flag("--json", args->json, "print the JSON report (schema 1) instead of text");
  cli->add_option("--mode", args->mode,
                  "sample: set the recorded exact-mode sums aside (the sampled split of the same "
                  "window); exact or auto: use them where the recording has them")
      ->capture_default_str();
  cli->add_flag("--over-time", args->over_time,
                "also list how the verdict changed over the window, column by column, and why "
                "(as the report page's verdict strip)");
  cli->add_option("--column", args->column,
                  "the verdict over time's column length (1s, 1m; implies --over-time); default: "
                  "the report's, at most 120 columns of at least one sampling interval");
  cli->footer(
      "Examples:\n"
      "  chokepoint replay before.chokepoint\n"
      "  chokepoint replay service.chokepoint --from 10m --to 15m --json\n"
      "  chokepoint replay service.chokepoint --over-time --column 1m");
  return {cli, [args] { return run_replay(*args); }};
}

}  // namespace chokepoint::app
