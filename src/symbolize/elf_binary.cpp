#include "symbolize/elf_binary.h"

#include <cxxabi.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>

namespace chokepoint::symbolize {

namespace {

// libelf must be told the ELF version it works with before its first use.
bool init_libelf() {
  static const bool kReady = elf_version(EV_CURRENT) != EV_NONE;
  return kReady;
}

// Separate debug files are found by build-id or .gnu_debuglink under the default path
// (":.debug:/usr/lib/debug"); libdwfl asks debuginfod only when the user set DEBUGINFOD_URLS.
constexpr Dwfl_Callbacks kCallbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = nullptr,
};

// Among aliases at one address, prefer the plain public name: fewer leading underscores
// ("write" over "__write" over "__GI___libc_write"), then global over weak over local, then the
// shorter name.
int alias_rank(const char* name, unsigned char binding) {
  int underscores = 0;
  while (name[underscores] == '_') ++underscores;
  const int bind_rank = binding == STB_GLOBAL ? 0 : binding == STB_WEAK ? 1 : 2;
  const int length = static_cast<int>(std::min<std::size_t>(std::strlen(name), 9999));
  return underscores * 100000 + bind_rank * 10000 + length;
}

// Where inlined code at `vaddr` was called from inside the real (out-of-line) function, so the
// line belongs to the function the frame is named after rather than to, say, a std:: header.
// False when the address is not inside inlined code or the DWARF does not say.
bool outer_call_site(Dwfl_Module* module, std::uint64_t vaddr, std::string& file, int& line) {
  Dwarf_Addr bias = 0;
  Dwarf_Die* cu = dwfl_module_addrdie(module, vaddr, &bias);
  if (cu == nullptr) return false;
  Dwarf_Die* scopes = nullptr;
  const int n = dwarf_getscopes(cu, vaddr - bias, &scopes);
  if (n <= 0) return false;
  // Innermost first; the outermost inlined_subroutine just inside the first subprogram.
  int outermost_inline = -1;
  for (int i = 0; i < n; ++i) {
    const int tag = dwarf_tag(&scopes[i]);
    if (tag == DW_TAG_subprogram) break;
    if (tag == DW_TAG_inlined_subroutine) outermost_inline = i;
  }
  bool found = false;
  if (outermost_inline >= 0) {
    Dwarf_Attribute attr;
    Dwarf_Word call_file = 0, call_line = 0;
    Dwarf_Files* files = nullptr;
    std::size_t nfiles = 0;
    if (dwarf_formudata(dwarf_attr(&scopes[outermost_inline], DW_AT_call_file, &attr),
                        &call_file) == 0 &&
        dwarf_formudata(dwarf_attr(&scopes[outermost_inline], DW_AT_call_line, &attr),
                        &call_line) == 0 &&
        dwarf_getsrcfiles(cu, &files, &nfiles) == 0 && call_file < nfiles) {
      if (const char* name = dwarf_filesrc(files, call_file, nullptr, nullptr)) {
        file = name;
        line = static_cast<int>(call_line);
        found = true;
      }
    }
  }
  std::free(scopes);
  return found;
}

}  // namespace

std::string demangle(const char* name) {
  if (name == nullptr) return {};
  if (name[0] != '_' || name[1] != 'Z') return name;
  int status = 0;
  char* out = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (status != 0 || out == nullptr) return name;
  std::string result(out);
  std::free(out);
  return result;
}

