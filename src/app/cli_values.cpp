#include "app/cli_values.h"

#include <fmt/format.h>

#include <string_view>

#include "util/decimal.h"
#include "util/fatal.h"

namespace chokepoint::app {

std::int64_t parse_duration_ns(const std::string& text, const char* flag) {
  const util::DecimalPrefix number = util::decimal_prefix(text);
  const std::string_view unit = std::string_view(text).substr(number.length);
  double scale = 0;
  if (unit.empty() || unit == "s") {
    scale = 1e9;
  } else if (unit == "ms") {
    scale = 1e6;
  } else if (unit == "us") {
    scale = 1e3;
  } else if (unit == "m") {
    scale = 60e9;
  } else if (unit == "h") {
    scale = 3600e9;
  }
  if (number.length == 0 || scale == 0 || number.value < 0) {
    util::usage_error(fmt::format("{} '{}' is not a duration", flag, text),
                      "give a number with a unit: 500ms, 10s, 2m, 1h");
  }
  const double ns = number.value * scale;
  if (ns > static_cast<double>(kMaxDurationNs)) {
    util::usage_error(fmt::format("{} '{}' is out of range", flag, text),
                      "every duration is at most 7 days (168h)");
  }
  return static_cast<std::int64_t>(ns);
}

}  // namespace chokepoint::app
