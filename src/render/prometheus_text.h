#pragma once
// The Prometheus text exposition format (version 0.0.4), written by hand: Debian 12 has no
// prometheus-cpp, and the format is small (docs/agent.md). Every label value passes through
// prometheus_label_value, so a hostile target name cannot break a line or forge a series.
//
//   ExpositionWriter w;
//   w.family("chokepoint_target_up", "gauge", "1 when the last window of the target worked");
//   w.sample("chokepoint_target_up", {{"target", name}}, 1);
//   std::string body = w.take();
//
// Thread-safety: a writer is used by one thread. Plain value type.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chokepoint::render {

using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

// A label value for the exposition: valid UTF-8 (invalid bytes become U+FFFD, which the format
// requires), then '\' -> "\\", '"' -> "\"", newline -> "\n" (the format's three escapes).
std::string prometheus_label_value(std::string_view raw);

// A sample value: the shortest text that reads back as the same double; NaN, +Inf, -Inf.
std::string prometheus_number(double v);

// True for a metric or label name the format accepts: [a-zA-Z_:][a-zA-Z0-9_:]* (no ':' in label
// names).
bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);

class ExpositionWriter {
 public:
  // Starts a family: its # HELP and # TYPE lines. REQUIRES: a valid name, type one of counter,
  // gauge, untyped; a family is started once, and its samples follow it.
  void family(std::string_view name, std::string_view type, std::string_view help);
  // One sample line. REQUIRES: name is the current family's (or its _total etc.), label names
  // valid. Label values may be any bytes.
  void sample(std::string_view name, const Labels& labels, double value);
  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace chokepoint::render
