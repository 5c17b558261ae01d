#include "report/page.h"

#include <array>
#include <random>
#include <string_view>

#include "render/diagnosis_report.h"
#include "render/flamegraph_svg.h"
#include "report/assets.h"
#include "report/range_stacks.h"
#include "util/escape.h"

namespace chokepoint::report {
namespace {

// A CSP nonce: 128 random bits, base64 (RFC 4648).
std::string make_nonce() {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::random_device random;
  std::array<unsigned char, 18> bytes{};  // 18 bytes: 24 characters, no padding
  for (auto& b : bytes) b = static_cast<unsigned char>(random() & 0xff);
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const unsigned v = (bytes[i] << 16U) | (bytes[i + 1] << 8U) | bytes[i + 2];
    for (int shift = 18; shift >= 0; shift -= 6) out += kAlphabet[(v >> shift) & 63U];
  }
  return out;
}

bool has_series(const nlohmann::json& timeline, const std::string& panel, const std::string& name) {
  for (const auto& p : timeline.value("use", nlohmann::json::array())) {
    if (p.value("panel", "") != panel) continue;
    for (const auto& s : p.value("series", nlohmann::json::array())) {
      if (s.value("name", "") == name) return true;
    }
  }
  return false;
}

nlohmann::json recorded_graphs_json(const std::vector<RecordedFlameGraph>& graphs) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& g : graphs) {
    if (g.profile == nullptr) continue;
    out.push_back({{"off_cpu", g.profile->off_cpu},
                   {"title", g.profile->title},
                   {"stacks", g.profile->stacks.size()},
                   {"scope", g.scope}});
  }
  return out;
}

}  // namespace

nlohmann::json recording_json(const RecordingPage& r) {
  nlohmann::json d = render::diagnosis_json(*r.whole, *r.diagnosis);
  d.erase("threads");
  nlohmann::json absent = nlohmann::json::array();
  if (!has_series(*r.timeline, "CPU", "system CPU utilisation")) {
    absent.push_back({{"panel", "USE over time (system CPU, disks, network, PSI)"},
                      {"why",
                       "the recording keeps the system counters at the window's two ends only "
                       "(diagnose --record): the whole window's numbers are in the table"},
                      {"how", "chokepoint record keeps them at every tick"}});
  }
  if (r.profile == nullptr && r.recorded.empty()) {
    absent.push_back(
        {{"panel", "Stacks (flame graphs)"},
         {"why", r.stacks_kept ? "the recording keeps what diagnose found in the stacks (in the "
                                 "evidence above), not the stacks themselves"
                 : !r.recorded_absent_why.empty()
                     ? "the recording keeps no stacks: " + r.recorded_absent_why
                     : "the recording keeps no stacks (a recording made before chokepoint record "
                       "kept them; diagnose --no-stacks skips them)"},
         {"how",
          "chokepoint record keeps on-CPU and off-CPU stacks over time (as root); chokepoint "
          "profile --pid PID -o flame.svg, or diagnose without --no-stacks"}});
  }
  const bool has_services = r.services != nullptr && !r.services->empty();
  if (!has_services && r.services_summary_only) {
    absent.push_back({{"panel", "Services over time"},
                      {"why",
                       "the recording keeps the services' summary of the whole window only (made "
                       "before schema 5): their findings are in the verdict above"},
                      {"how", "record again with this chokepoint (schema 5 keeps every poll)"}});
  }
  if (r.load == nullptr || r.load->is_null()) {
    absent.push_back({{"panel", "Load (latency and throughput)"},
                      {"why", "no load was driven while this was recorded"},
                      {"how", "chokepoint diagnose --pid PID --load URL --record FILE"}});
  }
  const auto& m = r.meta;
  nlohmann::json out = {
      {"label", r.label},
      {"meta",
       {{"chokepoint_version", m.chokepoint_version},
        {"kernel", m.kernel},
        {"machine", m.machine},
        {"cpus", m.cpus},
        {"created_unix_s", static_cast<double>(m.created_unix_ns) / 1e9}}},
      {"diagnosis", d},
      {"timeline", *r.timeline},
      {"load", r.load != nullptr ? *r.load : nlohmann::json(nullptr)},
      {"flamegraph", r.profile != nullptr ? nlohmann::json{{"off_cpu", r.profile->off_cpu},
                                                           {"title", r.profile->title},
                                                           {"stacks", r.profile->stacks.size()}}
                                          : nlohmann::json(nullptr)},
      {"recorded_flamegraphs", recorded_graphs_json(r.recorded)},
      {"absent", absent}};
  static const std::vector<store::StackSlice> kNone;
  nlohmann::json range =
      range_stacks_json(r.on_cpu_slices ? *r.on_cpu_slices : kNone,
                        r.off_cpu_slices ? *r.off_cpu_slices : kNone, r.first_ns);
  if (!range.is_null()) out["range_stacks"] = std::move(range);
  if (has_services) out["services"] = *r.services;
  if (r.tiers != nullptr && !r.tiers->is_null()) {
    out["tiers"] = *r.tiers;
    nlohmann::json graphs = nlohmann::json::array();
    for (const auto& g : r.tier_graphs) {
      if (g.profile == nullptr) continue;
      graphs.push_back({{"root_pid", g.root_pid},
                        {"off_cpu", g.profile->off_cpu},
                        {"title", g.profile->title},
                        {"stacks", g.profile->stacks.size()}});
    }
    if (!graphs.empty()) out["tier_flamegraphs"] = std::move(graphs);
  }
  return out;
}

