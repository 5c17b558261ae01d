// chokepoint diff: two recordings side by side (before and after a fix): the verdicts, the time
// split and the evidence, with what moved and by how much.
#include <iostream>
#include <memory>

#include "app/replay_window.h"
#include "app/subcommand.h"
#include "render/diagnosis_diff.h"
#include "render/json_text.h"
#include "render/services_diff.h"
#include "util/fatal.h"

namespace chokepoint::app {
namespace {

struct DiffArgs {
  std::string before;
  std::string after;
  bool json = false;
};

int run_diff(const DiffArgs& a) {
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
  CLI::App* cli = root.add_subcommand(
      "diff", "Compare two recordings, before and after a change: verdict, time split, evidence");
  cli->add_option("BEFORE", args->before, "the recording before the change")->required();
  cli->add_option("AFTER", args->after, "the recording after it")->required();
  cli->add_flag("--json", args->json, "print JSON instead of text");
  cli->footer(
      "Example:\n"
      "  chokepoint diagnose --pid 1234 --record before.chokepoint\n"
      "  (fix, restart)\n"
      "  chokepoint diagnose --pid 1234 --record after.chokepoint\n"
      "  chokepoint diff before.chokepoint after.chokepoint\n"
      "  chokepoint load URL --rate 500 --record before.chokepoint   # a load run alone: only the\n"
      "                                                              # loads compare");
  return {cli, [args] { return run_diff(*args); }};
}

}  // namespace chokepoint::app
