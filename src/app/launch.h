#pragma once
// Starting and ending the command a subcommand watches (`chokepoint diagnose -- CMD`,
// `chokepoint profile -- CMD`). Shared so every subcommand treats a command the same way.

#include <sys/types.h>

#include <string>
#include <vector>

namespace chokepoint::app {

// Starts the command (looked up in PATH) with its stdout on our stderr, so that our stdout holds
// only the report; returns its pid once exec succeeded. Throws
// util::FatalError (exit 1) with a hint when it cannot be started.
pid_t launch(const std::vector<std::string>& command);

// Ends a command we launched: SIGTERM, then SIGKILL after 2 s; always reaps it.
void reap(pid_t pid);

}  // namespace chokepoint::app
