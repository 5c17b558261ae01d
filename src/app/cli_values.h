#pragma once
// Parsing of option values shared by subcommands. Each throws util::FatalError with exit code 2
// (a usage error) and a hint when the text is not valid.

#include <cstdint>
#include <string>

namespace chokepoint::app {

// "250ms", "2s", "1.5m", "1h", "100us", or a bare number of seconds. Never negative.
std::int64_t parse_duration_ns(const std::string& text, const char* flag);

// "500K", "100M", "2G" (powers of 1024, an optional trailing "B" or "iB"), or a bare number of
// bytes. Never negative.
std::uint64_t parse_size_bytes(const std::string& text, const char* flag);

}  // namespace chokepoint::app
