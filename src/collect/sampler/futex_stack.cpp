#include "collect/sampler/futex_stack.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "model/wait.h"
#include "symbolize/parsers.h"
#include "util/scoped_fd.h"

namespace chokepoint::collect::sampler {

std::optional<std::string> find_futex_waiter(
    std::span<const std::uint64_t> stack_words,
    const std::function<std::optional<std::string>(std::uint64_t)>& libc_function_at,
    int max_lookups) {
  int lookups = 0;
  for (std::uint64_t word : stack_words) {
    if (word == 0) continue;
    if (lookups >= max_lookups) break;
    auto name = libc_function_at(word - 1);
    if (!name) continue;  // not libc code: data, the service's own frames
    ++lookups;
    if (auto known = model::futex_waiter_function(*name)) return known;
  }
  return std::nullopt;
}

std::vector<CodeRange> libc_code_ranges(const symbolize::MapsFile& maps) {
  std::vector<CodeRange> out;
  for (const auto& m : maps.mappings) {
    if (!m.executable || !m.file_backed()) continue;
    const auto slash = m.path.rfind('/');
    const std::string_view base =
        std::string_view(m.path).substr(slash == std::string::npos ? 0 : slash + 1);
    if (base.starts_with("libc.so") || base.starts_with("libc-") ||
        base.starts_with("libpthread")) {
      out.push_back({m.start, m.end, m.offset, m.path});
    }
  }
  return out;
}

std::vector<WaitFunction> load_wait_functions(int fd, const CodeRange& mapping) {
  std::vector<WaitFunction> out;
  if (elf_version(EV_CURRENT) == EV_NONE) return out;
  Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  if (elf == nullptr) return out;
  std::vector<GElf_Phdr> loads;
  std::size_t phnum = 0;
  if (elf_getphdrnum(elf, &phnum) == 0) {
    for (std::size_t i = 0; i < phnum; ++i) {
      GElf_Phdr ph;
      if (gelf_getphdr(elf, static_cast<int>(i), &ph) != nullptr && ph.p_type == PT_LOAD) {
        loads.push_back(ph);
      }
    }
  }
  const std::uint64_t size = mapping.end - mapping.start;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr sh;
    if (gelf_getshdr(scn, &sh) == nullptr) continue;
    if ((sh.sh_type != SHT_DYNSYM && sh.sh_type != SHT_SYMTAB) || sh.sh_entsize == 0) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (data == nullptr) continue;
    const std::size_t count = sh.sh_size / sh.sh_entsize;
    for (std::size_t i = 0; i < count; ++i) {
      GElf_Sym sym;
      if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr) continue;
      if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_size == 0 || sym.st_value == 0) continue;
      const char* name = elf_strptr(elf, sh.sh_link, sym.st_name);
      if (name == nullptr) continue;
      auto known = model::futex_waiter_function(name);
      if (!known) continue;
      // ELF virtual address -> file offset (through its PT_LOAD) -> run-time address.
      for (const auto& ph : loads) {
        if (sym.st_value < ph.p_vaddr || sym.st_value >= ph.p_vaddr + ph.p_filesz) continue;
        const std::uint64_t off = sym.st_value - ph.p_vaddr + ph.p_offset;
        if (off >= mapping.offset && off - mapping.offset < size) {
          const std::uint64_t start = mapping.start + (off - mapping.offset);
          // A symbol's size is the file's word: never let it reach past the mapping (or wrap),
          // where it would name code that is not this function.
          const std::uint64_t bytes = std::min<std::uint64_t>(sym.st_size, mapping.end - start);
          out.push_back({start, start + bytes, *known});
        }
        break;
      }
    }
  }
  elf_end(elf);
  return out;
}

std::vector<CodeRange> other_code_ranges(const symbolize::MapsFile& maps) {
  const auto libc = libc_code_ranges(maps);
  std::vector<CodeRange> out;
  for (const auto& m : maps.mappings) {
    if (!m.executable || !m.file_backed()) continue;
    bool is_libc = false;
    for (const auto& r : libc) is_libc = is_libc || (r.start == m.start);
    if (!is_libc) out.push_back({m.start, m.end, m.offset, m.path});
  }
  return out;
}

namespace {
bool in_ranges(const std::vector<CodeRange>& ranges, std::uint64_t a) {
  for (const auto& r : ranges) {
    if (a >= r.start && a < r.end) return true;
  }
  return false;
}
}  // namespace

FutexStackScanner::FutexStackScanner(std::string proc_root) : proc_root_(std::move(proc_root)) {}
FutexStackScanner::~FutexStackScanner() = default;

