#pragma once
// Writing an output file so that readers never see it half-written: the content goes to a temp
// file in the same directory, is flushed (fsync), and is renamed over the destination. On any
// failure the destination is untouched and the temp file is removed.

#include <string>
#include <string_view>

#include "util/result.h"

namespace chokepoint::util {

Result<void> write_file_atomically(const std::string& path, std::string_view content);

}  // namespace chokepoint::util
