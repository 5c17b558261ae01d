#include "app/commands.h"

namespace chokepoint::app {

// Each subcommand's factory, defined in its cmd_<name>.cpp.
// (add one declaration per subcommand here)

std::vector<Subcommand> register_all(CLI::App& root) {
  std::vector<Subcommand> subcommands;
  // (add one push_back per subcommand here, in the order --help should list them)
  (void)root;
  return subcommands;
}

}  // namespace chokepoint::app
