#pragma once
// Numbers as people type them on a command line or in a CSV: decimal only. strtod also takes hex
// ("0x10"), "inf", "nan" and leading blanks, and stops silently at the first bad character.

#include <optional>
#include <string_view>

namespace chokepoint::util {

// A finite decimal number: optional sign, digits with an optional fraction, an optional
// exponent, and nothing else (blanks around it are allowed). nullopt for anything else.
std::optional<double> parse_decimal(std::string_view s);

// The longest prefix of `s` that is such a number, and how many bytes it took (0: none), for
// values with a unit after the number ("250ms").
struct DecimalPrefix {
  double value = 0;
  std::size_t length = 0;
};
DecimalPrefix decimal_prefix(std::string_view s);

}  // namespace chokepoint::util
