#pragma once
// The knee search: the highest request rate a service sustains within its SLO.
//
// The SLO is one or more latency percentiles with limits ("p99<50ms", "p99<50ms,p50<5ms") plus a
// bound on the error ratio. A step offers a fixed rate (open loop, latency corrected for
// coordinated omission) and passes when every percentile is under its limit, the error ratio is
// within its bound, and the service answered at least kMinAchievedRatio of the offered rate.
//
// KneeSearch decides the rates: it doubles from the start rate until a step fails, then bisects
// between the highest passing and the lowest failing rate until they are within the tolerance
// (2% by default). A failing start rate halves downwards first. Pure logic, no I/O: the caller
// runs each step and records whether it passed.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/result.h"

namespace chokepoint::loadgen {

struct SloTerm {
  double percentile = 99;     // 0 < percentile < 100
  std::int64_t limit_us = 0;  // latency must be below this (at or below when inclusive)
  bool inclusive = false;     // "<=" rather than "<"
  std::string text;           // as written, e.g. "p99<50ms"
};

struct Slo {
  std::vector<SloTerm> terms;
  std::string text;  // as written
};

// Parses "p99<50ms", "p99.9<=200ms", "p50<5ms,p99<50ms" (spaces allowed; units us, ms, s).
// Errors name the bad part and show the expected shape.
util::Result<Slo> parse_slo(const std::string& text);

// Parses an error bound: "0.1%" -> 0.001, "0.001" -> 0.001, "0" -> 0. Must be within [0, 1].
util::Result<double> parse_ratio(const std::string& text);

// A step passes only when the service answered at least this share of the offered rate.
inline constexpr double kMinAchievedRatio = 0.95;

struct StepMeasurement {
  double offered_rate_per_s = 0;
  double achieved_rate_per_s = 0;
  std::vector<std::int64_t> percentile_us;  // one per SloTerm, same order (corrected latency)
  double error_ratio = 0;                   // requests not answered with status < 400
  std::uint64_t requests = 0;
  // Mean corrected latency of each second of the step (LoadResult::timeline), oldest first.
  std::vector<double> second_mean_us;
};

// A step whose latency is still climbing when it ends has not reached a steady state: the service
// falls behind the offered rate, and a longer step would break the SLO. judge_step fails it when
// the last third of its seconds averages more than kClimbFactor times the first third, the middle
// third lies in between, and the climb is material (the last third above kClimbFloorOfLimit of
// the largest SLO limit). Needs at least 3 seconds.
inline constexpr double kClimbFactor = 2.0;
inline constexpr double kClimbFloorOfLimit = 0.25;

struct StepJudgement {
  bool pass = false;
  std::string reason;  // why it failed, or what held ("p99 12.3 ms < 50 ms")
};

StepJudgement judge_step(const Slo& slo, double max_error_ratio, const StepMeasurement& m);

struct KneeOptions {
  double start_rate_per_s = 100;
  double max_rate_per_s = 1'000'000;
  double min_rate_per_s = 1;  // below this a failing start gives up
  double tolerance = 0.02;    // stop when (lowest fail - highest pass) / highest pass <= this
  int max_steps = 40;
};

class KneeSearch {
 public:
  enum class State {
    kSearching,
    kConverged,      // knee() and first_failing() are within the tolerance
    kMaxRate,        // max_rate passed: the knee is at or above it
    kNothingPassed,  // even min_rate failed
    kMaxSteps,       // ran out of steps; knee() is the best bound so far
  };

  explicit KneeSearch(KneeOptions options);

  // The rate to run next; std::nullopt once the search has ended (see state()).
  std::optional<double> next_rate() const;
  // Records the outcome of running next_rate(). REQUIRES: state() == kSearching.
  void record(double rate_per_s, bool pass);

  State state() const { return state_; }
  int steps() const { return steps_; }
  // The highest rate that passed; std::nullopt when none did.
  std::optional<double> knee() const { return highest_pass_; }
  // The lowest rate that failed above the knee; std::nullopt when none did.
  std::optional<double> first_failing() const { return lowest_fail_; }

 private:
  void advance();
  KneeOptions options_;
  State state_ = State::kSearching;
  int steps_ = 0;
  double next_ = 0;
  std::optional<double> highest_pass_;
  std::optional<double> lowest_fail_;
};

const char* state_name(KneeSearch::State state);

// The closed-loop concurrency levels of a USL sweep: 1, 2, 4, ... and max_concurrency itself.
std::vector<int> usl_concurrency_levels(int max_concurrency);

}  // namespace chokepoint::loadgen
