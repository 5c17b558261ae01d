#pragma once
// The list of subcommands. Only subcommands that work are registered.

#include <vector>

#include "app/subcommand.h"

namespace chokepoint::app {

// Adds every subcommand to root, in the order --help lists them.
std::vector<Subcommand> register_all(CLI::App& root);

}  // namespace chokepoint::app
