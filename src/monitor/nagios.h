#pragma once
// The Nagios/Icinga plugin output of chokepoint check: one status line,
//   CHOKEPOINT <STATE> - <target>: <what crossed>; verdict <resource> (<kind>) | <perfdata>
// with perfdata for every state share ("disk=0.7213;0.3;0.6;0;1"), the warn/crit fields filled
// where a threshold has exactly one term on that state (Nagios range syntax: "0.3" alerts above,
// "0.3:" below). Exit codes follow the plugin API (kOk..kUnknown).

#include <optional>
#include <string>
#include <string_view>

#include "analysis/diagnosis.h"
#include "monitor/threshold.h"

namespace chokepoint::monitor {

enum class PluginState { kOk = 0, kWarning = 1, kCritical = 2, kUnknown = 3 };

std::string_view plugin_state_name(PluginState s);  // "OK", "WARNING", ...

// Text for a plugin line: terminal-safe (util::terminal_text) and without '|', which starts the
// perfdata (it becomes \x7c).
std::string plugin_text(std::string_view s);

struct CheckResult {
  PluginState state = PluginState::kOk;
  std::optional<ThresholdTerm> crossed;  // the term that set a WARNING or CRITICAL
};

// Judges shares against the thresholds (critical first). Either may be absent.
CheckResult judge(const StateShares& shares, const std::optional<Threshold>& warn,
                  const std::optional<Threshold>& crit);

// The status line with perfdata (ends with '\n').
std::string nagios_line(std::string_view target, const CheckResult& result,
                        const StateShares& shares, const analysis::Diagnosis& d,
                        const std::optional<Threshold>& warn, const std::optional<Threshold>& crit);

// "CHOKEPOINT UNKNOWN - <message>\n": the run could not judge (bad threshold, no target).
std::string nagios_unknown_line(std::string_view message);

}  // namespace chokepoint::monitor
