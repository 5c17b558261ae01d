#pragma once
// The chokepoint command line. app/ is the only place that wires libraries together; each
// subcommand lives in its own cmd_<name>.cpp and registers itself in app.cpp.

namespace chokepoint::app {

// Parses argv, runs the chosen subcommand and returns the process exit code:
// 0 success, 1 runtime failure, 2 usage error. Never throws.
int run(int argc, char** argv);

}  // namespace chokepoint::app
