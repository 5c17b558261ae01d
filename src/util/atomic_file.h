#pragma once
// Writing an output file so that it is never seen half-written: the content goes to a temporary
// file in the same directory, is flushed to disk, and replaces the target with rename(2), which is
// atomic within a file system. A reader sees the old file or the new one, never a mix; a crash or
// a full disk leaves the old file in place (and no temporary behind).

#include <string>
#include <string_view>

#include "util/result.h"

namespace chokepoint::util {

// Errors carry a hint (missing directory, permission, full disk).
Result<void> write_file_atomically(const std::string& path, std::string_view content);

// Checks up front that `path` can be written (its directory exists and is writable, and it is not
// a directory), so a long run does not end in an error it could have reported at the start.
Result<void> check_writable(const std::string& path);

}  // namespace chokepoint::util
