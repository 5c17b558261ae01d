#pragma once
// The stop flag of a subcommand that runs until a deadline or until it is told to stop: SIGINT
// (Ctrl-C) and SIGTERM (kill, a service manager, a test harness) set it, and the work polls it and
// ends early with what it measured so far. Every subcommand treats the two signals alike.
//
// One flag per process. The handler only stores to a lock-free atomic (async-signal-safe) and is
// installed without SA_RESTART, so a blocking call returns EINTR and its loop looks at the flag.

#include <atomic>

namespace chokepoint::util {

// The process's stop flag; false until a signal arrives after stop_on_signals().
std::atomic<bool>& stop_flag();

// Clears the stop flag and makes SIGINT and SIGTERM set it. Returns the flag.
std::atomic<bool>& stop_on_signals();

}  // namespace chokepoint::util
