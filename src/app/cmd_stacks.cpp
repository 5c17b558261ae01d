// chokepoint stacks: every thread's current stack of one process, grouped by identical stack,
// each group with its state and wait, and how long each thread was stopped for the read.
#include <iostream>
#include <memory>
#include <optional>

#include "app/subcommand.h"
#include "render/json_text.h"
#include "render/stacks_report.h"
#include "stacks/capture.h"
#include "symbolize/symbolizer.h"
#include "util/fatal.h"

namespace chokepoint::app {
namespace {

struct StacksArgs {
  int pid = 0;
  int tid = 0;
  bool json = false;
};

int run_stacks(const StacksArgs& a) {
  if (a.pid <= 0) {
    util::usage_error("--pid must be a process id above 0",
                      "pass the pid, e.g. --pid $(pidof nginx)");
  }
  stacks::CaptureOptions options;
  if (a.tid != 0) options.tid = a.tid;
  auto symbolizer = symbolize::Symbolizer::create();
  if (!symbolizer) throw util::FatalError(symbolizer.error());
  auto dump = stacks::capture_stacks(a.pid, options, **symbolizer);
  if (!dump) throw util::FatalError(dump.error());
  std::cout << (a.json ? render::stacks_json(*dump) : render::stacks_text(*dump));
  std::cout.flush();
  return util::kExitOk;
}

}  // namespace

Subcommand make_stacks_command(CLI::App& root) {
  auto args = std::make_shared<StacksArgs>();
  CLI::App* cli = root.add_subcommand(
      "stacks",
      "Dump every thread's stack now, grouped by identical stack, with each thread's state and "
      "wait (each thread is stopped only for the read, and for how long is reported)");
  cli->add_option("-p,--pid", args->pid, "the process")->required();
  cli->add_option("-t,--tid", args->tid, "only this thread of the process");
  cli->add_flag("--json", args->json, "one JSON document instead of text");
  cli->footer(
      "Examples:\n"
      "  chokepoint stacks --pid $(pidof -s nginx)\n"
      "  chokepoint stacks --pid 1234 --tid 1240 --json");
  return {cli, [args] { return run_stacks(*args); }};
}

}  // namespace chokepoint::app
