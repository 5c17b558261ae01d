#pragma once
// src/symbolize/symbolizer.h -- contract agreed between helpers (implemented by the symbolize
// helper). Turns sampled addresses into profile::Frame (src/profile/profile.h). libdwfl (elfutils,
// Debian libdw-dev) does ELF symtab/dynsym, PIE/shared-library bias and file:line; we add
// /proc/PID/root, deleted/replaced binaries (through /proc/PID/map_files), JIT perf maps and
// kallsyms. How names are found and why frames stay unresolved: docs/symbolize.md; the text
// parsers (maps, perf maps, kallsyms) are public in symbolize/parsers.h.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>
#include "profile/profile.h"
#include "util/result.h"

namespace chokepoint::symbolize {

struct SymbolizerOptions {
  std::string proc_root = "/proc";    // tests pass a fixture root for the text parsers
  std::string perf_map_dir = "/tmp";  // JIT maps: <dir>/perf-PID.map
  bool source_lines = true;           // file:line from debug info when present
};

// Counted per call (cache hits included): `unresolved` is how many calls returned kUnresolved.
struct SymbolizerStats {
  std::uint64_t user_lookups = 0, kernel_lookups = 0, unresolved = 0;
};

// Not thread-safe: one thread at a time. Caches per process and per binary (by build-id or
// dev+inode), so symbolizing 1M samples costs one lookup per distinct address.
class Symbolizer {
 public:
  static util::Result<std::unique_ptr<Symbolizer>> create(SymbolizerOptions options = {});
  virtual ~Symbolizer() = default;
  // Snapshot the process's mappings and keep its binaries open now, while it is alive, so that
  // addresses can still be resolved after it exits or after its binary was deleted or replaced.
  // Call it when profiling starts and again when a sample hits an unknown mapping. Errors (the
  // process is gone, EACCES) are returned; later lookups for that pid then come back unresolved
  // with the reason.
  virtual util::Result<void> attach(int pid) = 0;
  // Resolve a user-space address of `pid` (as sampled: a runtime virtual address). For caller
  // frames (return addresses) pass `address - 1`, so file:line names the call, not the next line.
  // A pid never attached is attached on its first lookup. Never fails:
  // an address that cannot be named comes back as FrameKind::kUnresolved with `unresolved` set
  // ("stripped", "no symbols", "JIT without a perf map", "not mapped", "process exited").
  virtual profile::Frame user(int pid, std::uint64_t address) = 0;
  // Resolve a kernel address from /proc/kallsyms (loaded once, lazily). kptr_restrict hiding the
  // addresses gives kUnresolved with the reason and a hint-worthy message in notes().
  virtual profile::Frame kernel(std::uint64_t address) = 0;
  // Plain sentences about what could not be resolved and why (for Profile::notes).
  virtual std::vector<std::string> notes() const = 0;
  virtual SymbolizerStats stats() const = 0;
};

}  // namespace chokepoint::symbolize
