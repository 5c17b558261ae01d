#pragma once
// The open-file limit (RLIMIT_NOFILE) for tools that keep many descriptors: one perf event or a
// few /proc files per thread of a target with thousands of threads.

#include <cstdint>

namespace chokepoint::util {

// Raises the soft RLIMIT_NOFILE to the hard limit (as perf does; no privilege needed) and returns
// the soft limit now in force, or 0 when it cannot be read. A failed raise is not an error: the
// caller sizes its work by what is returned.
std::uint64_t raise_fd_limit_to_hard();

}  // namespace chokepoint::util
