#include "render/load_report.h"

#include <fmt/format.h>

#include "util/escape.h"

namespace chokepoint::render {

double to_ms(std::int64_t us) {
  return static_cast<double>(us) / 1000.0;
}

nlohmann::json percentiles_json(const loadgen::Histogram& h) {
  if (h.count() == 0) {
    // No response, no latency: null rather than 0 (which would read as "fast").
    return {{"p50", nullptr},  {"p90", nullptr},   {"p99", nullptr},
            {"p999", nullptr}, {"p9999", nullptr}, {"max", nullptr},
            {"min", nullptr},  {"mean", nullptr},  {"count", 0}};
  }
  return {{"p50", to_ms(h.percentile_us(50))},
          {"p90", to_ms(h.percentile_us(90))},
          {"p99", to_ms(h.percentile_us(99))},
          {"p999", to_ms(h.percentile_us(99.9))},
          {"p9999", to_ms(h.percentile_us(99.99))},
          {"max", to_ms(h.max_us())},
          {"min", to_ms(h.min_us())},
          {"mean", h.mean_us() / 1000.0},
          {"count", h.count()}};
}

std::string percentiles_text(const loadgen::Histogram& h) {
  // With no response there is no latency: zeros would read as "fast".
  if (h.count() == 0) return "no successful requests";
  return fmt::format(
      "p50 {:.3f}  p90 {:.3f}  p99 {:.3f}  p99.9 {:.3f}  p99.99 {:.3f}  max {:.3f} ms",
      to_ms(h.percentile_us(50)), to_ms(h.percentile_us(90)), to_ms(h.percentile_us(99)),
      to_ms(h.percentile_us(99.9)), to_ms(h.percentile_us(99.99)), to_ms(h.max_us()));
}

nlohmann::json load_json(const loadgen::LoadResult& r, const loadgen::LoadOptions& o,
                         const loadgen::LoadAssessment& a, const std::vector<std::string>& urls) {
  const bool open_loop = o.rate_per_s > 0;
  nlohmann::json j;
  j["urls"] = urls;
  j["mode"] = open_loop ? "open" : "closed";
  j["protocol"] = o.h2 ? "h2c" : "http/1.1";
  j["target_rate"] = open_loop ? nlohmann::json(o.rate_per_s) : nlohmann::json(nullptr);
  j["threads"] = r.threads;
  j["connections"] = r.connections;
  j["requests"] = r.requests;
  j["duration_s"] = r.duration_s;
  j["rps"] = a.rps;
  j["latency_ms"] = percentiles_json(r.latency);
  j["service_time_ms"] = percentiles_json(r.service);
  nlohmann::json errors;
  for (int k = 1; k < loadgen::kOutcomeCount; ++k) {
    errors[loadgen::outcome_name(static_cast<loadgen::Outcome>(k))] = r.outcomes[k];
  }
  j["ok"] = r.outcomes[0];
  j["errors"] = errors;
  j["status"] = {{"1xx", r.status_classes[1]}, {"2xx", r.status_classes[2]},
                 {"3xx", r.status_classes[3]}, {"4xx", r.status_classes[4]},
                 {"5xx", r.status_classes[5]}, {"other", r.status_classes[0]}};
  j["requests_per_url"] = r.requests_per_url;
  j["warmup_requests"] = r.warmup_requests;
  j["late_sends"] = r.late_sends;
  j["dropped_sends"] = r.dropped_sends;
  j["max_send_delay_ms"] = to_ms(r.max_send_delay_us);
  j["connects"] = r.connects;
  j["bytes_read"] = r.bytes_read;
  j["bytes_written"] = r.bytes_written;
  j["connections_needed"] = a.connections_needed;
  j["fell_behind"] = a.fell_behind;
  j["too_few_connections"] = a.too_few_connections;
  j["server_stalled"] = a.server_stalled;
  const loadgen::ResponseGap& gap = r.longest_response_gap;
  j["longest_response_gap"] = {
      {"at_s", static_cast<double>(gap.start_ns) / 1e9},
      {"ms", static_cast<double>(gap.duration_ns) / 1e6},
      {"outstanding", gap.outstanding},
      {"generator_gap_ms", static_cast<double>(gap.generator_gap_ns) / 1e6}};
  j["warnings"] = a.warnings;
  j["slowest"] = nlohmann::json::array();
  for (const auto& s : r.slowest) {
    j["slowest"].push_back({{"trace_id", s.trace_id},
                            {"latency_ms", to_ms(s.latency_us)},
                            {"service_time_ms", to_ms(s.service_us)},
                            {"outcome", loadgen::outcome_name(s.outcome)},
                            {"status", s.status},
                            {"url", s.url_index < urls.size() ? urls[s.url_index] : ""}});
  }
  // Second 0 of the timeline on the wall clock: where the load lies on a recording's time axis.
  j["start_unix_s"] = static_cast<double>(r.start_unix_ns) / 1e9;
  j["timeline"] = nlohmann::json::array();
  for (std::size_t s = 0; s < r.timeline.size(); ++s) {
    const auto& b = r.timeline[s];
    const auto& p = b.percentiles;
    // A second with no complete response has no latency: null, not 0 (which would read as fast).
    auto ms = [&](std::int64_t us) {
      return p.count > 0 ? nlohmann::json(to_ms(us)) : nlohmann::json(nullptr);
    };
    j["timeline"].push_back(
        {{"second", s},
         {"requests", b.requests},
         {"errors", b.errors},
         {"mean_ms", b.latency_count ? b.latency_sum_us / 1000.0 / b.latency_count : 0.0},
         {"max_ms", to_ms(b.latency_max_us)},
         {"p50_ms", ms(p.p50_us)},
         {"p90_ms", ms(p.p90_us)},
         {"p99_ms", ms(p.p99_us)},
         {"p999_ms", ms(p.p999_us)},
         {"service_p50_ms", ms(p.service_p50_us)},
         {"service_p99_ms", ms(p.service_p99_us)}});
  }
  return j;
}

std::string load_text_summary(const loadgen::LoadResult& r, const loadgen::LoadOptions& o,
                              const loadgen::LoadAssessment& a, const std::string& indent) {
  const bool open_loop = o.rate_per_s > 0;
  std::string out = fmt::format("{}requests   {} in {:.2f} s = {:.1f} req/s", indent, r.requests,
                                r.duration_s, a.rps);
  if (open_loop) out += fmt::format(" ({:.1f}% of target)", a.achieved_ratio * 100);
  out += "\n" + fmt::format("{}outcomes   ok {}", indent, r.outcomes[0]);
  for (int k = 1; k < loadgen::kOutcomeCount; ++k) {
    out += fmt::format("  {} {}", loadgen::outcome_name(static_cast<loadgen::Outcome>(k)),
                       r.outcomes[k]);
  }
  if (r.latency.count() == 0) {
    out += "\n" + indent + "latency    " + percentiles_text(r.latency) + "\n";
  } else {
    out += "\n" + indent + "latency    " + percentiles_text(r.latency) +
           (open_loop ? "  (from intended send time)\n" : "\n");
    out += indent + "service    " + percentiles_text(r.service) + "  (uncorrected)\n";
  }
  if (open_loop) {
    out += fmt::format("{}sends      {} late (> {} ms), {} dropped, max delay {:.3f} ms", indent,
                       r.late_sends, o.late_threshold_ns / 1'000'000, r.dropped_sends,
                       to_ms(r.max_send_delay_us));
    // Little's law needs a service time, which only responses give.
    if (r.service.count() > 0) {
      out += fmt::format("; Little's law needs {:.1f} connections", a.connections_needed);
    }
    out += "\n";
  }
  if (r.warmup_requests > 0) {
    out += fmt::format("{}warmup     {} requests not counted\n", indent, r.warmup_requests);
  }
  // Warnings quote the first failure, which may hold the server's own bytes.
  for (const auto& w : a.warnings) out += indent + "warning: " + util::terminal_text(w) + "\n";
  return out;
}

}  // namespace chokepoint::render