std::string script_json(const nlohmann::json& j) {
  const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size() + text.size() / 16);
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else if (c == '\xe2' && i + 2 < text.size() && text[i + 1] == '\x80' &&
               (text[i + 2] == '\xa8' || text[i + 2] == '\xa9')) {
      out += text[i + 2] == '\xa8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::string report_html(const nlohmann::json& data, const std::string& title,
                        const std::vector<const profile::Profile*>& flamegraphs,
                        const std::vector<std::vector<const profile::Profile*>>& recorded,
                        const std::vector<std::vector<const profile::Profile*>>& tiers) {
  const std::string nonce = make_nonce();
  std::string page;
  page += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  page +=
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src "
      "'nonce-" +
      nonce + "'; style-src 'nonce-" + nonce +
      "'; img-src data:; base-uri 'none'; form-action 'none'\">\n";
  page += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>";
  util::append_xml_escaped(page, util::valid_xml_text(title));
  page += "</title>\n<style nonce=\"" + nonce + "\">\n";
  for (std::string_view part : kUplotCss) page += part;
  page += "\n";
  for (std::string_view part : kReportCss) page += part;
  page +=
      "</style>\n</head>\n<body>\n<noscript>This report draws its panels with JavaScript: "
      "allow scripts for this file.</noscript>\n<main id=\"report\"></main>\n";
  // The flame graphs, drawn here (they carry their own script, under the nonce); the page's
  // script moves each into its recording's column.
  page += "<div id=\"flamegraphs\" hidden>\n";
  for (std::size_t i = 0; i < flamegraphs.size(); ++i) {
    if (flamegraphs[i] == nullptr) continue;
    render::SvgOptions options;
    options.nonce = nonce;
    page += "<div class=\"flamegraph\" data-recording=\"" + std::to_string(i) + "\">\n";
    page += render::flamegraph_svg(*flamegraphs[i], options);
    page += "</div>\n";
  }
  // Recorded stacks over time, then each tier's own: data-graph is the index in the recording's
  // recorded_flamegraphs or tier_flamegraphs.
  auto graphs = [&](const std::vector<std::vector<const profile::Profile*>>& lists,
                    const char* kind) {
    for (std::size_t i = 0; i < lists.size(); ++i) {
      std::size_t graph = 0;
      for (const profile::Profile* p : lists[i]) {
        if (p == nullptr) continue;
        render::SvgOptions options;
        options.nonce = nonce;
        page += std::string("<div class=\"flamegraph ") + kind + "\" data-recording=\"" +
                std::to_string(i) + "\" data-graph=\"" + std::to_string(graph++) + "\">\n";
        page += render::flamegraph_svg(*p, options);
        page += "</div>\n";
      }
    }
  };
  graphs(recorded, "recorded");
  graphs(tiers, "tier");
  page +=
      "</div>\n"
      "<script type=\"application/json\" id=\"report-data\">";
  page += script_json(data);
  page += "</script>\n<script nonce=\"" + nonce + "\">\n";
  for (std::string_view part : kUplotScript) page += part;
  page += "\n</script>\n<script nonce=\"" + nonce + "\">\n";
  for (std::string_view part : kReportScript) page += part;
  page += "\n</script>\n</body>\n</html>\n";
  return page;
}

std::string load_html(const std::string& label, const nlohmann::json& load) {
  const nlohmann::json data = {{"recordings", nlohmann::json::array()},
                               {"diff", nullptr},
                               {"loads", {{{"label", label}, {"load", load}}}}};
  return report_html(data, "chokepoint load: " + label);
}

std::string knee_html(const std::string& label, const nlohmann::json& knee) {
  const nlohmann::json data = {{"recordings", nlohmann::json::array()},
                               {"diff", nullptr},
                               {"knees", {{{"label", label}, {"knee", knee}}}}};
  return report_html(data, "chokepoint knee: " + label);
}

std::string usl_html(const std::string& label, const nlohmann::json& usl) {
  const nlohmann::json data = {{"recordings", nlohmann::json::array()},
                               {"diff", nullptr},
                               {"usls", {{{"label", label}, {"usl", usl}}}}};
  return report_html(data, "chokepoint usl: " + label);
}

}  // namespace chokepoint::report
