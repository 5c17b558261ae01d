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

std::uint64_t parse_size_bytes(const std::string& text, const char* flag) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  std::string unit = end ? std::string(end) : "";
  for (const char* suffix : {"iB", "B"}) {
    if (unit.size() > std::string(suffix).size() - 1 && unit.ends_with(suffix)) {
      unit.resize(unit.size() - std::string(suffix).size());
      break;
    }
  }
  double scale = 0;
  if (unit.empty()) {
    scale = 1;
  } else if (unit == "K" || unit == "k") {
    scale = 1024.0;
  } else if (unit == "M") {
    scale = 1024.0 * 1024;
  } else if (unit == "G") {
    scale = 1024.0 * 1024 * 1024;
  } else if (unit == "T") {
    scale = 1024.0 * 1024 * 1024 * 1024;
  }
  if (text.empty() || end == text.c_str() || scale == 0 || !std::isfinite(v) || v < 0 ||
      v * scale > 9e18) {
    util::usage_error(fmt::format("{} '{}' is not a size", flag, text),
                      "give a number with a unit: 512K, 100M, 2G");
  }
  return static_cast<std::uint64_t>(v * scale);
}

collect::sampler::SplitMode parse_split_mode_arg(const std::string& text) {
  auto mode = collect::sampler::parse_split_mode(text);
  if (!mode) {
    util::usage_error(fmt::format("--mode '{}' is not a mode", text),
                      "pass --mode exact, --mode sample or --mode auto");
  }
  return *mode;
}

}  // namespace chokepoint::app
