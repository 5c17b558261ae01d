#include "loadgen/knee.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

namespace chokepoint::loadgen {
namespace {

std::string strip_spaces(const std::string& s) {
  std::string out;
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c))) out += c;
  return out;
}

// Parses a finite non-negative decimal number at the start of `s`; returns the characters used.
std::size_t parse_number(const std::string& s, double& value) {
  if (s.empty() || !(std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '.')) return 0;
  char* end = nullptr;
  value = std::strtod(s.c_str(), &end);
  if (!std::isfinite(value)) return 0;
  return static_cast<std::size_t>(end - s.c_str());
}

util::Result<SloTerm> parse_term(const std::string& raw) {
  const util::Error shape{
      fmt::format("SLO term '{}' is not of the form p<percentile><<limit>", raw),
      "write e.g. --slo 'p99<50ms' or --slo 'p50<5ms,p99.9<200ms'"};
  SloTerm t;
  t.text = raw;
  std::string s = strip_spaces(raw);
  if (s.size() < 2 || (s[0] != 'p' && s[0] != 'P')) return shape;
  s = s.substr(1);
  std::size_t n = parse_number(s, t.percentile);
  if (n == 0) return shape;
  if (!(t.percentile > 0 && t.percentile < 100)) {
    return util::Error{
        fmt::format("SLO term '{}': the percentile must be above 0 and below 100", raw),
        "write e.g. p99 or p99.9"};
  }
  s = s.substr(n);
  if (s.rfind("<=", 0) == 0) {
    t.inclusive = true;
    s = s.substr(2);
  } else if (s.rfind("<", 0) == 0) {
    s = s.substr(1);
  } else {
    return shape;
  }
  double limit = 0;
  n = parse_number(s, limit);
  if (n == 0) return shape;
  const std::string unit = s.substr(n);
  double us_per_unit = 0;
  if (unit == "us") us_per_unit = 1;
  if (unit == "ms") us_per_unit = 1e3;
  if (unit == "s") us_per_unit = 1e6;
  if (us_per_unit == 0) {
    return util::Error{fmt::format("SLO term '{}': the limit needs a unit (us, ms or s)", raw),
                       "write e.g. p99<50ms"};
  }
  const double limit_us = limit * us_per_unit;
  if (!(limit_us >= 1) || limit_us > 3600e6) {
    return util::Error{fmt::format("SLO term '{}': the limit must be between 1us and 1h", raw),
                       "write e.g. p99<50ms"};
  }
  t.limit_us = static_cast<std::int64_t>(std::llround(limit_us));
  return t;
}

}  // namespace

util::Result<Slo> parse_slo(const std::string& text) {
  Slo slo;
  slo.text = text;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    auto term = parse_term(text.substr(start, comma - start));
    if (!term) return term.error();
    slo.terms.push_back(*term);
    start = comma + 1;
  }
  return slo;
}

util::Result<double> parse_ratio(const std::string& raw) {
  std::string s = strip_spaces(raw);
  const bool percent = !s.empty() && s.back() == '%';
  if (percent) s.pop_back();
  double value = 0;
  const std::size_t n = parse_number(s, value);
  if (n == 0 || n != s.size()) {
    return util::Error{fmt::format("'{}' is not an error bound", raw),
                       "write a percentage such as 0.1% or a fraction such as 0.001"};
  }
  if (percent) value /= 100;
  if (value > 1) {
    return util::Error{fmt::format("error bound '{}' is above 100%", raw),
                       "write a percentage such as 0.1% or a fraction such as 0.001"};
  }
  return value;
}

