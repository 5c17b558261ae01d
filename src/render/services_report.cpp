#include "render/services_report.h"

#include <fmt/format.h>

#include "render/text_safety.h"

namespace chokepoint::render {
namespace {

// Control characters from a service (a key name in the slow log, a query) must not reach the
// terminal: shown as \xNN.
std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace

std::string services_text(const std::vector<analysis::ServiceReport>& services) {
  if (services.empty()) return "";
  std::string out = "\nServices (their own statistics over the window):\n";
  for (const auto& s : services) {
    out += fmt::format("  {} {}", model::service_kind_name(s.kind), printable(s.endpoint));
    if (!s.summary.empty()) out += ": " + printable(s.summary);
    out += "\n";
    for (const auto& f : s.findings) {
      out += fmt::format("    {} {} ({})\n", f.warning ? "!" : "-", printable(f.message),
                         model::resource_name(f.resource));
      if (!f.fix.empty()) out += fmt::format("      fix: {}\n", printable(f.fix));
    }
    if (!s.problem.empty()) {
      out += fmt::format("    could not read it: {}\n", printable(s.problem));
      if (!s.hint.empty()) out += fmt::format("    hint: {}\n", printable(s.hint));
    }
  }
  return out;
}

nlohmann::json services_json(const std::vector<analysis::ServiceReport>& services) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& s : services) {
    nlohmann::json j;
    j["kind"] = model::service_kind_name(s.kind);
    // Service text may hold any bytes (a key in the slow log): valid UTF-8 for the serialiser.
    j["endpoint"] = valid_utf8(s.endpoint);
    j["summary"] = valid_utf8(s.summary);
    nlohmann::json fs = nlohmann::json::array();
    for (const auto& f : s.findings) {
      fs.push_back({{"resource", model::resource_name(f.resource)},
                    {"severity", f.warning ? "warning" : "info"},
                    {"message", valid_utf8(f.message)},
                    {"fix", valid_utf8(f.fix)}});
    }
    j["findings"] = fs;
    if (!s.problem.empty()) {
      j["problem"] = valid_utf8(s.problem);
      j["hint"] = valid_utf8(s.hint);
    }
    arr.push_back(std::move(j));
  }
  return arr;
}

}  // namespace chokepoint::render
