#include "render/prometheus_text.h"

#include <fmt/format.h>

#include <cassert>
#include <cmath>

#include "util/escape.h"

namespace chokepoint::render {
namespace {

bool name_char(char c, bool first, bool colon) {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  if (alpha || (colon && c == ':')) return true;
  return !first && c >= '0' && c <= '9';
}

bool valid_name(std::string_view name, bool colon) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!name_char(name[i], i == 0, colon)) return false;
  }
  return true;
}

// HELP text escapes '\' and newline (not '"').
std::string help_text(std::string_view raw) {
  std::string out;
  for (char c : util::valid_utf8(raw)) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string prometheus_label_value(std::string_view raw) {
  std::string out;
  const std::string text = util::valid_utf8(raw);
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string prometheus_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

bool valid_metric_name(std::string_view name) {
  return valid_name(name, true);
}

bool valid_label_name(std::string_view name) {
  return valid_name(name, false) && name.substr(0, 2) != "__";
}

void ExpositionWriter::family(std::string_view name, std::string_view type, std::string_view help) {
  assert(valid_metric_name(name));
  assert(type == "counter" || type == "gauge" || type == "untyped");
  out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help_text(help), name, type);
}

void ExpositionWriter::sample(std::string_view name, const Labels& labels, double value) {
  assert(valid_metric_name(name));
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    bool first = true;
    for (const auto& [key, raw] : labels) {
      assert(valid_label_name(key));
      if (!first) out_ += ',';
      first = false;
      out_ += key;
      out_ += "=\"";
      out_ += prometheus_label_value(raw);
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
  out_ += prometheus_number(value);
  out_ += '\n';
}

}  // namespace chokepoint::render
