#include "render/services_report.h"

#include <fmt/format.h>

#include "util/escape.h"

namespace chokepoint::render {

std::string services_text(const std::vector<analysis::ServiceReport>& services) {
  if (services.empty()) return "";
  std::string out = "\nServices (their own statistics over the window):\n";
  for (const auto& s : services) {
    out +=
        fmt::format("  {} {}", model::service_kind_name(s.kind), util::terminal_text(s.endpoint));
    if (!s.summary.empty()) out += ": " + util::terminal_text(s.summary);
    out += "\n";
    for (const auto& f : s.findings) {
      out += fmt::format("    {} {} ({})\n", f.warning ? "!" : "-", util::terminal_text(f.message),
                         model::resource_name(f.resource));
      if (!f.fix.empty()) out += fmt::format("      fix: {}\n", util::terminal_text(f.fix));
    }
    if (!s.problem.empty()) {
      out += fmt::format("    could not read it: {}\n", util::terminal_text(s.problem));
      if (!s.hint.empty()) out += fmt::format("    hint: {}\n", util::terminal_text(s.hint));
    }
  }
  return out;
}

nlohmann::json services_json(const std::vector<analysis::ServiceReport>& services) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& s : services) {
    nlohmann::json j;
    j["kind"] = model::service_kind_name(s.kind);
    // Raw bytes: render::json_text replaces what is not UTF-8 when it writes the document.
    j["endpoint"] = s.endpoint;
    j["summary"] = s.summary;
    nlohmann::json fs = nlohmann::json::array();
    for (const auto& f : s.findings) {
      fs.push_back({{"resource", model::resource_name(f.resource)},
                    {"severity", f.warning ? "warning" : "info"},
                    {"message", f.message},
                    {"fix", f.fix}});
    }
    j["findings"] = fs;
    if (!s.problem.empty()) {
      j["problem"] = s.problem;
      j["hint"] = s.hint;
    }
    arr.push_back(std::move(j));
  }
  return arr;
}

}  // namespace chokepoint::render
