#include "report/timeline.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "analysis/diagnosis.h"
#include "report/verdict_changes.h"

namespace chokepoint::report {
namespace {

constexpr std::int64_t kSecondNs = 1'000'000'000;

// A thread's row of the heat map, run-length encoded: [state, detail, count, ...].
struct ThreadRow {
  int pid = 0, tid = 0;
  std::string comm, process;
  std::vector<int> runs;
  int columns = 0;  // columns covered by runs so far
};

void append_run(ThreadRow& row, int state, int detail, int count) {
  if (count <= 0) return;
  const std::size_t n = row.runs.size();
  if (n >= 3 && row.runs[n - 3] == state && row.runs[n - 2] == detail) {
    row.runs[n - 1] += count;
  } else {
    row.runs.insert(row.runs.end(), {state, detail, count});
  }
  row.columns += count;
}

struct ProcessRow {
  std::string name;
  std::vector<nlohmann::json> split;  // per column: 8 shares, or null
};

// One series of a USE panel: a value per column, null where the recording has none.
struct Series {
  std::string name, unit;
  std::vector<nlohmann::json> values;
  bool any = false;
};

struct Panel {
  std::string title, source;
  std::map<std::string, Series> series;  // by name, in the order named below
  std::vector<std::string> order;
};

}  // namespace

class TimelineBuilder::Reducer {
 public:
  explicit Reducer(std::int64_t first_ns) : first_ns_(first_ns), start_ns_(first_ns) {}

  // The observation of the column that ends at end_ns.
  void add_column(const model::Observation& obs, std::int64_t end_ns) {
    const int col = columns_++;
    starts_.push_back(static_cast<double>(start_ns_ - first_ns_) / 1e9);
    start_ns_ = end_ns;
    const double wall_s = static_cast<double>(obs.duration_ns) / 1e9;
    const model::TimeSplit total = model::total_split(obs.threads);
    split_.push_back(shares(total));
    if (obs.threads.empty()) {
      verdicts_.push_back(nullptr);
    } else {
      const analysis::Diagnosis d = analysis::diagnose(obs);
      nlohmann::json v = {{"verdict", analysis::verdict_name(d.verdict)}};
      if (!d.bottlenecks.empty()) {
        v["kind"] = analysis::kind_name(d.bottlenecks.front().kind);
        v["share"] = d.bottlenecks.front().share;
        v["share_text"] = analysis::share_text(d.bottlenecks.front());
      }
      verdicts_.push_back(std::move(v));
    }
    std::map<int, model::TimeSplit> by_process;
    for (const auto& t : obs.threads) {
      if (t.split.total_ns() <= 0) continue;
      by_process[t.key.pid] += t.split;
      ThreadRow& row = threads_[{t.key.pid, t.key.tid, t.key.start_time_ticks}];
      row.pid = t.key.pid;
      row.tid = t.key.tid;
      // The latest names: a thread that named itself after it started, a process that exec'd.
      row.comm = t.comm;
      row.process = t.process_name;
      append_run(row, -1, -1, col - row.columns);
      const auto state = static_cast<std::size_t>(
          std::max_element(t.split.ns.begin(), t.split.ns.end()) - t.split.ns.begin());
      const auto& details = t.details[state];
      int detail = -1;
      if (!details.empty()) {
        const auto top = std::max_element(details.begin(), details.end(),
                                          [](auto& a, auto& b) { return a.second < b.second; });
        detail = detail_id(top->first);
      }
      append_run(row, static_cast<int>(state), detail, 1);
    }
    for (const auto& p : obs.processes) {
      ProcessRow& row = processes_[p.pid];
      if (!p.name.empty()) row.name = p.name;
    }
    for (auto& [pid, row] : processes_) {
      row.split.resize(static_cast<std::size_t>(col), nullptr);
      auto it = by_process.find(pid);
      row.split.push_back(it == by_process.end() ? nlohmann::json(nullptr) : shares(it->second));
    }
    for (const auto& [pid, split] : by_process) {
      ProcessRow& row = processes_[pid];
      if (row.split.size() < static_cast<std::size_t>(col) + 1) {
        row.split.resize(static_cast<std::size_t>(col), nullptr);
        row.split.push_back(shares(split));
      }
    }
    for (const auto& t : obs.threads) {
      ProcessRow& row = processes_[t.key.pid];
      if (row.name.empty()) row.name = t.process_name;
    }
    use_column(obs, total, wall_s);
  }

