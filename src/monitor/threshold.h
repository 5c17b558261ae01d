#pragma once
// Threshold expressions for chokepoint check (the Nagios/Icinga plugin mode) and the state shares
// they are judged on.
//
// Grammar (ASCII spaces allowed between tokens, nothing else):
//   EXPR  := TERM ("," TERM)*             at most kMaxTerms terms; any term that holds crosses
//   TERM  := STATE OP NUMBER
//   STATE := on_cpu | cpu_wait | disk | network | lock | memory | sleep | idle | busy
//   OP    := ">" | ">=" | "<" | "<="
//   NUMBER:= DIGITS ["." DIGITS], a share in [0, 1]
// e.g. "disk>0.3", "disk>0.3,lock>=0.5", "busy < 0.05".
//
// The values (StateShares): on_cpu, cpu_wait, disk, network, lock and memory are shares of the
// target's busy time (everything but idle and sleep), the scale diagnose's bottleneck shares use;
// sleep, idle and busy are shares of all the target's thread time.

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/time_split.h"
#include "util/result.h"

namespace chokepoint::monitor {

inline constexpr std::size_t kMaxTerms = 16;
inline constexpr std::size_t kMaxExpressionBytes = 1024;

// The nine names a threshold can use, in perfdata order: the eight resources, then busy.
inline constexpr std::size_t kShareCount = model::kResourceCount + 1;
std::string_view share_name(std::size_t index);

struct StateShares {
  std::array<double, kShareCount> value{};  // indexed like share_name
};
StateShares state_shares(const model::TimeSplit& split);

enum class Compare { kGreater, kGreaterEqual, kLess, kLessEqual };

struct ThresholdTerm {
  std::size_t share = 0;  // index into StateShares::value
  Compare op = Compare::kGreater;
  double limit = 0;
  std::string limit_text;  // the number as written ("0.30"): exact, never in exponent form
  std::string text;        // canonical: "disk>0.30"
};

struct Threshold {
  std::vector<ThresholdTerm> terms;  // never empty
};

// Parses an expression (grammar above). Errors name the offending part and carry a hint.
util::Result<Threshold> parse_threshold(std::string_view text);

// The first term that holds for `shares`, nullopt when none does.
std::optional<ThresholdTerm> crossed(const Threshold& t, const StateShares& shares);

}  // namespace chokepoint::monitor