StepJudgement judge_step(const Slo& slo, double max_error_ratio, const StepMeasurement& m) {
  StepJudgement j;
  if (m.requests == 0) {
    j.reason = "no request completed";
    return j;
  }
  if (m.error_ratio > max_error_ratio) {
    j.reason = fmt::format("errors {:.3g}% > {:.3g}%", m.error_ratio * 100, max_error_ratio * 100);
    return j;
  }
  const double achieved =
      m.offered_rate_per_s > 0 ? m.achieved_rate_per_s / m.offered_rate_per_s : 1;
  if (achieved < kMinAchievedRatio) {
    j.reason = fmt::format("served {:.0f} of {:.0f} req/s offered ({:.0f}%)", m.achieved_rate_per_s,
                           m.offered_rate_per_s, achieved * 100);
    return j;
  }
  std::string held;
  for (std::size_t i = 0; i < slo.terms.size() && i < m.percentile_us.size(); ++i) {
    const SloTerm& t = slo.terms[i];
    const std::int64_t v = m.percentile_us[i];
    const bool ok = t.inclusive ? v <= t.limit_us : v < t.limit_us;
    const std::string line =
        fmt::format("p{:g} {:.3g} ms {} {:g} ms", t.percentile, v / 1000.0,
                    ok ? (t.inclusive ? "<=" : "<") : ">", t.limit_us / 1000.0);
    if (!ok) {
      j.reason = line;
      return j;
    }
    held += (held.empty() ? "" : ", ") + line;
  }
  // Steady state: a latency that climbs through the step is a queue that grows without bound.
  const std::size_t n = m.second_mean_us.size();
  if (n >= 3) {
    auto mean_of = [&](std::size_t from, std::size_t to) {
      double sum = 0;
      for (std::size_t i = from; i < to; ++i) sum += m.second_mean_us[i];
      return sum / static_cast<double>(to - from);
    };
    const std::size_t third = n / 3;
    const double first = mean_of(0, third);
    const double middle = mean_of(third, n - third);
    const double last = mean_of(n - third, n);
    std::int64_t largest_limit_us = 0;
    for (const auto& t : slo.terms) largest_limit_us = std::max(largest_limit_us, t.limit_us);
    if (last > kClimbFactor * first && middle > first && middle < last &&
        last > kClimbFloorOfLimit * static_cast<double>(largest_limit_us)) {
      j.reason = fmt::format(
          "latency still climbing: mean {:.3g} ms in the first third of the step, {:.3g} ms in "
          "the last (the service falls behind; a longer step would break the SLO)",
          first / 1000, last / 1000);
      return j;
    }
  }
  j.pass = true;
  j.reason = held;
  return j;
}

KneeSearch::KneeSearch(KneeOptions options) : options_(options) {
  next_ = std::clamp(options_.start_rate_per_s, options_.min_rate_per_s, options_.max_rate_per_s);
}

std::optional<double> KneeSearch::next_rate() const {
  if (state_ != State::kSearching) return std::nullopt;
  return next_;
}

void KneeSearch::record(double rate, bool pass) {
  ++steps_;
  if (pass) {
    if (!highest_pass_ || rate > *highest_pass_) highest_pass_ = rate;
    // A pass above an earlier failure (noise) moves the failure bound up with it.
    if (lowest_fail_ && *lowest_fail_ <= rate) lowest_fail_.reset();
  } else {
    if (!lowest_fail_ || rate < *lowest_fail_) lowest_fail_ = rate;
    if (highest_pass_ && *highest_pass_ >= rate) highest_pass_.reset();
  }
  advance();
}

void KneeSearch::advance() {
  if (highest_pass_ && lowest_fail_) {
    if ((*lowest_fail_ - *highest_pass_) / *highest_pass_ <= options_.tolerance) {
      state_ = State::kConverged;
      return;
    }
    next_ = (*highest_pass_ + *lowest_fail_) / 2;
  } else if (highest_pass_) {
    if (*highest_pass_ >= options_.max_rate_per_s) {
      state_ = State::kMaxRate;
      return;
    }
    next_ = std::min(*highest_pass_ * 2, options_.max_rate_per_s);
  } else {
    // Nothing passed yet: halve below the lowest failure.
    if (*lowest_fail_ <= options_.min_rate_per_s) {
      state_ = State::kNothingPassed;
      return;
    }
    next_ = std::max(*lowest_fail_ / 2, options_.min_rate_per_s);
  }
  // Whole requests per second read better; only when rounding keeps the step between the bounds.
  const double rounded = std::round(next_);
  if (next_ >= 100 && (!highest_pass_ || rounded > *highest_pass_) &&
      (!lowest_fail_ || rounded < *lowest_fail_)) {
    next_ = rounded;
  }
  if (steps_ >= options_.max_steps) state_ = State::kMaxSteps;
}

const char* state_name(KneeSearch::State state) {
  switch (state) {
    case KneeSearch::State::kSearching:
      return "searching";
    case KneeSearch::State::kConverged:
      return "converged";
    case KneeSearch::State::kMaxRate:
      return "max_rate_passed";
    case KneeSearch::State::kNothingPassed:
      return "nothing_passed";
    case KneeSearch::State::kMaxSteps:
      return "max_steps";
  }
  return "unknown";
}

std::vector<int> usl_concurrency_levels(int max_concurrency) {
  std::vector<int> levels;
  for (int n = 1; n < max_concurrency; n *= 2) levels.push_back(n);
  if (max_concurrency >= 1) levels.push_back(max_concurrency);
  return levels;
}

}  // namespace chokepoint::loadgen
