#pragma once
// The report page: one self-contained HTML file that draws a recording (or two, before and after)
// with no network at view time. The chart library (uPlot, pinned from npm by scripts/setup) and
// the page's own script and style (src/report/assets/) are inlined at build time; the data goes in
// as JSON in a <script type="application/json"> block, escaped so that no observed string can end
// that block; a Content-Security-Policy meta tag allows only the page's own scripts and styles
// (by a per-page nonce): no eval, no inline handlers, nothing fetched.
//
// Pure functions of their input (the nonce aside); no I/O.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/diagnosis.h"
#include "model/observation.h"
#include "profile/profile.h"
#include "store/recording.h"

namespace chokepoint::report {

// A flame graph of the stacks `chokepoint record` kept over time (schema 3), over a part of the
// recording that `scope` names ("the whole recording", "the verdict's window: ...").
struct RecordedFlameGraph {
  const profile::Profile* profile = nullptr;
  std::string scope;
};

// The stacks a multi-tier diagnose --record took for one tier's verdict (the
// "diagnose_tier_stacks" note), drawn in that tier's row of the tiers panel.
struct TierFlameGraph {
  int root_pid = 0;
  const profile::Profile* profile = nullptr;
};

// What the page shows of one recording.
struct RecordingPage {
  std::string label;  // the path as the user named it
  store::RecordingMeta meta;
  const model::Observation* whole = nullptr;  // the whole recording, as replay diagnoses it
  const analysis::Diagnosis* diagnosis = nullptr;
  const nlohmann::json* timeline = nullptr;   // report::Timeline::json
  const nlohmann::json* load = nullptr;       // the load diagnose --load drove (null: none)
  bool stacks_kept = false;                   // diagnose kept stack evidence (in the evidence)
  const profile::Profile* profile = nullptr;  // the stacks diagnose kept (null: none)
  std::vector<RecordedFlameGraph> recorded;   // stacks over time (record), in page order
  // The slices of those stacks (null or empty: none), for flame graphs of a range the reader
  // chooses (report/range_stacks.h); first_ns: the recording's first tick, the page's time 0.
  const std::vector<store::StackSlice>* on_cpu_slices = nullptr;
  const std::vector<store::StackSlice>* off_cpu_slices = nullptr;
  std::int64_t first_ns = 0;
  // When `recorded` is empty: why the recording has no stacks over time (empty: it was made by
  // diagnose --record, or before schema 3).
  std::string recorded_absent_why;
  // The services' own statistics over time (report/service_series.h; null or empty: the
  // recording probed no service, or kept no polls).
  const nlohmann::json* services = nullptr;
  // The recording probed services but kept their summary only (made before schema 5).
  bool services_summary_only = false;
  // A multi-tier recording's tiers (render/tiers_report.h tiers_json, each tier's diagnosis
  // without its per-thread list); null: one target.
  const nlohmann::json* tiers = nullptr;
  // Each tier's own stacks, in the tiers' order (empty: none kept, or one target).
  std::vector<TierFlameGraph> tier_graphs;
};

// The JSON the page draws for one recording: label, meta, diagnosis (render::diagnosis_json
// without its per-thread list, which the heat map carries), timeline, load, flamegraph (the kept
// profile's kind and title, or null), recorded_flamegraphs ([{off_cpu, title, stacks, scope}],
// the stacks over time), "range_stacks" (report/range_stacks.h; only when the recording has stack
// slices), "services" (report/service_series.h; only when there are some), "tiers" (only for a
// multi-tier recording), "tier_flamegraphs" ([{root_pid, off_cpu, title, stacks}], each tier's
// own stacks; only for a multi-tier recording that kept some), and "absent": the panels this
// recording has no data for, each with why and how to get it.
nlohmann::json recording_json(const RecordingPage& r);

// JSON text safe inside <script type="application/json">: '<', '>', '&', U+2028 and U+2029 are
// written as \u escapes (the same JSON value), so no string can close the block or open a
// comment; invalid UTF-8 is replaced.
std::string script_json(const nlohmann::json& j);

// The page: {"recordings": [recording_json, ...], "diff": render::diagnosis_diff_json or null,
// "loads": [{"label", "load"}] (optional: load runs drawn on their own, `chokepoint load -o`),
// "knees": [{"label", "knee"}] (optional: knee runs, `chokepoint knee -o`),
// "usls": [{"label", "usl"}] (optional: fits of measured rows, `chokepoint usl -o`)}.
// `flamegraphs[i]` (null or missing: none) is recording i's kept profile: drawn by
// render/flamegraph_svg.h inline in the page, its script and style under the page's CSP nonce,
// interactive as the SVG file is (click to zoom, search). `recorded[i]` are recording i's
// recorded_flamegraphs, drawn the same way, in the same order; `tiers[i]` its tier_flamegraphs.
std::string report_html(const nlohmann::json& data, const std::string& title,
                        const std::vector<const profile::Profile*>& flamegraphs = {},
                        const std::vector<std::vector<const profile::Profile*>>& recorded = {},
                        const std::vector<std::vector<const profile::Profile*>>& tiers = {});

// The page of one `chokepoint load` run: its load JSON (render/load_report.h load_json), drawn as
// the report's load panel. `label` names the run (its URL).
std::string load_html(const std::string& label, const nlohmann::json& load);

// The page of one `chokepoint knee` run: its JSON (render/knee_report.h knee_json), drawn as the
// knee curve (achieved rate and latency against offered rate, the SLO line, the knee) and the USL
// fit (the fitted curve over the measured points, its parameters, the projected peak). `label`
// names the run (its URL).
std::string knee_html(const std::string& label, const nlohmann::json& knee);

// The page of one `chokepoint usl` fit: `usl` holds "points" ([{concurrency, throughput}]) and the
// fit (render/knee_report.h add_usl_fit_json), drawn as the knee page's USL panel: the fitted
// curve over the measured points, its parameters, the peak. `label` names the data (its file).
std::string usl_html(const std::string& label, const nlohmann::json& usl);

}  // namespace chokepoint::report