  nlohmann::json finish(std::int64_t column_ns, std::int64_t first_unix_ns) {
    nlohmann::json j;
    j["column_s"] = static_cast<double>(column_ns) / 1e9;
    j["start_unix_s"] = static_cast<double>(first_unix_ns) / 1e9;
    j["columns"] = starts_;
    j["verdicts"] = verdicts_;
    j["split"] = split_;
    nlohmann::json procs = nlohmann::json::array();
    for (auto& [pid, row] : processes_) {
      row.split.resize(static_cast<std::size_t>(columns_), nullptr);
      procs.push_back({{"pid", pid}, {"name", row.name}, {"split", row.split}});
    }
    j["processes"] = procs;
    nlohmann::json threads = nlohmann::json::array();
    for (auto& [key, row] : threads_) {
      append_run(row, -1, -1, columns_ - row.columns);
      threads.push_back({{"pid", row.pid},
                         {"tid", row.tid},
                         {"comm", row.comm},
                         {"process", row.process},
                         {"runs", row.runs}});
    }
    j["threads"] = threads;
    j["details"] = details_;
    nlohmann::json use = nlohmann::json::array();
    for (auto& p : panels_) {
      nlohmann::json series = nlohmann::json::array();
      for (const auto& name : p.order) {
        Series& s = p.series[name];
        if (!s.any) continue;
        s.values.resize(static_cast<std::size_t>(columns_), nullptr);
        series.push_back({{"name", s.name}, {"unit", s.unit}, {"values", s.values}});
      }
      use.push_back({{"panel", p.title}, {"source", p.source}, {"series", series}});
    }
    j["use"] = use;
    return j;
  }

 private:
  static nlohmann::json shares(const model::TimeSplit& s) {
    nlohmann::json a = nlohmann::json::array();
    const auto total = static_cast<double>(s.total_ns());
    for (auto ns : s.ns) {
      // Three decimals keep the page small; a share is drawn, never summed.
      a.push_back(total > 0 ? std::round(static_cast<double>(ns) / total * 1000) / 1000 : 0.0);
    }
    return a;
  }

  int detail_id(const std::string& text) {
    auto [it, added] = detail_ids_.try_emplace(text, static_cast<int>(details_.size()));
    if (added) details_.push_back(text);
    return it->second;
  }

  Panel& panel(const std::string& title, const std::string& source) {
    for (auto& p : panels_) {
      if (p.title == title) return p;
    }
    panels_.push_back({title, source, {}, {}});
    return panels_.back();
  }

  void put(Panel& p, const std::string& name, const std::string& unit, double value) {
    auto [it, added] = p.series.try_emplace(name);
    if (added) {
      it->second.name = name;
      it->second.unit = unit;
      p.order.push_back(name);
    }
    Series& s = it->second;
    s.values.resize(static_cast<std::size_t>(columns_ - 1), nullptr);
    s.values.emplace_back(std::isfinite(value) ? std::round(value * 1000) / 1000 : 0.0);
    s.any = true;
  }

