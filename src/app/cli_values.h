#pragma once
// Parsing of option values shared by subcommands. Each throws util::FatalError with exit code 2
// (a usage error) and a hint when the text is not valid.

#include <cstdint>
#include <string>

#include "collect/sampler/exact_accounting.h"

namespace chokepoint::app {

// The range of every duration flag (--duration, --interval, --timeout, --warmup, --step, ...):
// 0 to 7 days. Flags that need more than 0 say so themselves ("--duration must be above 0").
inline constexpr std::int64_t kMaxDurationNs = std::int64_t{7} * 24 * 3600 * 1'000'000'000;

// "250ms", "2s", "1.5m", "1h", "100us", or a bare number of seconds: a decimal number (no hex,
// inf or nan) and a unit, 0 to kMaxDurationNs. Out of range and malformed text are usage errors.
std::int64_t parse_duration_ns(const std::string& text, const char* flag);

// "500K", "100M", "2G" (powers of 1024, an optional trailing "B" or "iB"), or a bare number of
// bytes. Never negative.
std::uint64_t parse_size_bytes(const std::string& text, const char* flag);

// --mode: "exact", "sample" or "auto" (collect/sampler/exact_accounting.h).
collect::sampler::SplitMode parse_split_mode_arg(const std::string& text);
inline constexpr const char* kSplitModeHelp =
    "time split: exact (eBPF accounting of every switch, root), sample (/proc sampling), or auto "
    "(exact where it loads, else sample with the reason)";

}  // namespace chokepoint::app
