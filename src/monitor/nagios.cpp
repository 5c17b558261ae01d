#include "monitor/nagios.h"

#include <fmt/format.h>

#include "util/escape.h"

namespace chokepoint::monitor {
namespace {

// The Nagios range for a threshold's one term on `share` ("" when it has none or several).
std::string range_field(const std::optional<Threshold>& t, std::size_t share) {
  if (!t) return "";
  const ThresholdTerm* only = nullptr;
  for (const auto& term : t->terms) {
    if (term.share != share) continue;
    if (only) return "";
    only = &term;
  }
  if (!only) return "";
  const bool above = only->op == Compare::kGreater || only->op == Compare::kGreaterEqual;
  return only->limit_text + (above ? "" : ":");
}

}  // namespace

std::string_view plugin_state_name(PluginState s) {
  switch (s) {
    case PluginState::kOk:
      return "OK";
    case PluginState::kWarning:
      return "WARNING";
    case PluginState::kCritical:
      return "CRITICAL";
    case PluginState::kUnknown:
      return "UNKNOWN";
  }
  return "UNKNOWN";
}

std::string plugin_text(std::string_view s) {
  std::string out;
  for (char c : util::terminal_text(s)) {
    if (c == '|') {
      out += "\\x7c";
    } else {
      out += c;
    }
  }
  return out;
}

CheckResult judge(const StateShares& shares, const std::optional<Threshold>& warn,
                  const std::optional<Threshold>& crit) {
  CheckResult r;
  if (crit) {
    if (auto term = crossed(*crit, shares)) {
      r.state = PluginState::kCritical;
      r.crossed = std::move(term);
      return r;
    }
  }
  if (warn) {
    if (auto term = crossed(*warn, shares)) {
      r.state = PluginState::kWarning;
      r.crossed = std::move(term);
    }
  }
  return r;
}

std::string nagios_line(std::string_view target, const CheckResult& result,
                        const StateShares& shares, const analysis::Diagnosis& d,
                        const std::optional<Threshold>& warn,
                        const std::optional<Threshold>& crit) {
  std::string out =
      fmt::format("CHOKEPOINT {} - {}: ", plugin_state_name(result.state), plugin_text(target));
  if (result.crossed) {
    out += fmt::format(
        "{} {:.2f} ({} {})", share_name(result.crossed->share), shares.value[result.crossed->share],
        result.state == PluginState::kCritical ? "crit" : "warn", result.crossed->text);
  } else {
    out += "no threshold crossed";
  }
  out += fmt::format("; verdict {}", analysis::verdict_name(d.verdict));
  if (d.verdict != analysis::Verdict::kNone && !d.bottlenecks.empty()) {
    out += fmt::format(" ({}, {})", analysis::kind_name(d.bottlenecks[0].kind),
                       analysis::share_text(d.bottlenecks[0]));
  }
  out += " |";
  for (std::size_t i = 0; i < kShareCount; ++i) {
    out += fmt::format(" {}={:.4f};{};{};0;1", share_name(i), shares.value[i], range_field(warn, i),
                       range_field(crit, i));
  }
  out += '\n';
  return out;
}

std::string nagios_unknown_line(std::string_view message) {
  return fmt::format("CHOKEPOINT UNKNOWN - {}\n", plugin_text(message));
}

}  // namespace chokepoint::monitor