FutexStackScanner::Process& FutexStackScanner::process(int pid, std::int64_t /*now_ns*/) {
  Process& p = processes_[pid];
  if (p.loaded) return p;
  p.loaded = true;
  // A process with 10,000 threads has 20,000 lines of stacks and guard pages: parse only the
  // lines that can be libc's.
  std::ifstream in(proc_root_ + "/" + std::to_string(pid) + "/maps");
  std::string line, text;
  while (std::getline(in, line)) {
    // Executable file mappings only: a few dozen lines, whatever the thread count.
    if (line.find(" r-xp ") != std::string::npos && line.find('/') != std::string::npos) {
      text += line;
      text += '\n';
    }
  }
  const auto maps = symbolize::parse_maps(text);
  p.libc = libc_code_ranges(maps);
  p.other_code = other_code_ranges(maps);
  const std::string pid_dir = proc_root_ + "/" + std::to_string(pid);
  for (const auto& r : p.libc) {
    // The file the process maps: through its root (containers, chroots), or through map_files
    // when that path is gone (a replaced libc; root only).
    util::ScopedFd fd(::open((pid_dir + "/root" + r.path).c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
      char range[64];
      std::snprintf(range, sizeof(range), "/map_files/%lx-%lx", static_cast<unsigned long>(r.start),
                    static_cast<unsigned long>(r.end));
      fd.reset(::open((pid_dir + range).c_str(), O_RDONLY | O_CLOEXEC));
    }
    if (!fd.valid()) {
      problem_ =
          "cannot open " + r.path + " of pid " + std::to_string(pid) + ": " + std::strerror(errno);
      continue;
    }
    auto w = load_wait_functions(fd.get(), r);
    p.waits.insert(p.waits.end(), w.begin(), w.end());
  }
  std::sort(p.waits.begin(), p.waits.end(),
            [](const WaitFunction& a, const WaitFunction& b) { return a.start < b.start; });
  return p;
}

std::optional<std::string> FutexStackScanner::libc_function(int /*pid*/, const Process& p,
                                                            std::uint64_t address) {
  auto it = std::upper_bound(p.waits.begin(), p.waits.end(), address,
                             [](std::uint64_t a, const WaitFunction& w) { return a < w.start; });
  if (it == p.waits.begin()) return std::nullopt;
  --it;
  if (address >= it->end) return std::nullopt;
  return it->name;
}

std::optional<std::string> FutexStackScanner::called_wait(int pid, const Process& p,
                                                          std::span<const std::uint64_t> window) {
  auto wait_at = [&](std::uint64_t function) -> std::optional<std::string> {
    if (!in_ranges(p.libc, function)) return std::nullopt;
    auto name = libc_function(pid, p, function);
    return name ? model::futex_waiter_function(*name) : std::nullopt;
  };
  const bpf::ReadMemory read = bpf::process_memory(pid);
  int sites = 0;
  for (std::uint64_t ret : window) {
    if (sites >= kMaxCallSites) break;
    if (ret < 8 || !in_ranges(p.other_code, ret)) continue;
    ++sites;
    // The function the call enters: a direct call into libc, or a PLT stub's or -fno-plt's GOT
    // slot, read.
    if (auto function = bpf::called_function(ret, read)) {
      if (auto w = wait_at(*function)) return w;
    }
  }
  return std::nullopt;
}

std::string FutexStackScanner::caller(int pid, std::uint64_t futex_addr, std::uint64_t sp,
                                      std::uint64_t pc, std::int64_t now_ns) {
  if (read_denied_ || sp == 0) return "";
  const auto key = std::make_tuple(pid, futex_addr, pc);
  if (auto it = cache_.find(key); it != cache_.end() && now_ns - it->second.at_ns < kCacheTtlNs) {
    ++stats_.cache_hits;
    return it->second.caller;
  }
  Process& p = process(pid, now_ns);
  // A static binary or another libc: nothing to name, and no stack to read.
  if (p.libc.empty()) return "";
  ++stats_.scans;
  std::array<std::uint64_t, kWindowBytes / sizeof(std::uint64_t)> words{};
  iovec local{words.data(), kWindowBytes};
  iovec remote{reinterpret_cast<void*>(sp), kWindowBytes};
  // Near the top of the stack mapping the window is cut short: a partial read is fine.
  const ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
  if (n <= 0) {
    ++stats_.failed;
    if (n < 0 && (errno == EPERM || errno == EACCES)) {
      read_denied_ = true;
      problem_ = std::string("process_vm_readv: ") + std::strerror(errno);
    }
    return "";
  }
  const std::span<const std::uint64_t> window(words.data(),
                                              static_cast<std::size_t>(n) / sizeof(std::uint64_t));
  auto found = find_futex_waiter(
      window, [&](std::uint64_t a) { return libc_function(pid, p, a); }, kMaxLookups);
  if (!found) found = called_wait(pid, p, window);
  if (found) ++stats_.named;
  if (cache_.size() >= kMaxCacheEntries) cache_.clear();
  cache_[key] = {found.value_or(""), now_ns};
  return found.value_or("");
}

}  // namespace chokepoint::collect::sampler