util::Result<std::unique_ptr<ElfBinary>> ElfBinary::open(util::ScopedFd fd, std::string path,
                                                         bool source_lines) {
  if (!init_libelf()) {
    return util::Error{"libelf refused ELF version 1", "reinstall libelf1 (elfutils)", 0};
  }
  Elf* elf = elf_begin(fd.get(), ELF_C_READ_MMAP, nullptr);
  if (elf == nullptr || elf_kind(elf) != ELF_K_ELF) {
    if (elf != nullptr) elf_end(elf);
    return util::Error{path + " is not an ELF file", "", 0};
  }
  std::unique_ptr<ElfBinary> binary(new ElfBinary());
  binary->path_ = std::move(path);
  binary->source_lines_ = source_lines;

  std::size_t phnum = 0;
  if (elf_getphdrnum(elf, &phnum) == 0) {
    for (std::size_t i = 0; i < phnum; ++i) {
      GElf_Phdr phdr;
      if (gelf_getphdr(elf, static_cast<int>(i), &phdr) == nullptr) continue;
      if (phdr.p_type != PT_LOAD) continue;
      binary->segments_.push_back({phdr.p_offset, phdr.p_vaddr, phdr.p_filesz, phdr.p_memsz});
    }
  }
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) != nullptr && shdr.sh_type == SHT_SYMTAB) {
      binary->has_symtab_ = true;
      break;
    }
  }
  const void* id = nullptr;
  const ssize_t id_size = dwelf_elf_gnu_build_id(elf, &id);
  if (id_size > 0) {
    static constexpr char kHex[] = "0123456789abcdef";
    const auto* bytes = static_cast<const unsigned char*>(id);
    for (ssize_t i = 0; i < id_size; ++i) {
      binary->build_id_ += kHex[bytes[i] >> 4];
      binary->build_id_ += kHex[bytes[i] & 0xf];
    }
  }
  elf_end(elf);
  binary->fd_ = std::move(fd);
  return binary;
}

ElfBinary::~ElfBinary() {
  if (dwfl_ != nullptr) dwfl_end(dwfl_);
}

std::optional<std::uint64_t> ElfBinary::file_offset_to_vaddr(std::uint64_t file_offset) const {
  for (const Segment& s : segments_) {
    if (file_offset >= s.offset && file_offset - s.offset < std::max(s.filesz, s.memsz)) {
      return file_offset - s.offset + s.vaddr;
    }
  }
  return std::nullopt;
}

void ElfBinary::load_symbols() {
  loaded_ = true;
  dwfl_ = dwfl_begin(&kCallbacks);
  if (dwfl_ == nullptr) {
    load_error_ = std::string("libdwfl: ") + dwfl_errmsg(-1);
    return;
  }
  // libdwfl takes over our descriptor (its copy of the file keeps it alive from now on), so each
  // binary costs one descriptor however many processes map it.
  const int dwfl_fd = fd_.release();
  dwfl_report_begin(dwfl_);
  // base 0 with add_p_vaddr: the module's addresses are the file's own ELF virtual addresses
  // (bias 0) for executables and shared objects alike; callers translate runtime addresses.
  module_ = dwfl_report_elf(dwfl_, path_.c_str(), path_.c_str(), dwfl_fd, 0, true);
  if (module_ == nullptr) {
    ::close(dwfl_fd);
    load_error_ = std::string("libdwfl: ") + dwfl_errmsg(-1);
    dwfl_report_end(dwfl_, nullptr, nullptr);
    return;
  }
  dwfl_report_end(dwfl_, nullptr, nullptr);

  const int count = dwfl_module_getsymtab(module_);
  const char* debug_file = nullptr;
  dwfl_module_info(module_, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, &debug_file);
  has_debug_file_ = debug_file != nullptr;
  for (int i = 1; i < count; ++i) {
    GElf_Sym sym;
    GElf_Addr addr = 0;
    GElf_Word shndx = 0;
    const char* name = dwfl_module_getsym_info(module_, i, &sym, &addr, &shndx, nullptr, nullptr);
    if (name == nullptr || name[0] == '\0') continue;
    const int type = GELF_ST_TYPE(sym.st_info);
    if (type != STT_FUNC && type != STT_GNU_IFUNC) continue;
    if (shndx == SHN_UNDEF || addr == 0) continue;
    functions_.push_back(
        {addr, addr + sym.st_size, name, alias_rank(name, GELF_ST_BIND(sym.st_info))});
  }
  std::sort(functions_.begin(), functions_.end(),
            [](const FunctionSymbol& a, const FunctionSymbol& b) {
              return a.start != b.start ? a.start < b.start : a.rank < b.rank;
            });
  // One symbol per address: the best-ranked alias, with the largest size any alias gave.
  std::vector<FunctionSymbol> unique;
  unique.reserve(functions_.size());
  for (const FunctionSymbol& f : functions_) {
    if (!unique.empty() && unique.back().start == f.start) {
      unique.back().end = std::max(unique.back().end, f.end);
    } else {
      unique.push_back(f);
    }
  }
  // A function without a size (hand-written assembly) ends where the next one starts.
  for (std::size_t i = 0; i < unique.size(); ++i) {
    if (unique[i].end == unique[i].start && i + 1 < unique.size())
      unique[i].end = unique[i + 1].start;
  }
  functions_ = std::move(unique);
}

