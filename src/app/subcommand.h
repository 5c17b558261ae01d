#pragma once
// How a subcommand plugs into the CLI: it adds its options to the root CLI::App and hands back
// the function that runs it once parsing succeeded.

#include <CLI/CLI.hpp>
#include <functional>

namespace chokepoint::app {

struct Subcommand {
  CLI::App* cli = nullptr;
  // Runs the subcommand; returns the exit code. May throw util::FatalError.
  std::function<int()> run;
};

}  // namespace chokepoint::app
