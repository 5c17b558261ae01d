#pragma once
// One ELF file (an executable, a shared library or the vDSO) opened for symbol lookups. Internal
// to the symbolizer. libdwfl (elfutils) reads the symbol tables: .symtab, else a separate debug
// file found by build-id or debuglink (/usr/lib/debug), else .dynsym and MiniDebugInfo; and
// file:line from DWARF. We sort the function symbols once, so a lookup is a binary search.
//
// Not thread-safe. The object owns the file descriptor it was opened with, so the file stays
// readable after the process that mapped it exited or after it was deleted.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "util/result.h"
#include "util/scoped_fd.h"

struct Dwfl;
struct Dwfl_Module;

namespace chokepoint::symbolize {

// What one address of a binary resolved to.
struct ElfSymbol {
  std::string name;        // demangled; empty when unresolved
  std::string file;        // source file from DWARF; empty when unknown
  int line = 0;            // 0 when unknown
  std::string unresolved;  // why `name` is empty: "stripped", "no symbols", ...
};

class ElfBinary {
 public:
  // Reads the program headers, the section table and the build-id of `fd` (which it takes).
  // `path` is the file's name for separate debug-file lookups (debuglink is relative to it).
  // Fails when the file is not ELF.
  static util::Result<std::unique_ptr<ElfBinary>> open(util::ScopedFd fd, std::string path,
                                                       bool source_lines);
  ~ElfBinary();
  ElfBinary(const ElfBinary&) = delete;
  ElfBinary& operator=(const ElfBinary&) = delete;

  // The ELF virtual address (what the symbol tables and DWARF use) of a byte at `file_offset`,
  // through the PT_LOAD segment that maps it; nullopt when no segment does.
  std::optional<std::uint64_t> file_offset_to_vaddr(std::uint64_t file_offset) const;

  // The function holding ELF virtual address `vaddr`. Cached per address.
  const ElfSymbol& lookup(std::uint64_t vaddr);

  const std::string& build_id() const { return build_id_; }  // lowercase hex; empty when none
  const std::string& path() const { return path_; }

 private:
  struct Segment {
    std::uint64_t offset, vaddr, filesz, memsz;
  };
  struct FunctionSymbol {
    std::uint64_t start, end;  // [start, end) in ELF virtual addresses
    const char* name;          // owned by libdwfl's copy of the string table
    int rank;                  // lower is preferred among aliases at the same address
  };

  ElfBinary() = default;
  void load_symbols();  // lazily, at the first lookup
  ElfSymbol resolve(std::uint64_t vaddr);

  util::ScopedFd fd_;
  std::string path_;
  bool source_lines_ = true;
  std::vector<Segment> segments_;
  std::string build_id_;
  bool has_symtab_ = false;  // the file itself carries .symtab (it is not stripped)

  bool loaded_ = false;
  Dwfl* dwfl_ = nullptr;
  Dwfl_Module* module_ = nullptr;
  std::string load_error_;                 // why symbols could not be loaded at all
  bool has_debug_file_ = false;            // libdwfl found a separate debug file
  std::vector<FunctionSymbol> functions_;  // sorted by start, then rank
  std::unordered_map<std::uint64_t, ElfSymbol> cache_;
};

// Which of `names` the ELF file at `path` defines as functions (STT_FUNC or STT_GNU_IFUNC with a
// section, in .symtab or .dynsym; versioned names such as "malloc@@GLIBC_2.2.5" count as
// "malloc"). Undefined references (a dynamically linked program's malloc) do not count. Fails
// when the file cannot be opened or is not ELF. For choosing uprobe targets (collect/bpf).
util::Result<std::vector<std::string>> defined_functions(const std::string& path,
                                                         const std::vector<std::string>& names);

// C++ (Itanium ABI) demangling; returns the name unchanged when it is not a mangled name.
std::string demangle(const char* name);

}  // namespace chokepoint::symbolize
