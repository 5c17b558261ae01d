#pragma once
// The services' own statistics over time, for the report page's services panel: every poll a
// recording kept of each service probe (schema 5, store/probe_series.h) reduced to the page's
// columns, as a few key series per service (Redis: commands/s, hit ratio, evictions, time per
// command, clients, memory; PostgreSQL: commits/s, cache hit ratio, WAL, time per statement,
// backends and their wait events; memcached, nginx, HAProxy alike), each chart naming the
// service's own fields it comes from.
//
// Rates are the counters' growth between consecutive polls that hold them, summed over the polls
// of a column (a counter that went down was reset: no rate across it); gauges are the mean of a
// column's polls. Pure; every string is observed (endpoints, backend names, wait events): the
// page renders it as text only.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "model/service.h"

namespace chokepoint::report {

// The page's columns as the timeline cut them (at ticks, so not all of one length): column i
// holds the polls made in [starts_ns[i], starts_ns[i + 1]); polls before the first start count in
// the first column, after the last start in the last.
struct ColumnGrid {
  std::vector<std::int64_t> starts_ns;  // ascending
};

// At most this many backends of one HAProxy, and wait events of one PostgreSQL, get a series
// of their own (the most active; the rest of the wait events are summed as "other").
inline constexpr std::size_t kMaxServiceSeriesParts = 6;

// [{"kind", "endpoint", "how", "polls" (good polls), "failed", "error", "hint" (the last
// failure; empty: none), "charts": [{"title", "unit", "source", "series": [{"name", "values":
// [number or null per column]}]}]}], one per probe in the probes' order; a chart whose every
// value is null is left out. Empty when there are no probes.
nlohmann::json service_series_json(const std::vector<model::ServiceProbe>& probes,
                                   const std::vector<model::ServicePoll>& polls,
                                   const ColumnGrid& grid);

}  // namespace chokepoint::report
