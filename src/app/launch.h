#pragma once
// Starting and ending the command a subcommand watches (`chokepoint diagnose -- CMD`,
// `chokepoint profile -- CMD`). Shared so every subcommand treats a command the same way.

#include <sys/types.h>

#include <string>
#include <vector>

namespace chokepoint::app {

// Starts the command (looked up in PATH) with its stdout on our stderr, so that our stdout holds
// only the report; returns its pid once exec succeeded. The command runs in a process group of its
// own (pgid = its pid) and is tied to the calling thread's life: if that thread ends, even by
// SIGKILL of chokepoint, the kernel sends the command SIGKILL (PR_SET_PDEATHSIG), so call this from
// the thread that lives for the whole run (the main thread). Its own children outlive a SIGKILL of
// chokepoint (they are not ours to find); reap() ends them. Throws
// util::FatalError (exit 1) with a hint when it cannot be started.
pid_t launch(const std::vector<std::string>& command);

// Ends a command we launched and its process group: SIGTERM, then SIGKILL after 2 s; always reaps
// it.
void reap(pid_t pid);

}  // namespace chokepoint::app
