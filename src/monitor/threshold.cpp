#include "monitor/threshold.h"

#include <fmt/format.h>

#include <cctype>

#include "util/escape.h"

namespace chokepoint::monitor {
namespace {

constexpr const char* kHint =
    "write STATE OP SHARE, e.g. 'disk>0.3' or 'disk>0.3,lock>=0.5': STATE is on_cpu, cpu_wait, "
    "disk, network, lock, memory, sleep, idle or busy; OP is >, >=, < or <=; SHARE is a number "
    "from 0 to 1";

util::Error bad(std::string_view text, const std::string& why) {
  return util::Error{
      fmt::format("threshold '{}' is not valid: {}",
                  util::terminal_text(text.substr(0, std::min<std::size_t>(text.size(), 200))),
                  why),
      kHint, 0};
}

std::string_view op_text(Compare op) {
  switch (op) {
    case Compare::kGreater:
      return ">";
    case Compare::kGreaterEqual:
      return ">=";
    case Compare::kLess:
      return "<";
    case Compare::kLessEqual:
      return "<=";
  }
  return ">";
}

class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  void skip_spaces() {
    while (at_ < s_.size() && s_[at_] == ' ') ++at_;
  }
  bool done() const { return at_ >= s_.size(); }
  char peek() const { return done() ? '\0' : s_[at_]; }
  void advance() { ++at_; }
  std::string_view take_while(bool (*pred)(char)) {
    const std::size_t start = at_;
    while (at_ < s_.size() && pred(s_[at_])) ++at_;
    return s_.substr(start, at_ - start);
  }

 private:
  std::string_view s_;
  std::size_t at_ = 0;
};

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || c == '_';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

}  // namespace

std::string_view share_name(std::size_t index) {
  if (index < model::kResourceCount)
    return model::resource_name(static_cast<model::Resource>(index));
  return "busy";
}

StateShares state_shares(const model::TimeSplit& split) {
  StateShares s;
  const std::int64_t total = split.total_ns();
  const std::int64_t busy = split.busy_ns();
  for (std::size_t i = 0; i < model::kResourceCount; ++i) {
    const auto r = static_cast<model::Resource>(i);
    const bool waiting = r == model::Resource::kIdle || r == model::Resource::kSleep;
    const std::int64_t whole = waiting ? total : busy;
    s.value[i] = whole > 0 ? static_cast<double>(split[r]) / static_cast<double>(whole) : 0.0;
  }
  s.value[model::kResourceCount] =
      total > 0 ? static_cast<double>(busy) / static_cast<double>(total) : 0.0;
  return s;
}

util::Result<Threshold> parse_threshold(std::string_view text) {
  if (text.size() > kMaxExpressionBytes) {
    return bad(text, fmt::format("longer than {} bytes", kMaxExpressionBytes));
  }
  Threshold t;
  Cursor c(text);
  while (true) {
    c.skip_spaces();
    const std::string_view name = c.take_while(is_name_char);
    if (name.empty()) return bad(text, "expected a state name");
    std::optional<std::size_t> share;
    for (std::size_t i = 0; i < kShareCount; ++i) {
      if (share_name(i) == name) share = i;
    }
    if (!share) return bad(text, fmt::format("'{}' is not a state", name));
    c.skip_spaces();
    ThresholdTerm term;
    term.share = *share;
    if (c.peek() == '>' || c.peek() == '<') {
      const bool greater = c.peek() == '>';
      c.advance();
      const bool equal = c.peek() == '=';
      if (equal) c.advance();
      term.op = greater ? (equal ? Compare::kGreaterEqual : Compare::kGreater)
                        : (equal ? Compare::kLessEqual : Compare::kLess);
    } else {
      return bad(text, fmt::format("expected >, >=, < or <= after '{}'", name));
    }
    c.skip_spaces();
    const std::string_view whole = c.take_while(is_digit);
    std::string_view fraction;
    bool point = false;
    if (c.peek() == '.') {
      point = true;
      c.advance();
      fraction = c.take_while(is_digit);
    }
    if (whole.empty() || (point && fraction.empty())) {
      return bad(text,
                 fmt::format("expected a share from 0 to 1 after '{}{}'", name, op_text(term.op)));
    }
    if (whole.size() + fraction.size() > 18) return bad(text, "a share has at most 18 digits");
    // Exact for the digits allowed: parsed as an integer and scaled once.
    double value = 0;
    for (char d : whole) value = value * 10 + (d - '0');
    double scale = 1;
    double frac = 0;
    for (char d : fraction) {
      frac = frac * 10 + (d - '0');
      scale *= 10;
    }
    value += frac / scale;
    if (value > 1) return bad(text, fmt::format("{} is above 1 (shares run from 0 to 1)", value));
    term.limit = value;
    term.limit_text = std::string(whole) + (point ? "." + std::string(fraction) : "");
    term.text = fmt::format("{}{}{}", name, op_text(term.op), term.limit_text);
    t.terms.push_back(std::move(term));
    if (t.terms.size() > kMaxTerms) return bad(text, fmt::format("more than {} terms", kMaxTerms));
    c.skip_spaces();
    if (c.done()) break;
    if (c.peek() != ',') {
      return bad(text,
                 fmt::format("unexpected '{}' after '{}'",
                             util::terminal_text(std::string(1, c.peek())), t.terms.back().text));
    }
    c.advance();
  }
  return t;
}

std::optional<ThresholdTerm> crossed(const Threshold& t, const StateShares& shares) {
  for (const auto& term : t.terms) {
    const double v = shares.value[term.share];
    bool holds = false;
    switch (term.op) {
      case Compare::kGreater:
        holds = v > term.limit;
        break;
      case Compare::kGreaterEqual:
        holds = v >= term.limit;
        break;
      case Compare::kLess:
        holds = v < term.limit;
        break;
      case Compare::kLessEqual:
        holds = v <= term.limit;
        break;
    }
    if (holds) return term;
  }
  return std::nullopt;
}

}  // namespace chokepoint::monitor
