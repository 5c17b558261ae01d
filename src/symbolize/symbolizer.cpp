// The Symbolizer: per-process mapping snapshots, one ElfBinary per distinct file, JIT perf maps
// and kallsyms, with the reason attached to every address that cannot be named.
#include "symbolize/symbolizer.h"

#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <elf.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "symbolize/elf_binary.h"
#include "symbolize/parsers.h"
#include "util/bounded_read.h"
#include "util/scoped_fd.h"

namespace chokepoint::symbolize {

namespace {

using profile::Frame;
using profile::FrameKind;
using Clock = std::chrono::steady_clock;

// Reasons, shared with docs/symbolize.md.
constexpr const char* kStripped = "stripped";
constexpr const char* kNotMapped = "not mapped";
constexpr const char* kJitWithoutMap = "JIT without a perf map";
constexpr const char* kNotInJitMap = "not in the JIT perf map";
constexpr const char* kExitedBeforeAttach = "process exited before it could be attached";

// A sample in memory no mapping covered may come from a mapping created after the snapshot; the
// snapshot is re-read then, but not more often than this, since reading maps takes the target's
// mmap lock.
constexpr auto kReattachInterval = std::chrono::seconds(1);

// A JIT's perf map holds one line per compiled function; a large JVM or Node process writes tens
// of MB. Beyond this the map is not read (docs/limits.md).
constexpr std::size_t kMaxPerfMapBytes = std::size_t{256} << 20;

// Reads a whole file; /proc files report size 0, so read until EOF.
util::Result<std::string> read_text_file(const std::string& path) {
  util::ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return util::errno_error("cannot open " + path);
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return util::errno_error("cannot read " + path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::string basename_of(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

Frame unresolved_frame(const std::string& module_label, std::uint64_t offset, std::string module,
                       std::string reason) {
  Frame f;
  f.kind = FrameKind::kUnresolved;
  f.name = fmt::format("[{}+0x{:x}]", module_label, offset);
  f.module = std::move(module);
  f.unresolved = std::move(reason);
  return f;
}

// The hint that goes with each reason in notes().
std::string advice_for(const std::string& reason) {
  if (reason == kStripped) {
    return "install its debug symbols (Debian: the -dbgsym package) or build it without stripping";
  }
  if (reason == "no symbols") {
    return "the address lies outside every function symbol (PLT stubs, padding, or an unwinding "
           "error)";
  }
  if (reason == kJitWithoutMap) {
    return "let the runtime write /tmp/perf-PID.map (node --perf-basic-prof, python -X perf, "
           "JVM perf-map-agent)";
  }
  if (reason == kNotInJitMap) return "the runtime's perf map does not list this code (yet)";
  if (reason == kNotMapped) {
    return "no mapping of the process holds it (a broken frame-pointer chain, or code unmapped "
           "before the snapshot)";
  }
  if (reason == kExitedBeforeAttach) return "start profiling while the process still runs";
  if (reason.find("map_files") != std::string::npos) return "run as root";
  return {};
}

struct Region {
  Mapping mapping;
  std::shared_ptr<ElfBinary> binary;  // for file-backed executable mappings and the vDSO
  std::string reason;                 // why `binary` is missing, when it should be there
};

struct PerfMapState {
  bool candidates_known = false;
  std::vector<std::string> candidates;  // where the map may be, in order
  bool found = false;
  std::string path;
  off_t size_bytes = -1;
  std::int64_t mtime_ns = -1;
  PerfMap map;
};

struct Process {
  bool attached = false;       // a mapping snapshot exists
  std::string failure_reason;  // why not, when !attached
  Clock::time_point attached_at{};
  std::vector<Region> regions;                      // sorted by start
  std::unordered_map<std::uint64_t, Frame> frames;  // address -> resolved frame
  PerfMapState perf_map;
};

using InodeKey = std::tuple<std::uint32_t, std::uint32_t, std::uint64_t>;

class SymbolizerImpl final : public Symbolizer {
 public:
  explicit SymbolizerImpl(SymbolizerOptions options) : options_(std::move(options)) {}

  util::Result<void> attach(int pid) override;
  Frame user(int pid, std::uint64_t address) override;
  Frame kernel(std::uint64_t address) override;
  std::vector<std::string> notes() const override;
  SymbolizerStats stats() const override { return stats_; }

 private:
  std::string pid_dir(int pid) const { return options_.proc_root + "/" + std::to_string(pid); }
  std::shared_ptr<ElfBinary> open_binary(int pid, const Mapping& m, std::string& reason);
  std::shared_ptr<ElfBinary> vdso(std::string& reason);
  Frame resolve(int pid, Process& p, std::uint64_t address);
  Frame resolve_in_region(int pid, Process& p, const Region& r, std::uint64_t address);
  std::optional<Frame> jit_frame(int pid, Process& p, std::uint64_t address, bool& map_found);
  void load_kallsyms();
  void count_unresolved(const Frame& f) { ++unresolved_by_reason_[{f.unresolved, f.module}]; }

  SymbolizerOptions options_;
  SymbolizerStats stats_;
  std::unordered_map<int, Process> processes_;
  std::map<InodeKey, std::shared_ptr<ElfBinary>> by_inode_;
  std::unordered_map<std::string, std::shared_ptr<ElfBinary>> by_build_id_;
  bool vdso_tried_ = false;
  std::shared_ptr<ElfBinary> vdso_;
  std::string vdso_error_;

  bool kallsyms_loaded_ = false;
  KernelSymbols kallsyms_;
  std::string kallsyms_problem_;  // why kernel frames cannot be named; empty when they can
  std::unordered_map<std::uint64_t, Frame> kernel_frames_;

  // Distinct unresolved addresses per (reason, module), for notes().
  std::map<std::pair<std::string, std::string>, std::uint64_t> unresolved_by_reason_;
  std::vector<std::string> attach_failures_;
};

std::shared_ptr<ElfBinary> SymbolizerImpl::open_binary(int pid, const Mapping& m,
                                                       std::string& reason) {
  const InodeKey key{m.dev_major, m.dev_minor, m.inode};
  if (auto it = by_inode_.find(key); it != by_inode_.end()) return it->second;

  // The path in maps is relative to the process's root: /proc/PID/root reaches into containers
  // and chroots. A deleted or replaced file is only reachable through /proc/PID/map_files, which
  // needs CAP_SYS_ADMIN (proc(5)).
  //
  // Candidates, each checked against the inode the kernel reported, so a file replaced at the
  // same path is never read in place of the mapped one:
  //   1. /proc/PID/root/<path>: the path as the process sees it (containers print paths relative
  //      to their own root);
  //   2. <path> as we see it: a chroot in our mount namespace prints our view of the path;
  //   3. /proc/PID/map_files/<start>-<end>: the mapped file itself, deleted or not (root only);
  //   4. /proc/PID/root/<path> without the inode check: overlayfs may report the lower inode.
  int open_errno = 0;
  auto open_path = [&open_errno](const std::string& path, std::uint64_t want_inode) {
    util::ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!fd.valid()) {
      if (open_errno == 0 || errno != ENOENT) open_errno = errno;
    } else if (want_inode != 0 && (::fstat(fd.get(), &st) != 0 || st.st_ino != want_inode)) {
      fd.reset();
    }
    return fd;
  };
  const std::string in_root = pid_dir(pid) + "/root" + m.path;
  util::ScopedFd fd;
  if (!m.deleted) {
    fd = open_path(in_root, m.inode);
    if (!fd.valid()) fd = open_path(m.path, m.inode);
  }
  int map_files_errno = 0;
  if (!fd.valid()) {
    const std::string mf = fmt::format("{}/map_files/{:x}-{:x}", pid_dir(pid), m.start, m.end);
    fd.reset(::open(mf.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) map_files_errno = errno;
  }
  if (!fd.valid() && !m.deleted) fd = open_path(in_root, 0);
  if (!fd.valid()) {
    if (open_errno == EMFILE || map_files_errno == EMFILE) {
      reason = "too many open files (raise ulimit -n)";
    } else if (m.deleted) {
      reason = map_files_errno == EPERM || map_files_errno == EACCES
                   ? "binary deleted; reading it through /proc/PID/map_files needs root"
                   : std::string("binary deleted and gone from /proc/PID/map_files: ") +
                         std::strerror(map_files_errno);
    } else {
      reason = std::string("binary unreadable: ") + std::strerror(open_errno ? open_errno : ENOENT);
    }
    return nullptr;
  }
  auto opened = ElfBinary::open(std::move(fd), m.path, options_.source_lines);
  if (!opened) {
    reason = "not an ELF file";
    return nullptr;
  }
  std::shared_ptr<ElfBinary> binary = std::move(opened).value();
  // The same build seen through another inode (a copy in a container image) shares the tables.
  if (!binary->build_id().empty()) {
    auto [it, inserted] = by_build_id_.emplace(binary->build_id(), binary);
    if (!inserted) binary = it->second;
  }
  by_inode_.emplace(key, binary);
  return binary;
}

// The vDSO is the same image in every process of this kernel's ABI; ours is copied into a memfd so
// libdwfl can read it like a file.
std::shared_ptr<ElfBinary> SymbolizerImpl::vdso(std::string& reason) {
  if (!vdso_tried_) {
    vdso_tried_ = true;
    const auto base = ::getauxval(AT_SYSINFO_EHDR);
    if (base == 0) {
      vdso_error_ = "no vDSO in chokepoint's own process";
    } else {
      // getauxval gives the image's address as an integer.
      const auto* image = reinterpret_cast<const unsigned char*>(base);  // NOLINT
      const auto* ehdr = reinterpret_cast<const Elf64_Ehdr*>(image);
      std::uint64_t size = ehdr->e_shoff + std::uint64_t{ehdr->e_shnum} * ehdr->e_shentsize;
      const auto* phdr = reinterpret_cast<const Elf64_Phdr*>(image + ehdr->e_phoff);
      for (int i = 0; i < ehdr->e_phnum; ++i) {
        size = std::max<std::uint64_t>(size, phdr[i].p_offset + phdr[i].p_filesz);
      }
      util::ScopedFd fd(::memfd_create("chokepoint-vdso", MFD_CLOEXEC));
      if (!fd.valid() || ::write(fd.get(), image, size) != static_cast<ssize_t>(size)) {
        vdso_error_ = std::string("cannot copy the vDSO: ") + std::strerror(errno);
      } else if (auto b = ElfBinary::open(std::move(fd), "[vdso]", options_.source_lines)) {
        vdso_ = std::move(b).value();
      } else {
        vdso_error_ = b.error().message;
      }
    }
  }
  if (!vdso_) reason = vdso_error_;
  return vdso_;
}

util::Result<void> SymbolizerImpl::attach(int pid) {
  Process& p = processes_[pid];
  p.attached_at = Clock::now();
  const std::string maps_path = pid_dir(pid) + "/maps";
  auto text = read_text_file(maps_path);
  if (!text) {
    const int err = text.error().errno_value;
    const bool gone = err == ENOENT || err == ESRCH;
    // An earlier snapshot stays: it is exactly what lets samples of an exited process resolve.
    if (!p.attached) {
      p.failure_reason =
          gone ? kExitedBeforeAttach : "mappings unreadable: " + std::string(std::strerror(err));
      attach_failures_.push_back(fmt::format("pid {}: {}", pid, p.failure_reason));
    }
    util::Error e = text.error();
    e.hint = gone ? "the process exited; attach while it runs"
                  : "run as root, or grant CAP_SYS_PTRACE, to read another user's mappings";
    return e;
  }
  MapsFile maps = parse_maps(*text);
  std::vector<Region> regions;
  regions.reserve(maps.mappings.size());
  for (Mapping& m : maps.mappings) {
    Region r;
    if (m.executable && m.file_backed()) {
      r.binary = open_binary(pid, m, r.reason);
    } else if (m.path == "[vdso]") {
      r.binary = vdso(r.reason);
    }
    r.mapping = std::move(m);
    regions.push_back(std::move(r));
  }
  std::sort(regions.begin(), regions.end(),
            [](const Region& a, const Region& b) { return a.mapping.start < b.mapping.start; });
  p.regions = std::move(regions);
  p.attached = true;
  p.failure_reason.clear();
  // Frames computed from the previous snapshot may name code that moved; recompute them (the
  // per-binary caches keep that cheap).
  p.frames.clear();
  return {};
}

std::optional<Frame> SymbolizerImpl::jit_frame(int pid, Process& p, std::uint64_t address,
                                               bool& map_found) {
  PerfMapState& s = p.perf_map;
  auto frame_for = [&s](const PerfMapSymbol& sym) {
    Frame f;
    f.kind = FrameKind::kJit;
    f.name = sym.name;
    f.module = s.path;
    return f;
  };
  if (s.found) {
    if (const PerfMapSymbol* sym = s.map.find(address)) {
      map_found = true;
      return frame_for(*sym);
    }
  }
  if (!s.candidates_known) {
    s.candidates_known = true;
    s.candidates.push_back(fmt::format("{}/perf-{}.map", options_.perf_map_dir, pid));
    // In a container the runtime writes the map under its own /tmp, named by its namespace pid
    // (the last NSpid field of /proc/PID/status).
    if (auto status = read_text_file(pid_dir(pid) + "/status")) {
      const std::size_t at = status->find("\nNSpid:");
      if (at != std::string::npos) {
        const std::size_t eol = status->find('\n', at + 1);
        const std::string line =
            status->substr(at + 7, eol == std::string::npos ? eol : eol - at - 7);
        const std::size_t last = line.find_last_of(" \t");
        const std::string ns_pid = last == std::string::npos ? line : line.substr(last + 1);
        if (!ns_pid.empty() && ns_pid != std::to_string(pid)) {
          s.candidates.push_back(
              fmt::format("{}/root{}/perf-{}.map", pid_dir(pid), options_.perf_map_dir, ns_pid));
        }
      }
    }
  }
  // A miss: the runtime appends to its map as it compiles, so re-read a file that changed.
  for (const std::string& path : s.candidates) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) continue;
    const std::int64_t mtime_ns = std::int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
    if (!s.found || s.path != path || s.size_bytes != st.st_size || s.mtime_ns != mtime_ns) {
      // Written by the runtime (or anyone who can write /tmp): a regular file of bounded size,
      // so a symlink to /dev/zero or a FIFO cannot stall or flood the symbolizer.
      if (auto text = util::read_file_bounded(path, kMaxPerfMapBytes, util::FileKind::kRegularOnly,
                                              "a JIT perf map (/tmp/perf-PID.map)")) {
        s.map = parse_perf_map(*text);
        s.found = true;
        s.path = path;
        s.size_bytes = st.st_size;
        s.mtime_ns = mtime_ns;
      }
    }
    break;
  }
  map_found = s.found;
  if (!s.found) return std::nullopt;
  const PerfMapSymbol* sym = s.map.find(address);
  if (sym == nullptr) return std::nullopt;
  return frame_for(*sym);
}

Frame SymbolizerImpl::resolve_in_region(int pid, Process& p, const Region& r,
                                        std::uint64_t address) {
  const Mapping& m = r.mapping;
  const std::uint64_t file_offset = address - m.start + m.offset;
  if (r.binary) {
    const std::string module = m.path.empty() ? r.binary->path() : m.path;
    const auto vaddr = r.binary->file_offset_to_vaddr(file_offset);
    if (!vaddr) {
      return unresolved_frame(basename_of(module), file_offset, module,
                              "outside the binary's loadable segments");
    }
    const ElfSymbol& sym = r.binary->lookup(*vaddr);
    if (sym.name.empty())
      return unresolved_frame(basename_of(module), *vaddr, module, sym.unresolved);
    Frame f;
    f.kind = FrameKind::kUser;
    f.name = sym.name;
    f.module = module;
    f.file = sym.file;
    f.line = sym.line;
    return f;
  }
  if (m.file_backed()) return unresolved_frame(basename_of(m.path), file_offset, m.path, r.reason);
  if (m.path == "[vdso]") return unresolved_frame("vdso", address - m.start, m.path, r.reason);

  // Anonymous memory (or a memfd): where JIT compilers put their code.
  bool map_found = false;
  if (auto jit = jit_frame(pid, p, address, map_found)) return *jit;
  const std::string label = m.path.empty() ? "anon" : basename_of(m.path);
  const bool pseudo = !m.path.empty() && m.path[0] == '[' && m.path.rfind("[anon:", 0) != 0;
  std::string reason;
  if (pseudo && !m.executable) {
    reason = "not code (" + m.path + ")";
  } else if (!m.executable) {
    reason = map_found ? kNotInJitMap : "not executable memory";
  } else {
    reason = map_found ? kNotInJitMap : kJitWithoutMap;
  }
  return unresolved_frame(label, address - m.start, m.path.empty() ? "[anon]" : m.path, reason);
}

Frame SymbolizerImpl::resolve(int pid, Process& p, std::uint64_t address) {
  if (!p.attached) return unresolved_frame("unknown", address, "", p.failure_reason);
  auto find_region = [&p](std::uint64_t a) -> const Region* {
    auto it =
        std::upper_bound(p.regions.begin(), p.regions.end(), a,
                         [](std::uint64_t x, const Region& r) { return x < r.mapping.start; });
    if (it == p.regions.begin()) return nullptr;
    --it;
    return it->mapping.contains(a) ? &*it : nullptr;
  };
  const Region* r = find_region(address);
  if (r == nullptr && Clock::now() - p.attached_at >= kReattachInterval) {
    // attach() clears p.frames; nothing refers into it here.
    if (attach(pid)) r = find_region(address);
  }
  if (r != nullptr) return resolve_in_region(pid, p, *r, address);
  // JIT code freed or remapped since the snapshot may still be in the perf map.
  bool map_found = false;
  if (auto jit = jit_frame(pid, p, address, map_found)) return *jit;
  return unresolved_frame("unknown", address, "", kNotMapped);
}

Frame SymbolizerImpl::user(int pid, std::uint64_t address) {
  ++stats_.user_lookups;
  auto pit = processes_.find(pid);
  if (pit == processes_.end()) {
    (void)attach(pid);  // a failure is recorded in the Process and explained in every frame
    pit = processes_.find(pid);
  }
  Process& p = pit->second;
  auto hit = p.frames.find(address);
  if (hit == p.frames.end()) {
    Frame f = resolve(pid, p, address);
    if (f.kind == FrameKind::kUnresolved) count_unresolved(f);
    hit = p.frames.emplace(address, std::move(f)).first;
  }
  if (hit->second.kind == FrameKind::kUnresolved) ++stats_.unresolved;
  return hit->second;
}

void SymbolizerImpl::load_kallsyms() {
  kallsyms_loaded_ = true;
  const std::string path = options_.proc_root + "/kallsyms";
  auto text = read_text_file(path);
  if (!text) {
    kallsyms_problem_ = text.error().message;
    return;
  }
  kallsyms_ = parse_kallsyms(*text);
  if (kallsyms_.addresses_hidden) {
    std::string level = "set";
    if (auto k = read_text_file(options_.proc_root + "/sys/kernel/kptr_restrict")) {
      level = k->substr(0, k->find('\n'));
    }
    kallsyms_problem_ = fmt::format(
        "kernel addresses hidden: {} shows zeros (kernel.kptr_restrict={}); run as root or set "
        "sysctl kernel.kptr_restrict=0",
        path, level);
  } else if (kallsyms_.symbols.empty()) {
    kallsyms_problem_ = path + " lists no kernel functions";
  }
}

Frame SymbolizerImpl::kernel(std::uint64_t address) {
  ++stats_.kernel_lookups;
  auto hit = kernel_frames_.find(address);
  if (hit == kernel_frames_.end()) {
    if (!kallsyms_loaded_) load_kallsyms();
    Frame f;
    if (const KernelSymbol* sym = kallsyms_.find(address)) {
      f.kind = FrameKind::kKernel;
      f.name = sym->name;
      f.module = sym->module.empty() ? "[kernel]" : "[" + sym->module + "]";
    } else {
      const std::string reason = kallsyms_.addresses_hidden
                                     ? "kernel addresses hidden (kptr_restrict)"
                                 : kallsyms_problem_.empty() ? "not in /proc/kallsyms"
                                                             : kallsyms_problem_;
      f = unresolved_frame("kernel", address, "[kernel]", reason);
      count_unresolved(f);
    }
    hit = kernel_frames_.emplace(address, std::move(f)).first;
  }
  if (hit->second.kind == FrameKind::kUnresolved) ++stats_.unresolved;
  return hit->second;
}

std::vector<std::string> SymbolizerImpl::notes() const {
  std::vector<std::string> out;
  if (!kallsyms_problem_.empty())
    out.push_back("Kernel frames are unresolved: " + kallsyms_problem_ + ".");
  for (const std::string& failure : attach_failures_) {
    out.push_back("Could not read the mappings of " + failure + ".");
  }
  // The biggest groups first; a long tail is summed up in one sentence.
  std::vector<std::pair<std::uint64_t, std::pair<std::string, std::string>>> groups;
  for (const auto& [key, count] : unresolved_by_reason_) groups.push_back({count, key});
  std::stable_sort(groups.begin(), groups.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  constexpr std::size_t kMaxGroups = 12;
  std::uint64_t rest = 0;
  for (std::size_t i = 0; i < groups.size(); ++i) {
    const auto& [count, key] = groups[i];
    const auto& [reason, module] = key;
    if (reason == kExitedBeforeAttach) continue;  // already said per pid above
    if (out.size() >= kMaxGroups) {
      rest += count;
      continue;
    }
    const std::string where = module.empty() ? "" : " in " + module;
    // A reason may be empty (a lookup that failed without saying why): no ": ." then.
    std::string sentence =
        fmt::format("{} address{}{} could not be named{}{}", count, count == 1 ? "" : "es", where,
                    reason.empty() ? "" : ": ", reason);
    const std::string advice = advice_for(reason);
    if (!advice.empty()) sentence += "; " + advice;
    out.push_back(sentence + ".");
  }
  if (rest > 0) out.push_back(fmt::format("{} more addresses could not be named.", rest));
  return out;
}

}  // namespace

util::Result<std::unique_ptr<Symbolizer>> Symbolizer::create(SymbolizerOptions options) {
  if (options.proc_root.empty()) {
    return util::Error{"empty proc root", "pass the directory procfs is mounted on, e.g. /proc", 0};
  }
  struct stat st {};
  const int err = ::stat(options.proc_root.c_str(), &st) != 0 ? errno
                  : S_ISDIR(st.st_mode)                       ? 0
                                                              : ENOTDIR;
  if (err != 0) {
    return util::errno_error("cannot use " + options.proc_root + " as the proc root", err,
                             "mount procfs (mount -t proc proc /proc)");
  }
  return std::unique_ptr<Symbolizer>(new SymbolizerImpl(std::move(options)));
}

}  // namespace chokepoint::symbolize
