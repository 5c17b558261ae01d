#include "collect/sampler/futex_stack.h"

#include <sys/uio.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "model/wait.h"
#include "symbolize/parsers.h"
#include "symbolize/symbolizer.h"

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
      out.push_back({m.start, m.end});
    }
  }
  return out;
}

FutexStackScanner::FutexStackScanner(std::string proc_root) : proc_root_(std::move(proc_root)) {}
FutexStackScanner::~FutexStackScanner() = default;

FutexStackScanner::Process& FutexStackScanner::process(int pid, std::int64_t /*now_ns*/) {
  Process& p = processes_[pid];
  if (p.loaded) return p;
  p.loaded = true;
  std::ifstream in(proc_root_ + "/" + std::to_string(pid) + "/maps");
  std::stringstream text;
  text << in.rdbuf();
  p.libc = libc_code_ranges(symbolize::parse_maps(text.str()));
  return p;
}

std::optional<std::string> FutexStackScanner::libc_function(int pid, const Process& p,
                                                            std::uint64_t address) {
  bool in_libc = false;
  for (const auto& r : p.libc) in_libc = in_libc || (address >= r.start && address < r.end);
  if (!in_libc) return std::nullopt;
  if (!symbolizer_ && !symbolizer_failed_) {
    symbolize::SymbolizerOptions o;
    o.proc_root = proc_root_;
    o.source_lines = false;  // names only: no DWARF line tables
    auto s = symbolize::Symbolizer::create(o);
    if (s) {
      symbolizer_ = std::move(s).value();
    } else {
      symbolizer_failed_ = true;
      problem_ = "cannot open the symbolizer: " + s.error().message;
    }
  }
  if (!symbolizer_) return std::nullopt;
  auto frame = symbolizer_->user(pid, address);
  if (!frame.unresolved.empty()) return std::nullopt;  // an internal, unnamed libc function
  return frame.name;
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
  if (found) ++stats_.named;
  if (cache_.size() >= kMaxCacheEntries) cache_.clear();
  cache_[key] = {found.value_or(""), now_ns};
  return found.value_or("");
}

}  // namespace chokepoint::collect::sampler