  // The USE numbers of one column, from what the recording holds for it: schedstat always; the
  // system counters (/proc/stat, diskstats, snmp, PSI, cgroup) when a system sample was kept at
  // both ends of the column (every tick for `chokepoint record`, only the window's ends for
  // `diagnose --record`); tcp_info and /proc/PID/status when the sampler read them in it.
  void use_column(const model::Observation& obs, const model::TimeSplit& total, double wall_s) {
    Panel& cpu =
        panel("CPU", "schedstat (run-queue wait), /proc/stat, /proc/loadavg, PSI, cgroup cpu.stat");
    if (wall_s > 0) {
      put(cpu, "target on CPU", "cores",
          static_cast<double>(total[model::Resource::kOnCpu]) / 1e9 / wall_s);
      put(cpu, "target run-queue wait", "cores",
          static_cast<double>(total[model::Resource::kCpuWait]) / 1e9 / wall_s);
    }
    const auto& s = obs.system;
    const bool system = s.cpus_online > 0;
    if (system) {
      put(cpu, "system CPU utilisation", "%", s.cpu_utilization * 100);
      put(cpu, "runnable tasks", "tasks", s.run_queue_avg);
      if (s.psi_cpu.available) put(cpu, "PSI cpu some", "%", s.psi_cpu.some_share * 100);
      if (!s.cgroup_path.empty()) put(cpu, "cgroup throttled", "%", s.cgroup_throttled_share * 100);
    }
    Panel& disk = panel("Disk", "/proc/diskstats (whole disks), PSI io");
    if (system) {
      for (const auto& d : s.disks) {
        put(disk, d.name + " utilisation", "%", d.utilization * 100);
        put(disk, d.name + " await", "ms", d.await_ms);
        put(disk, d.name + " queue depth", "IOs", d.queue_depth);
        put(disk, d.name + " flushes", "/s", d.flushes_per_s);
      }
      if (s.psi_io.available) put(disk, "PSI io some", "%", s.psi_io.some_share * 100);
    }
    Panel& net = panel(
        "Network", "/proc/net/snmp and netstat of the target's namespace; tcp_info (sock_diag)");
    if (system) {
      put(net, "TCP retransmits", "/s", s.tcp_retrans_per_s);
      put(net, "listen overflows", "count", static_cast<double>(s.listen_overflows));
    }
    std::uint64_t rtt_us = 0, sent = 0;
    bool sockets = false;
    for (const auto& p : obs.processes) {
      if (p.open_fds == 0) continue;  // the fd table (and so the sockets) was not read
      sockets = true;
      rtt_us = std::max(rtt_us, p.upstream_rtt_us_max);
      sent += p.bytes_sent_per_s;
    }
    if (sockets) {
      put(net, "max upstream RTT", "ms", static_cast<double>(rtt_us) / 1000);
      put(net, "sent (bytes acked)", "MB/s", static_cast<double>(sent) / 1e6);
    }
    Panel& mem = panel("Memory", "/proc/PID/status (RSS), /proc/vmstat, PSI memory");
    std::uint64_t rss = 0;
    bool status = false;
    for (const auto& p : obs.processes) {
      if (p.rss_max_bytes == 0) continue;
      status = true;
      rss += p.rss_end_bytes;
    }
    if (status) put(mem, "target RSS", "MB", static_cast<double>(rss) / 1e6);
    if (system) {
      put(mem, "major faults", "/s", s.majflt_per_s);
      put(mem, "refaults", "/s", s.refaults_per_s);
      if (s.psi_memory.available) put(mem, "PSI memory some", "%", s.psi_memory.some_share * 100);
    }
  }

