#include "collect/procfs/text.h"

#include <unistd.h>

#include <charconv>
#include <limits>

namespace chokepoint::collect::procfs {

namespace {
constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint64_t kNsPerSec = 1'000'000'000;

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
}  // namespace

Units Units::host() {
  Units units;
  long ticks = sysconf(_SC_CLK_TCK);
  long page = sysconf(_SC_PAGESIZE);
  if (ticks > 0) units.ticks_per_sec = ticks;
  if (page > 0) units.page_size_bytes = static_cast<std::uint64_t>(page);
  return units;
}

std::optional<std::uint64_t> parse_u64(std::string_view text) {
  // from_chars accepts no '+' and no spaces for unsigned, which is the strictness we want; it
  // rejects a leading '-' for unsigned types too.
  if (text.empty()) return std::nullopt;
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 10);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<std::int64_t> parse_i64(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 10);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<std::uint64_t> parse_hex_u64(std::string_view text) {
  if (text.size() >= 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    text.remove_prefix(2);
  }
  if (text.empty()) return std::nullopt;
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<double> parse_decimal(std::string_view text) {
  if (text.empty()) return std::nullopt;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || c == '.' || c == '-')) return std::nullopt;
  }
  double value = 0;
  auto [ptr, ec] =
      std::from_chars(text.data(), text.data() + text.size(), value, std::chars_format::fixed);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

std::vector<std::string_view> split_ws(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) ++i;
    std::size_t start = i;
    while (i < text.size() && !is_space(text[i])) ++i;
    if (i > start) out.push_back(text.substr(start, i - start));
  }
  return out;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

bool strip_deleted_suffix(std::string_view& path) {
  constexpr std::string_view kDeleted = " (deleted)";
  if (path.size() <= kDeleted.size() || !path.ends_with(kDeleted)) return false;
  path.remove_suffix(kDeleted.size());
  return true;
}

std::uint64_t saturating_mul(std::uint64_t a, std::uint64_t b) {
  if (a != 0 && b > kU64Max / a) return kU64Max;
  return a * b;
}

std::uint64_t ticks_to_ns(std::uint64_t ticks, std::int64_t ticks_per_sec) {
  if (ticks_per_sec <= 0) return 0;
  // Whole seconds and the remainder separately, so neither step overflows before saturating and
  // a USER_HZ that does not divide 1e9 still converts exactly.
  const auto tps = static_cast<std::uint64_t>(ticks_per_sec);
  const std::uint64_t whole_ns = saturating_mul(ticks / tps, kNsPerSec);
  const std::uint64_t rest_ns = (ticks % tps) * kNsPerSec / tps;  // < 1e9 * tps: fits for sane tps
  if (whole_ns > kU64Max - rest_ns) return kU64Max;
  return whole_ns + rest_ns;
}

std::uint64_t pages_to_bytes(std::uint64_t pages, std::uint64_t page_size_bytes) {
  return saturating_mul(pages, page_size_bytes);
}

std::uint64_t kib_to_bytes(std::uint64_t kib) {
  return saturating_mul(kib, 1024);
}

}  // namespace chokepoint::collect::procfs
