#pragma once
// How a subcommand plugs into the CLI: it adds its options to the root CLI::App and hands back
// the function that runs it once parsing succeeded.

#include <CLI/CLI.hpp>
#include <functional>

#include "util/result.h"

namespace chokepoint::app {

struct Subcommand {
  CLI::App* cli = nullptr;
  // Runs the subcommand; returns the exit code. May throw util::FatalError.
  std::function<int()> run;
  // When set, a command-line parse error is handed to it instead of being printed; it returns
  // the exit code (a Nagios plugin prints its UNKNOWN line and exits 3, not 2).
  std::function<int(const util::Error&)> usage_error = nullptr;
};

}  // namespace chokepoint::app