ElfSymbol ElfBinary::resolve(std::uint64_t vaddr) {
  ElfSymbol out;
  if (!loaded_) load_symbols();
  if (module_ == nullptr) {
    out.unresolved = "unreadable ELF (" + load_error_ + ")";
    return out;
  }
  auto it = std::upper_bound(functions_.begin(), functions_.end(), vaddr,
                             [](std::uint64_t a, const FunctionSymbol& f) { return a < f.start; });
  // The closest start at or below vaddr usually holds it; a few earlier ones may enclose it when
  // symbols nest (a local label symbol inside a bigger function).
  const FunctionSymbol* found = nullptr;
  for (int steps = 0; it != functions_.begin() && steps < 8; ++steps) {
    --it;
    if (vaddr < it->end) {
      found = &*it;
      break;
    }
  }
  if (found != nullptr) {
    out.name = demangle(found->name);
  } else {
    out.unresolved = (has_symtab_ || has_debug_file_) ? "no symbols" : "stripped";
  }
  if (source_lines_ && !outer_call_site(module_, vaddr, out.file, out.line)) {
    if (Dwfl_Line* line = dwfl_module_getsrc(module_, vaddr)) {
      int lineno = 0;
      const char* file = dwfl_lineinfo(line, nullptr, &lineno, nullptr, nullptr, nullptr);
      if (file != nullptr) {
        out.file = file;
        out.line = lineno;
      }
    }
  }
  return out;
}

const ElfSymbol& ElfBinary::lookup(std::uint64_t vaddr) {
  auto it = cache_.find(vaddr);
  if (it != cache_.end()) return it->second;
  return cache_.emplace(vaddr, resolve(vaddr)).first->second;
}

util::Result<std::vector<std::string>> defined_functions(const std::string& path,
                                                         const std::vector<std::string>& names) {
  if (!init_libelf()) return util::Error{"libelf is unusable", "", 0};
  util::ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return util::errno_error("cannot open " + path, "");
  Elf* elf = elf_begin(fd.get(), ELF_C_READ_MMAP, nullptr);
  if (elf == nullptr || elf_kind(elf) != ELF_K_ELF) {
    if (elf != nullptr) elf_end(elf);
    return util::Error{path + " is not an ELF file", "", ENOEXEC};
  }
  const std::set<std::string, std::less<>> wanted(names.begin(), names.end());
  std::set<std::string> found;
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn != nullptr; scn = elf_nextscn(elf, scn)) {
    GElf_Shdr shdr{};
    if (gelf_getshdr(scn, &shdr) == nullptr) continue;
    if (shdr.sh_type != SHT_SYMTAB && shdr.sh_type != SHT_DYNSYM) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (data == nullptr || shdr.sh_entsize == 0) continue;
    const std::size_t count = shdr.sh_size / shdr.sh_entsize;
    for (std::size_t i = 0; i < count; ++i) {
      GElf_Sym sym{};
      if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr) continue;
      const int type = GELF_ST_TYPE(sym.st_info);
      if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF) continue;
      const char* raw = elf_strptr(elf, shdr.sh_link, sym.st_name);
      if (raw == nullptr) continue;
      std::string_view name(raw);
      name = name.substr(0, name.find('@'));
      if (auto it = wanted.find(name); it != wanted.end()) found.insert(*it);
    }
  }
  elf_end(elf);
  return std::vector<std::string>(found.begin(), found.end());
}

}  // namespace chokepoint::symbolize
