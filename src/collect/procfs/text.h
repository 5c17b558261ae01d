#pragma once
// Small text tools shared by the /proc parsers: strict number parsing, whitespace tokenizing, line
// splitting, and the unit conversions done once at this edge (clock ticks -> ns, pages -> bytes,
// kB -> bytes). All functions are pure, never throw and never read past the view they are given.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace chokepoint::collect::procfs {

// What the host's /proc counts in. Parsers take it as a parameter so tests can pin it; readers use
// Units::host() (sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE)) unless told otherwise.
struct Units {
  std::int64_t ticks_per_sec = 100;      // USER_HZ, the unit of stat's utime/stime/starttime
  std::uint64_t page_size_bytes = 4096;  // the unit of stat's rss and sockstat's mem

  static Units host();
};

// Strict parsers: the whole view must be the number (no sign for unsigned, no spaces, no trailing
// text). Overflow gives nullopt.
std::optional<std::uint64_t> parse_u64(std::string_view text);
std::optional<std::int64_t> parse_i64(std::string_view text);
// Hexadecimal with an optional "0x"/"0X" prefix, as in /proc/PID/syscall.
std::optional<std::uint64_t> parse_hex_u64(std::string_view text);
// A plain decimal such as "16.32" (loadavg, pressure averages). No exponent, no inf/nan.
std::optional<double> parse_decimal(std::string_view text);

// Exactly N whitespace-separated u64 fields ("1 2 3\n"), or nullopt.
template <std::size_t N>
std::optional<std::array<std::uint64_t, N>> parse_u64_fields(std::string_view text);

// Splits at runs of spaces, tabs and newlines; empty tokens are never produced.
std::vector<std::string_view> split_ws(std::string_view text);
// Splits into lines at '\n'; a trailing newline does not produce an empty last line.
std::vector<std::string_view> split_lines(std::string_view text);
// Removes leading and trailing spaces, tabs and newlines.
std::string_view trim(std::string_view text);
// Cuts the " (deleted)" the kernel appends to the path of a file that was unlinked or replaced
// (d_path(), fs/d_path.c: readlink of /proc/PID/exe and /proc/PID/fd/N, /proc/PID/maps lines) and
// returns true when it was there. A path that is nothing but the suffix is left alone.
bool strip_deleted_suffix(std::string_view& path);

// Unit conversions. They saturate at UINT64_MAX instead of wrapping, so a corrupt or absurd counter
// can never turn into a small one. ticks_per_sec must be > 0 (0 gives 0).
std::uint64_t ticks_to_ns(std::uint64_t ticks, std::int64_t ticks_per_sec);
std::uint64_t pages_to_bytes(std::uint64_t pages, std::uint64_t page_size_bytes);
std::uint64_t kib_to_bytes(std::uint64_t kib);
std::uint64_t saturating_mul(std::uint64_t a, std::uint64_t b);

template <std::size_t N>
std::optional<std::array<std::uint64_t, N>> parse_u64_fields(std::string_view text) {
  const auto tokens = split_ws(text);
  if (tokens.size() != N) return std::nullopt;
  std::array<std::uint64_t, N> out{};
  for (std::size_t i = 0; i < N; ++i) {
    auto v = parse_u64(tokens[i]);
    if (!v) return std::nullopt;
    out[i] = *v;
  }
  return out;
}

}  // namespace chokepoint::collect::procfs
