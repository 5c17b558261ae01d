#pragma once
// A recording cut into columns of equal length and reduced to what the report page draws: the
// verdict of each column (today's rules re-run on it), the 8-state time split of the target and
// of each process, each thread's main state per column (for the heat map), and the USE series
// the recording holds, each with its source. One pass over the recording: the columns are
// consecutive windows of one model::ObservationBuilder (cut_after), and the whole
// recording's observation is the replay's, built beside them.
//
// Every string in the JSON is observed (names, paths, peers) and hostile: the page escapes it
// for its context (render it as text only).

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "model/builder.h"
#include "model/observation.h"
#include "model/samples.h"
#include "report/connection_rtt.h"

namespace chokepoint::report {

struct TimelineOptions {
  // The length of a column; 0: chosen so that the recording has at most max_columns columns, at
  // least one sampling interval each, rounded up to a readable length (1 s, 2 s, 5 s, 10 s ...).
  std::int64_t column_ns = 0;
  int max_columns = 120;
};

// The length a column gets for a recording of length_ns sampled every interval_ns.
std::int64_t column_length_ns(std::int64_t length_ns, std::int64_t interval_ns,
                              const TimelineOptions& options);

// Fed the ticks of a recording in time order (beside the whole window's replay, in the same
// pass), then finished once. The JSON:
// {"column_s", "start_unix_s", "columns": [each column's start, s from the first tick], "verdicts":
// [{verdict, kind, share} or null per column], "split": [[8 shares of thread time] per column],
// "processes": [{pid, name, split}], "threads": [{pid, tid, comm, process, runs: [state, detail,
// count, ...]}], "details": [strings], "use": [{panel, source, series: [{name, unit, values}]}],
// "changes": [why the verdict changed at each change, report/verdict_changes.h], "connections":
// each connection's RTT and retransmits per column, the slowest first (report/connection_rtt.h;
// null when the recording has no connection)}.
// A heat-map state is the model::Resource index, -1 where the thread was not seen; a detail is an
// index into "details" (the wait the thread spent most of that state in), -1 for none.
class TimelineBuilder {
 public:
  // The columns cover [first_ns, last_ns] (monotonic ns), each cut at the first tick at or past its
  // nominal end (a multiple of column_ns from first_ns); the last one may be shorter.
  TimelineBuilder(const model::RecordingInfo& info, std::int64_t first_ns, std::int64_t last_ns,
                  const TimelineOptions& options = {});
  ~TimelineBuilder();
  TimelineBuilder(const TimelineBuilder&) = delete;
  TimelineBuilder& operator=(const TimelineBuilder&) = delete;

  void add(const model::Tick& tick);
  // first_unix_ns: the wall-clock time of first_ns (for the page's axis). Call once.
  nlohmann::json finish(std::int64_t first_unix_ns);
  // Each column's start (monotonic ns), as the ticks cut them: the first is first_ns. Columns
  // are not all of one length (the services' polls go to these: report/service_series.h).
  const std::vector<std::int64_t>& column_starts_ns() const { return starts_ns_; }

 private:
  class Reducer;
  std::int64_t first_ns_, last_ns_, column_ns_;
  std::int64_t next_cut_ns_;
  std::unique_ptr<model::ObservationBuilder> column_;
  std::unique_ptr<Reducer> reducer_;
  ConnectionRtt connections_;
  int column_index_ = 0;  // the column the next tick belongs to
  std::vector<std::int64_t> starts_ns_;
};

// The columns of a finished timeline whose verdict is `verdict` (analysis::verdict_name) of kind
// `kind` (analysis::kind_name; empty: any), merged where adjacent: [start_s, end_s) from the first
// tick, and how many columns that is. The window the whole recording's verdict describes.
struct VerdictWindow {
  std::vector<std::pair<double, double>> spans_s;
  std::size_t columns = 0, of_columns = 0;
};
VerdictWindow verdict_window(const nlohmann::json& timeline, const std::string& verdict,
                             const std::string& kind);

}  // namespace chokepoint::report
