#pragma once
// Pure parsers for the text files the symbolizer reads: /proc/PID/maps (proc(5)), JIT perf maps
// (/tmp/perf-PID.map, tools/perf/Documentation/jit-interface.txt) and /proc/kallsyms. They never
// throw, never read past the view they are given, and skip lines they cannot read (counting them),
// so one odd line cannot hide the rest of the file.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chokepoint::symbolize {

// One line of /proc/PID/maps:
//   address           perms offset  dev   inode      pathname
//   55d0c3a00000-55d0c3a21000 r-xp 00002000 fd:01 1835014    /usr/bin/cat
struct Mapping {
  std::uint64_t start = 0;   // first byte
  std::uint64_t end = 0;     // one past the last byte; always > start
  std::uint64_t offset = 0;  // file offset mapped at `start`
  bool readable = false, writable = false, executable = false, shared = false;
  std::uint32_t dev_major = 0, dev_minor = 0;
  std::uint64_t inode = 0;
  // As the kernel printed it, relative to the process's root, without the " (deleted)" suffix;
  // empty for anonymous memory, "[heap]", "[stack]", "[vdso]", "[anon:name]" for special ones.
  std::string path;
  bool deleted = false;  // the line ended in " (deleted)": the file was unlinked or replaced

  // A regular file (not anonymous memory, not a "[...]" pseudo-path, not a memfd).
  bool file_backed() const;
  bool contains(std::uint64_t address) const { return address >= start && address < end; }
};

struct MapsFile {
  std::vector<Mapping> mappings;  // in file order, which the kernel sorts by start address
  std::size_t skipped_lines = 0;  // non-empty lines that were not a mapping
};

MapsFile parse_maps(std::string_view text);

// One symbol of a JIT perf map: "START SIZE name" with START and SIZE in hex (an optional 0x is
// accepted); the name is the rest of the line and may hold spaces.
struct PerfMapSymbol {
  std::uint64_t start = 0;
  std::uint64_t end = 0;  // start + SIZE, > start
  std::string name;
};

struct PerfMap {
  // Sorted by start and disjoint. Where the file's ranges overlap (a JIT reuses memory for new
  // code), the later line wins for the bytes they share, as it describes the newer code.
  std::vector<PerfMapSymbol> symbols;
  std::size_t skipped_lines = 0;

  const PerfMapSymbol* find(std::uint64_t address) const;
};

PerfMap parse_perf_map(std::string_view text);

// Function symbols of /proc/kallsyms ("ffffffff81000000 T _stext" or
// "ffffffffc0a01000 t nf_hook_slow\t[nf_tables]"); data symbols are dropped, since stacks only hold
// code addresses, so each function ends where the next one starts.
struct KernelSymbol {
  std::uint64_t address = 0;
  std::string name;
  std::string module;  // "" for the core kernel, else the module name without brackets
};

struct KernelSymbols {
  std::vector<KernelSymbol> symbols;  // sorted by address; empty when the addresses are hidden
  // Every address read as zero: kernel.kptr_restrict hides them from this reader.
  bool addresses_hidden = false;
  std::size_t skipped_lines = 0;

  // The function holding `address`: the last symbol at or below it, provided the address is
  // within kMaxLastSymbolBytes of the last symbol of all (nothing bounds that one otherwise).
  const KernelSymbol* find(std::uint64_t address) const;
  static constexpr std::uint64_t kMaxLastSymbolBytes = 1 << 20;
};

KernelSymbols parse_kallsyms(std::string_view text);

}  // namespace chokepoint::symbolize
