#pragma once
// chokepoint-lab's entry point: parses flags, sets up the data dir (and, for paging, the memory
// cgroup), serves until SIGTERM or SIGINT, then cleans up. Returns the process exit code:
// 0 after a clean shutdown, 1 for a runtime failure, 2 for a usage error.

namespace chokepoint::lab {

int run(int argc, char** argv);

}  // namespace chokepoint::lab
