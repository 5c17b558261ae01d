#pragma once
// The one way tests start a process: posix_spawn(3), so no code of the test runs in the child
// between fork and exec (a forked child of a multi-threaded test may only call async-signal-safe
// functions), with the child's stdout and stderr on descriptors the caller chose.

#include <sys/types.h>

#include <string>
#include <vector>

#include "util/result.h"

namespace chokepoint::test_support {

// Starts argv[0] with `argv` (argv[0] without a '/' is looked up in PATH), with stdout on
// `stdout_fd` and stderr on `stderr_fd`; -1 puts that stream on /dev/null. The caller owns the
// returned pid: it must reap it (waitpid). Errors name the program; their hint is the caller's.
util::Result<pid_t> spawn_process(const std::vector<std::string>& argv, int stdout_fd = -1,
                                  int stderr_fd = -1);

}  // namespace chokepoint::test_support
