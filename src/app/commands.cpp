#include "app/commands.h"

namespace chokepoint::app {

std::vector<Subcommand> register_all(CLI::App& root) {
  std::vector<Subcommand> subcommands;
  (void)root;
  return subcommands;
}

}  // namespace chokepoint::app
