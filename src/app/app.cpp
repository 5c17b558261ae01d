#include "app/app.h"

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "app/commands.h"
#include "app/run_budget.h"
#include "app/version.h"
#include "util/fatal.h"

namespace chokepoint::app {

namespace {

// The subcommand being parsed ("diagnose"), or "" for the root.
std::string parsed_subcommand(const std::vector<Subcommand>& subcommands) {
  for (const Subcommand& sub : subcommands) {
    if (sub.cli->parsed()) return sub.cli->get_name();
  }
  return "";
}

// The help to point a usage error at: "chokepoint diagnose --help", or the root's.
std::string help_command(const std::string& subcommand) {
  return subcommand.empty() ? "chokepoint --help" : "chokepoint " + subcommand + " --help";
}

// The parsed subcommand's own handler of usage errors, or nullptr.
const Subcommand* parsed(const std::vector<Subcommand>& subcommands) {
  for (const Subcommand& sub : subcommands) {
    if (sub.cli->parsed()) return &sub;
  }
  return nullptr;
}

// Prints a usage error (or hands it to the subcommand that takes its own) and returns the code.
int usage_failure(const std::vector<Subcommand>& subcommands, const util::Error& error) {
  const Subcommand* sub = parsed(subcommands);
  if (sub && sub->usage_error) return sub->usage_error(error);
  util::print_error(error);
  return util::kExitUsage;
}

// CLI11 says "Could not convert: --pid = 99999999999" for a value its option's type cannot hold
// (a number out of range, a word for a number). Say which option and value, and what it takes.
util::Error conversion_error(const std::string& what, const std::string& subcommand) {
  const std::string help = help_command(subcommand);
  const std::string prefix = "Could not convert: ";
  const auto eq = what.find(" = ");
  if (what.rfind(prefix, 0) != 0 || eq == std::string::npos) {
    return util::Error{what, "run '" + help + "' for the values each option takes", 0};
  }
  const std::string name = what.substr(prefix.size(), eq - prefix.size());
  const std::string value = what.substr(eq + 3);
  if (name == "--pid") {
    return util::Error{fmt::format("--pid '{}' is not a process id", value),
                       "give the id of a running process, e.g. --pid 1234 or --pid $(pgrep -n "
                       "nginx); process ids are whole numbers up to kernel.pid_max",
                       0};
  }
  return util::Error{fmt::format("{} '{}' is not a value it takes (a number of the wrong form or "
                                 "out of range)",
                                 name, value),
                     "run '" + help + "' for the values each option takes", 0};
}

}  // namespace

int run(int argc, char** argv) {
  mark_main_start();
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
  } catch (const CLI::ConversionError& e) {
    return usage_failure(subcommands, conversion_error(e.what(), parsed_subcommand(subcommands)));
  } catch (const CLI::ParseError& e) {
    const std::string help = help_command(parsed_subcommand(subcommands));
    return usage_failure(subcommands, util::Error{e.what(), "run '" + help + "' for usage", 0});
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
