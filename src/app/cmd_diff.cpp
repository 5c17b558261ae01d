// chokepoint diff: two recordings side by side (before and after a fix): the verdicts, the time
// split and the evidence, with what moved and by how much.
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "app/replay_window.h"
#include "app/subcommand.h"
#include "render/diagnosis_diff.h"
#include "render/json_text.h"
#include "render/services_diff.h"
#include "render/tiers_diff.h"
#include "util/fatal.h"

namespace chokepoint::app {
namespace {

struct DiffArgs {
  std::string before;
  std::string after;
  bool json = false;
};

// Two multi-tier recordings (diagnose --pid A --pid B --record): tier by tier, and the limiting
// tier. One of them alone is a usage error: a tier against a whole target compares nothing.
bool diff_tiers(const DiffArgs& a) {
  const auto before = replay_tiers(a.before, "", "");
  const auto after = replay_tiers(a.after, "", "");
  if (!before && !after) return false;
  if (!before || !after) {
    util::usage_error(
        fmt::format("{} holds tiers and {} does not", before ? a.before : a.after,
                    before ? a.after : a.before),
        "compare two recordings of the same kind: both made by diagnose with several --pid (or "
        "--cgroup --tiers), or both of one target");
  }
  const auto& x = before->tiers;
  const auto& y = after->tiers;
  if (x.tiers.size() != y.tiers.size()) {
    util::usage_error(fmt::format("{} holds {} tiers and {} holds {}", a.before, x.tiers.size(),
                                  a.after, y.tiers.size()),
                      "tiers are compared by their place: record both with the same tiers, in "
                      "the same order of --pid");
  }
  const render::TiersDiffSide bx{a.before, {x.tiers, x.observations, x.links, x.limiting}};
  const render::TiersDiffSide by{a.after, {y.tiers, y.observations, y.links, y.limiting}};
  if (a.json) {
    std::cout << render::json_text(render::tiers_diff_json(bx, by));
  } else {
    std::cout << render::tiers_diff_text(bx, by);
  }
  std::cout.flush();
  return true;
}

int run_diff(const DiffArgs& a) {
  if (diff_tiers(a)) return util::kExitOk;
  const ReplayedWindow before = replay_window(a.before, "", "");
  const ReplayedWindow after = replay_window(a.after, "", "");
  auto side = [](const std::string& label, const ReplayedWindow& w) {
    return w.sampled ? render::DiffSide{label, &w.observation, &w.diagnosis, &w.load.json, nullptr}
                     : render::DiffSide{label, nullptr, nullptr, &w.load.json, &w.knee.json};
  };
  const render::DiffSide x = side(a.before, before);
  const render::DiffSide y = side(a.after, after);
  // The services both probed: what their own counters and gauges did (the probe series of
  // schema 5, or the summary a diagnose --record kept).
  const auto& sx = before.service_observations;
  const auto& sy = after.service_observations;
  if (a.json) {
    nlohmann::json j = render::diagnosis_diff_json(x, y);
    if (auto services = render::services_diff_json(sx, sy); !services.empty()) {
      j["services"] = std::move(services);
    }
    std::cout << render::json_text(j);
  } else {
    std::cout << render::diagnosis_diff_text(x, y) << render::services_diff_text(sx, sy);
  }
  std::cout.flush();
  return util::kExitOk;
}

}  // namespace

Subcommand make_diff_command(CLI::App& root) {
  auto args = std::make_shared<DiffArgs>();
  CLI::App* cli =
      root.add_subcommand("diff",
                          "Compare two recordings, before and after a change: verdict, time split, "
                          "evidence (tier by tier for multi-tier recordings)");
  cli->add_option("BEFORE", args->before, "the recording before the change")->required();
  cli->add_option("AFTER", args->after, "the recording after it")->required();
  cli->add_flag("--json", args->json, "print JSON instead of text");
  cli->footer(
      "Example:\n"
      "  chokepoint diagnose --pid 1234 --record before.chokepoint\n"
      "  (fix, restart)\n"
      "  chokepoint diagnose --pid 1234 --record after.chokepoint\n"
      "  chokepoint diff before.chokepoint after.chokepoint\n"
      "  chokepoint diagnose --pid $(pgrep -o app) --pid $(pgrep -o postgres) --record "
      "b.chokepoint\n"
      "  chokepoint diff b.chokepoint a.chokepoint     # tier by tier, and the limiting tier\n"
      "  chokepoint load URL --rate 500 --record before.chokepoint   # a load run alone: only the\n"
      "                                                              # loads compare");
  return {cli, [args] { return run_diff(*args); }};
}

}  // namespace chokepoint::app
