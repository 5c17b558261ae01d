#include "app/commands.h"

namespace chokepoint::app {

// Each subcommand's factory, defined in its cmd_<name>.cpp.
// (add one declaration per subcommand here)
Subcommand make_agent_command(CLI::App& root);
Subcommand make_check_command(CLI::App& root);
Subcommand make_diagnose_command(CLI::App& root);
Subcommand make_diff_command(CLI::App& root);
Subcommand make_fleet_command(CLI::App& root);
Subcommand make_knee_command(CLI::App& root);
Subcommand make_load_command(CLI::App& root);
Subcommand make_profile_command(CLI::App& root);
Subcommand make_record_command(CLI::App& root);
Subcommand make_replay_command(CLI::App& root);
Subcommand make_report_command(CLI::App& root);
Subcommand make_stacks_command(CLI::App& root);
Subcommand make_top_command(CLI::App& root);
Subcommand make_usl_command(CLI::App& root);

std::vector<Subcommand> register_all(CLI::App& root) {
  std::vector<Subcommand> subcommands;
  // (add one push_back per subcommand here, in the order --help should list them)
  subcommands.push_back(make_diagnose_command(root));
  subcommands.push_back(make_top_command(root));
  subcommands.push_back(make_record_command(root));
  subcommands.push_back(make_replay_command(root));
  subcommands.push_back(make_diff_command(root));
  subcommands.push_back(make_report_command(root));
  subcommands.push_back(make_profile_command(root));
  subcommands.push_back(make_stacks_command(root));
  subcommands.push_back(make_load_command(root));
  subcommands.push_back(make_knee_command(root));
  subcommands.push_back(make_usl_command(root));
  subcommands.push_back(make_check_command(root));
  subcommands.push_back(make_agent_command(root));
  subcommands.push_back(make_fleet_command(root));
  (void)root;
  return subcommands;
}

}  // namespace chokepoint::app
