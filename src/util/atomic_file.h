#pragma once
// Writing an output file so that it is never seen half-written: the content goes to an unnamed
// file (O_TMPFILE) in the same directory, is flushed to disk, and gets its name with linkat(2), or
// when the target exists a temporary name and rename(2), which is atomic within a file system. A
// reader sees the old file or the new one, never a mix; a crash, a SIGKILL or a full disk leaves
// the old file in place and no temporary behind. File systems without O_TMPFILE get a named
// temporary (mkstemp), which only a kill during the write can leave.

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