  std::int64_t first_ns_;
  std::int64_t start_ns_;
  std::vector<double> starts_;  // each column's start, s from the first tick
  int columns_ = 0;
  std::vector<nlohmann::json> verdicts_, split_;
  // By pid, tid and start time (model::ThreadKey's order, without its defaulted <=>).
  std::map<std::tuple<int, int, std::uint64_t>, ThreadRow> threads_;
  std::map<int, ProcessRow> processes_;
  std::map<std::string, int> detail_ids_;
  std::vector<std::string> details_;
  std::vector<Panel> panels_;
};

std::int64_t column_length_ns(std::int64_t length_ns, std::int64_t interval_ns,
                              const TimelineOptions& options) {
  if (options.column_ns > 0) return options.column_ns;
  const std::int64_t at_least = std::max<std::int64_t>(
      {interval_ns, 1, (length_ns + options.max_columns - 1) / std::max(1, options.max_columns)});
  // Readable lengths: a reader counts columns in seconds and minutes.
  static constexpr std::array<std::int64_t, 14> kSteps = {
      100'000'000,     200'000'000,     500'000'000,     kSecondNs,       2 * kSecondNs,
      5 * kSecondNs,   10 * kSecondNs,  15 * kSecondNs,  30 * kSecondNs,  60 * kSecondNs,
      120 * kSecondNs, 300 * kSecondNs, 600 * kSecondNs, 1800 * kSecondNs};
  for (auto step : kSteps) {
    if (step >= at_least) return step;
  }
  return (at_least + 3600 * kSecondNs - 1) / (3600 * kSecondNs) * 3600 * kSecondNs;
}

TimelineBuilder::TimelineBuilder(const model::RecordingInfo& info, std::int64_t first_ns,
                                 std::int64_t last_ns, const TimelineOptions& options)
    : first_ns_(first_ns),
      last_ns_(std::max(first_ns, last_ns)),
      column_ns_(column_length_ns(last_ns_ - first_ns_, info.interval_ns, options)),
      next_cut_ns_(first_ns_ + column_ns_),
      column_(std::make_unique<model::ObservationBuilder>(info, first_ns_, last_ns_)),
      reducer_(std::make_unique<Reducer>(first_ns_)),
      starts_ns_{first_ns_} {}

TimelineBuilder::~TimelineBuilder() = default;

void TimelineBuilder::add(const model::Tick& tick) {
  if (!column_->add(tick)) return;
  connections_.add(tick, column_index_);
  // A column ends at the first tick at or past its nominal end, so that no thread's interval is
  // cut in two (a cut interval's counters would be clamped to its part of the wall time).
  // A tail shorter than half a column (the closing reads, just after the last poll) joins the
  // column before it.
  if (tick.at_ns >= next_cut_ns_ && last_ns_ - tick.at_ns >= column_ns_ / 2) {
    reducer_->add_column(column_->cut_after(tick), tick.at_ns);
    starts_ns_.push_back(tick.at_ns);
    ++column_index_;
    while (next_cut_ns_ <= tick.at_ns) next_cut_ns_ += column_ns_;
  }
}

nlohmann::json TimelineBuilder::finish(std::int64_t first_unix_ns) {
  reducer_->add_column(column_->finish(), last_ns_);
  nlohmann::json j = reducer_->finish(column_ns_, first_unix_ns);
  j["changes"] = verdict_changes(j);
  j["connections"] = connections_.finish(column_index_ + 1);
  return j;
}

VerdictWindow verdict_window(const nlohmann::json& timeline, const std::string& verdict,
                             const std::string& kind) {
  VerdictWindow w;
  const auto columns = timeline.value("columns", nlohmann::json::array());
  const auto verdicts = timeline.value("verdicts", nlohmann::json::array());
  const double column_s = timeline.value("column_s", 0.0);
  w.of_columns = columns.size();
  for (std::size_t i = 0; i < columns.size() && i < verdicts.size(); ++i) {
    const auto& v = verdicts[i];
    if (!v.is_object() || v.value("verdict", "") != verdict) continue;
    if (!kind.empty() && v.value("kind", "") != kind) continue;
    const double start = columns[i].get<double>();
    const double end = i + 1 < columns.size() ? columns[i + 1].get<double>() : start + column_s;
    ++w.columns;
    if (!w.spans_s.empty() && w.spans_s.back().second >= start) {
      w.spans_s.back().second = end;
    } else {
      w.spans_s.emplace_back(start, end);
    }
  }
  return w;
}

}  // namespace chokepoint::report
