#pragma once
// Reading a whole input file with a bound on the memory it can take. Every file chokepoint reads
// whose size someone else controls (a CSV, a request body, a JIT's perf map) goes through here,
// so /dev/zero, a FIFO with no writer, a directory or a huge file ends in a clear error instead of
// unbounded growth or a hang. docs/limits.md lists the caps.

#include <cstddef>
#include <string>

#include "util/result.h"

namespace chokepoint::util {

enum class FileKind {
  kRegularOnly,  // refuse anything but a regular file (never blocks: FIFOs are refused)
  kAnyReadable,  // also pipes and character devices, e.g. chokepoint usl <(...) or /dev/stdin
};

// The file's bytes, at most max_bytes of them. Errors (each with a hint naming `what`, e.g.
// "a CSV file with rows 'concurrency,throughput'"): cannot open or read (errno), "is a directory",
// "is not a regular file" (kRegularOnly), and "is larger than N" when more than max_bytes could be
// read; then no more than max_bytes + 1 bytes were ever held.
Result<std::string> read_file_bounded(const std::string& path, std::size_t max_bytes, FileKind kind,
                                      const std::string& what);

// "1 MiB", "256 MiB", "512 KiB": a cap in words for messages and docs.
std::string size_text(std::size_t bytes);

}  // namespace chokepoint::util
