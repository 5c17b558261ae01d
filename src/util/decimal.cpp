#include "util/decimal.h"

#include <cctype>
#include <charconv>
#include <cmath>

namespace chokepoint::util {

namespace {
bool digit(char c) {
  return std::isdigit(static_cast<unsigned char>(c)) != 0;
}
}  // namespace

DecimalPrefix decimal_prefix(std::string_view s) {
  // Scan the grammar [+-]? (d+ (. d*)? | . d+) ([eE] [+-]? d+)? first, so from_chars sees only it.
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  const std::size_t mantissa = i;
  while (i < s.size() && digit(s[i])) ++i;
  bool digits = i > mantissa;
  if (i < s.size() && s[i] == '.') {
    const std::size_t frac = ++i;
    while (i < s.size() && digit(s[i])) ++i;
    digits = digits || i > frac;
  }
  if (!digits) return {};
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    std::size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    const std::size_t exp = j;
    while (j < s.size() && digit(s[j])) ++j;
    if (j > exp) i = j;  // "1e" or "2em": the 'e' is not part of the number
  }
  std::string_view number = s.substr(0, i);
  const bool negative = number.front() == '-';
  if (number.front() == '+' || negative) number.remove_prefix(1);
  double v = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), v);
  if (ec != std::errc() || end != number.data() + number.size() || !std::isfinite(v)) return {};
  return {negative ? -v : v, i};
}

std::optional<double> parse_decimal(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return std::nullopt;
  s = s.substr(first, s.find_last_not_of(" \t") - first + 1);
  const DecimalPrefix p = decimal_prefix(s);
  if (p.length == 0 || p.length != s.size()) return std::nullopt;
  return p.value;
}

}  // namespace chokepoint::util
