#include "symbolize/parsers.h"

#include <algorithm>
#include <charconv>
#include <iterator>
#include <map>
#include <optional>

#include "collect/procfs/text.h"

namespace chokepoint::symbolize {

namespace {

using collect::procfs::parse_hex_u64;
using collect::procfs::parse_u64;
using collect::procfs::split_lines;

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

// Cuts the next run of non-blank characters off the front of `rest`, after any leading blanks.
std::string_view next_token(std::string_view& rest) {
  std::size_t i = 0;
  while (i < rest.size() && is_blank(rest[i])) ++i;
  std::size_t j = i;
  while (j < rest.size() && !is_blank(rest[j])) ++j;
  std::string_view token = rest.substr(i, j - i);
  rest.remove_prefix(j);
  return token;
}

std::string_view skip_blanks(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && is_blank(text[i])) ++i;
  return text.substr(i);
}

std::string_view trim_blanks_and_cr(std::string_view text) {
  text = skip_blanks(text);
  while (!text.empty() && (is_blank(text.back()) || text.back() == '\r')) text.remove_suffix(1);
  return text;
}

// A hex number with no prefix and no sign, as /proc/PID/maps prints them.
std::optional<std::uint64_t> plain_hex(std::string_view text) {
  if (text.empty() || text.size() > 16) return std::nullopt;
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<Mapping> parse_maps_line(std::string_view line) {
  Mapping m;
  std::string_view rest = line;
  const std::string_view range = next_token(rest);
  const std::size_t dash = range.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  const auto start = plain_hex(range.substr(0, dash));
  const auto end = plain_hex(range.substr(dash + 1));
  if (!start || !end || *start >= *end) return std::nullopt;
  m.start = *start;
  m.end = *end;

  const std::string_view perms = next_token(rest);
  if (perms.size() != 4) return std::nullopt;
  if ((perms[0] != 'r' && perms[0] != '-') || (perms[1] != 'w' && perms[1] != '-') ||
      (perms[2] != 'x' && perms[2] != '-') || (perms[3] != 'p' && perms[3] != 's')) {
    return std::nullopt;
  }
  m.readable = perms[0] == 'r';
  m.writable = perms[1] == 'w';
  m.executable = perms[2] == 'x';
  m.shared = perms[3] == 's';

  const auto offset = plain_hex(next_token(rest));
  if (!offset) return std::nullopt;
  m.offset = *offset;

  const std::string_view dev = next_token(rest);
  const std::size_t colon = dev.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const auto major = plain_hex(dev.substr(0, colon));
  const auto minor = plain_hex(dev.substr(colon + 1));
  if (!major || !minor || *major > 0xffffffffu || *minor > 0xffffffffu) return std::nullopt;
  m.dev_major = static_cast<std::uint32_t>(*major);
  m.dev_minor = static_cast<std::uint32_t>(*minor);

  const auto inode = parse_u64(next_token(rest));
  if (!inode) return std::nullopt;
  m.inode = *inode;

  // The path is the rest of the line after the padding; it may hold spaces (the kernel escapes
  // only '\n' in it, as "\012").
  std::string_view path = skip_blanks(rest);
  while (!path.empty() && path.back() == '\r') path.remove_suffix(1);
  m.deleted = collect::procfs::strip_deleted_suffix(path);
  m.path = std::string(path);
  return m;
}

}  // namespace

bool Mapping::file_backed() const {
  if (path.empty() || path[0] != '/') return false;
  // memfd and SysV shared memory print as paths but are memory, not files one can reopen.
  return path.rfind("/memfd:", 0) != 0 && path.rfind("/SYSV", 0) != 0;
}

MapsFile parse_maps(std::string_view text) {
  MapsFile out;
  for (std::string_view line : split_lines(text)) {
    if (trim_blanks_and_cr(line).empty()) continue;
    if (auto m = parse_maps_line(line)) {
      out.mappings.push_back(std::move(*m));
    } else {
      ++out.skipped_lines;
    }
  }
  return out;
}

const PerfMapSymbol* PerfMap::find(std::uint64_t address) const {
  auto it = std::upper_bound(symbols.begin(), symbols.end(), address,
                             [](std::uint64_t a, const PerfMapSymbol& s) { return a < s.start; });
  if (it == symbols.begin()) return nullptr;
  --it;
  return address < it->end ? &*it : nullptr;
}

PerfMap parse_perf_map(std::string_view text) {
  PerfMap out;
  struct Range {
    std::uint64_t end;
    std::string name;
  };
  std::map<std::uint64_t, Range> ranges;  // disjoint, keyed by start
  for (std::string_view line : split_lines(text)) {
    line = trim_blanks_and_cr(line);
    if (line.empty()) continue;
    std::string_view rest = line;
    const auto start = parse_hex_u64(next_token(rest));
    const auto size = parse_hex_u64(next_token(rest));
    const std::string_view name = trim_blanks_and_cr(rest);
    if (!start || !size || *size == 0 || name.empty() || *start > UINT64_MAX - *size) {
      ++out.skipped_lines;
      continue;
    }
    const std::uint64_t end = *start + *size;
    // Paint [start, end) over what is there: trim or split every range it overlaps.
    auto it = ranges.upper_bound(*start);
    if (it != ranges.begin() && std::prev(it)->second.end > *start) --it;
    while (it != ranges.end() && it->first < end) {
      const std::uint64_t old_start = it->first;
      Range old = std::move(it->second);
      it = ranges.erase(it);
      if (old_start < *start) ranges.emplace(old_start, Range{*start, old.name});
      if (old.end > end) ranges.emplace(end, Range{old.end, std::move(old.name)});
    }
    ranges.emplace(*start, Range{end, std::string(name)});
  }
  out.symbols.reserve(ranges.size());
  for (auto& [start, range] : ranges) {
    out.symbols.push_back(PerfMapSymbol{start, range.end, std::move(range.name)});
  }
  return out;
}

const KernelSymbol* KernelSymbols::find(std::uint64_t address) const {
  auto it = std::upper_bound(symbols.begin(), symbols.end(), address,
                             [](std::uint64_t a, const KernelSymbol& s) { return a < s.address; });
  if (it == symbols.begin()) return nullptr;
  const bool last = it == symbols.end();
  --it;
  if (last && address - it->address > kMaxLastSymbolBytes) return nullptr;
  return &*it;
}

KernelSymbols parse_kallsyms(std::string_view text) {
  KernelSymbols out;
  bool any_address = false;
  bool any_nonzero = false;
  for (std::string_view line : split_lines(text)) {
    if (trim_blanks_and_cr(line).empty()) continue;
    std::string_view rest = line;
    const auto address = plain_hex(next_token(rest));
    const std::string_view type = next_token(rest);
    const std::string_view name = next_token(rest);
    const std::string_view module = trim_blanks_and_cr(rest);
    if (!address || type.size() != 1 || name.empty() ||
        (!module.empty() && (module.size() < 2 || module.front() != '[' || module.back() != ']'))) {
      ++out.skipped_lines;
      continue;
    }
    any_address = true;
    if (*address != 0) any_nonzero = true;
    // Text symbols only (nm(1) types t/T, and w/W for weak functions).
    const char t = type[0];
    if (t != 't' && t != 'T' && t != 'w' && t != 'W') continue;
    KernelSymbol symbol{*address, std::string(name), {}};
    if (!module.empty()) symbol.module = std::string(module.substr(1, module.size() - 2));
    out.symbols.push_back(std::move(symbol));
  }
  if (any_address && !any_nonzero) {
    out.addresses_hidden = true;
    out.symbols.clear();
    return out;
  }
  // Aliases share an address; the first one in the file stays, like perf does with its sort.
  std::stable_sort(
      out.symbols.begin(), out.symbols.end(),
      [](const KernelSymbol& a, const KernelSymbol& b) { return a.address < b.address; });
  out.symbols.erase(std::unique(out.symbols.begin(), out.symbols.end(),
                                [](const KernelSymbol& a, const KernelSymbol& b) {
                                  return a.address == b.address;
                                }),
                    out.symbols.end());
  // Zero-address entries (a partly hidden file) would swallow every low address; drop them.
  if (!out.symbols.empty() && out.symbols.front().address == 0) {
    out.symbols.erase(out.symbols.begin());
  }
  return out;
}

}  // namespace chokepoint::symbolize
