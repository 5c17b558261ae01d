#include "app/app.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <vector>

#include "app/commands.h"
#include "app/version.h"
#include "util/fatal.h"

namespace chokepoint::app {

int run(int argc, char** argv) {
  CLI::App root{
      "chokepoint: find what limits a Linux service (network, disk, memory, lock or CPU), "
      "what to fix first, and prove the fix with load.",
      "chokepoint"};
  root.set_version_flag("--version", std::string("chokepoint ") + kVersion);
  root.require_subcommand(0, 1);
  root.footer("Run 'chokepoint SUBCOMMAND --help' for a subcommand's options.");

  std::vector<Subcommand> subcommands = register_all(root);

  try {
    root.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return root.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return root.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return root.exit(e);
  } catch (const CLI::ParseError& e) {
    util::print_error(util::Error{e.what(), "run 'chokepoint --help' for usage", 0});
    return util::kExitUsage;
  }

  try {
    for (const Subcommand& sub : subcommands) {
      if (sub.cli->parsed()) return sub.run();
    }
    std::fputs(root.help().c_str(), stdout);
    return util::kExitUsage;
  } catch (const util::FatalError& e) {
    util::print_error(e.error());
    return e.exit_code();
  } catch (const std::exception& e) {
    util::print_error(util::Error{std::string("internal error: ") + e.what(),
                                  "this is a bug in chokepoint; please report it with the command "
                                  "line that triggered it",
                                  0});
    return util::kExitRuntime;
  }
}

}  // namespace chokepoint::app
