#include "render/top_frame.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "analysis/verdict.h"
#include "render/diagnosis_report.h"
#include "render/json_text.h"
#include "util/escape.h"

namespace chokepoint::render {

namespace {

using model::Resource;
using util::terminal_text;

constexpr int kRowBarWidth = 10;
constexpr int kHeaderBarWidth = 50;

struct ThreadRow {
  const model::ThreadAccount* account = nullptr;
  double cpu_pct = 0, runq_pct = 0;
  std::string wait;  // "disk: fdatasync /data/log"; empty when it mostly ran or idled
};

struct ProcessRow {
  int pid = 0;
  std::string name;
  model::TimeSplit split;
  double cpu_pct = 0, runq_pct = 0;
  double read_bytes_per_s = 0, write_bytes_per_s = 0;
  std::uint64_t rss_bytes = 0;
  std::int64_t rss_growth_bytes = 0;
  std::vector<ThreadRow> threads;  // all of them, sorted
  std::size_t thread_count = 0;
};

double pct(std::int64_t ns, std::int64_t window_ns) {
  return window_ns > 0 ? 100.0 * static_cast<double>(ns) / static_cast<double>(window_ns) : 0;
}

// The wait a thread spent most of its off-CPU time in: a resource it waited on (disk, network,
// lock, memory) when there is one, else sleep or idle; with its most common detail.
std::string main_wait(const model::ThreadAccount& t) {
  Resource best = Resource::kIdle;
  std::int64_t best_ns = 0;
  for (Resource r : {Resource::kDisk, Resource::kNetwork, Resource::kLock, Resource::kMemory}) {
    if (t.split[r] > best_ns) {
      best = r;
      best_ns = t.split[r];
    }
  }
  if (best_ns == 0) {
    for (Resource r : {Resource::kSleep, Resource::kIdle}) {
      if (t.split[r] > best_ns) {
        best = r;
        best_ns = t.split[r];
      }
    }
  }
  if (best_ns == 0) return {};
  const auto& details = t.details[static_cast<std::size_t>(best)];
  const auto top =
      std::max_element(details.begin(), details.end(),
                       [](const auto& a, const auto& b) { return a.second < b.second; });
  std::string out(model::resource_name(best));
  if (top != details.end() && !top->first.empty()) out += ": " + top->first;
  return out;
}

std::vector<ProcessRow> build_rows(const model::Observation& obs, TopSort sort) {
  std::map<int, ProcessRow> by_pid;
  for (const auto& p : obs.processes) {
    auto& row = by_pid[p.pid];
    row.pid = p.pid;
    row.name = p.name;
    const double s = static_cast<double>(obs.duration_ns) / 1e9;
    if (s > 0) {
      row.read_bytes_per_s = static_cast<double>(p.read_bytes) / s;
      row.write_bytes_per_s = static_cast<double>(p.write_bytes) / s;
    }
    row.rss_bytes = p.rss_end_bytes;
    row.rss_growth_bytes =
        static_cast<std::int64_t>(p.rss_end_bytes) - static_cast<std::int64_t>(p.rss_start_bytes);
  }
  for (const auto& t : obs.threads) {
    auto& row = by_pid[t.key.pid];
    if (row.pid == 0) {
      row.pid = t.key.pid;
      row.name = t.process_name;
    }
    row.split += t.split;
    ThreadRow tr;
    tr.account = &t;
    tr.cpu_pct = pct(t.split[Resource::kOnCpu], obs.duration_ns);
    tr.runq_pct = pct(t.split[Resource::kCpuWait], obs.duration_ns);
    tr.wait = main_wait(t);
    row.threads.push_back(std::move(tr));
  }
  std::vector<ProcessRow> rows;
  for (auto& [pid, row] : by_pid) {
    row.cpu_pct = pct(row.split[Resource::kOnCpu], obs.duration_ns);
    row.runq_pct = pct(row.split[Resource::kCpuWait], obs.duration_ns);
    row.thread_count = row.threads.size();
    rows.push_back(std::move(row));
  }
  auto thread_less = [sort](const ThreadRow& a, const ThreadRow& b) {
    const auto& x = *a.account;
    const auto& y = *b.account;
    switch (sort) {
      case TopSort::kRunQueue:
        if (a.runq_pct != b.runq_pct) return a.runq_pct > b.runq_pct;
        break;
      case TopSort::kDisk:
        if (x.split[Resource::kDisk] != y.split[Resource::kDisk])
          return x.split[Resource::kDisk] > y.split[Resource::kDisk];
        break;
      case TopSort::kName:
        if (x.comm != y.comm) return x.comm < y.comm;
        break;
      case TopSort::kPid:
        break;
      case TopSort::kCpu:
      case TopSort::kRss:
        if (a.cpu_pct != b.cpu_pct) return a.cpu_pct > b.cpu_pct;
        break;
    }
    return x.key.tid < y.key.tid;
  };
  auto process_less = [sort](const ProcessRow& a, const ProcessRow& b) {
    switch (sort) {
      case TopSort::kCpu:
        if (a.cpu_pct != b.cpu_pct) return a.cpu_pct > b.cpu_pct;
        break;
      case TopSort::kRunQueue:
        if (a.runq_pct != b.runq_pct) return a.runq_pct > b.runq_pct;
        break;
      case TopSort::kDisk: {
        const double x = a.read_bytes_per_s + a.write_bytes_per_s;
        const double y = b.read_bytes_per_s + b.write_bytes_per_s;
        if (x != y) return x > y;
        if (a.split[Resource::kDisk] != b.split[Resource::kDisk])
          return a.split[Resource::kDisk] > b.split[Resource::kDisk];
        break;
      }
      case TopSort::kRss:
        if (a.rss_bytes != b.rss_bytes) return a.rss_bytes > b.rss_bytes;
        break;
      case TopSort::kName:
        if (a.name != b.name) return a.name < b.name;
        break;
      case TopSort::kPid:
        break;
    }
    return a.pid < b.pid;
  };
  for (auto& row : rows) std::sort(row.threads.begin(), row.threads.end(), thread_less);
  std::sort(rows.begin(), rows.end(), process_less);
  return rows;
}

std::string signed_bytes_short(std::int64_t bytes) {
  if (bytes == 0) return "0";
  return (bytes > 0 ? "+" : "-") + top_bytes_short(static_cast<double>(bytes > 0 ? bytes : -bytes));
}

bool busy_thread(const ThreadRow& t) {
  return t.account->split.busy_ns() > 0;
}

std::string verdict_line(const analysis::Diagnosis& d) {
  if (d.verdict == analysis::Verdict::kNone || d.bottlenecks.empty()) {
    return "verdict: none - nothing limits the target now" +
           (d.headroom.empty() ? std::string() : "; " + terminal_text(d.headroom));
  }
  const auto& b = d.bottlenecks.front();
  std::string out =
      fmt::format("verdict: {} ({}) - {}, confidence {:.2f}", analysis::verdict_name(b.resource),
                  analysis::kind_name(b.kind), analysis::share_text(b), b.confidence);
  if (!b.evidence.empty()) out += "\n  " + terminal_text(b.evidence.front());
  return out;
}

std::string system_lines(const model::Observation& obs) {
  const auto& s = obs.system;
  if (s.cpus_online == 0) {
    // A recording made by diagnose reads the system at its window's ends only.
    return "cpu, disk, net: not sampled in this window\n";
  }
  std::string out =
      fmt::format("cpu: {:.0f}% of {} cpus busy, iowait {:.0f}%, run queue {:.1f}",
                  100 * s.cpu_utilization, s.cpus_online, 100 * s.iowait_share, s.run_queue_avg);
  auto psi = [](const char* name, const model::PsiSummary& p) {
    return p.available ? fmt::format(" {} {:.0f}%", name, 100 * p.some_share)
                       : fmt::format(" {} -", name);
  };
  out += "  psi some:" + psi("cpu", s.psi_cpu) + psi("io", s.psi_io) + psi("mem", s.psi_memory);
  out += fmt::format("  mem: {} of {} available\n",
                     top_bytes_short(static_cast<double>(s.mem_available_bytes)),
                     top_bytes_short(static_cast<double>(s.mem_total_bytes)));
  std::string disks;
  for (const auto& d : s.disks) {
    if (d.utilization <= 0 && d.reads_per_s <= 0 && d.writes_per_s <= 0) continue;
    disks +=
        fmt::format("{}{} {:.0f}% r {}/s w {}/s await {:.2f} ms", disks.empty() ? "" : ", ",
                    terminal_text(d.name), 100 * d.utilization, top_bytes_short(d.read_bytes_per_s),
                    top_bytes_short(d.write_bytes_per_s), d.await_ms);
  }
  out += "disk: " + (disks.empty() ? std::string("idle") : disks);
  out += fmt::format("  net: {:.1f} retrans/s, {} listen overflows, {} time-wait\n",
                     s.tcp_retrans_per_s, s.listen_overflows, s.time_wait);
  return out;
}

nlohmann::json split_json(const model::TimeSplit& split) {
  nlohmann::json j = nlohmann::json::object();
  const double total = static_cast<double>(split.total_ns());
  for (std::size_t i = 0; i < model::kResourceCount; ++i) {
    const double share = total > 0 ? static_cast<double>(split.ns[i]) / total : 0;
    j[std::string(model::resource_name(static_cast<Resource>(i)))] =
        std::round(share * 1000) / 1000;
  }
  return j;
}

double round2(double v) {
  return std::round(v * 100) / 100;
}

}  // namespace

std::string top_bytes_short(double bytes) {
  constexpr std::array<const char*, 5> kUnits = {"", "K", "M", "G", "T"};
  std::size_t u = 0;
  while (bytes >= 999.5 && u + 1 < kUnits.size()) {
    bytes /= 1024;
    ++u;
  }
  if (u == 0) return fmt::format("{:.0f}", bytes);
  return bytes < 9.95 ? fmt::format("{:.1f}{}", bytes, kUnits[u])
                      : fmt::format("{:.0f}{}", bytes, kUnits[u]);
}

std::string_view top_sort_name(TopSort sort) {
  switch (sort) {
    case TopSort::kCpu:
      return "cpu";
    case TopSort::kRunQueue:
      return "runq";
    case TopSort::kDisk:
      return "disk";
    case TopSort::kRss:
      return "rss";
    case TopSort::kPid:
      return "pid";
    case TopSort::kName:
      return "name";
  }
  return "cpu";
}

std::optional<TopSort> top_sort_from_name(std::string_view name) {
  for (TopSort s : {TopSort::kCpu, TopSort::kRunQueue, TopSort::kDisk, TopSort::kRss, TopSort::kPid,
                    TopSort::kName}) {
    if (top_sort_name(s) == name) return s;
  }
  return std::nullopt;
}

TopFrameLines top_frame_lines(const model::Observation& obs, const analysis::Diagnosis& d,
                              const TopFrameInfo& info, const TopFrameOptions& options) {
  const std::string who = obs.target.kind == "host"
                              ? "the whole host"
                              : obs.target.kind + " " + terminal_text(obs.target.spec);
  TopFrameLines out;
  out.header = fmt::format(
      "chokepoint top - frame {} at {:.1f} s, window {:.1f} s - {}, {} processes, {} threads\n",
      info.frame, info.at_s, static_cast<double>(obs.duration_ns) / 1e9, who, obs.processes.size(),
      obs.threads.size());
  out.header += verdict_line(d) + "\n";
  const auto& split = d.split;
  out.header += fmt::format("time [{}]", split_bar(split, kHeaderBarWidth));
  for (std::size_t i = 0; i < model::kResourceCount; ++i) {
    out.header += fmt::format(" {} {:.0f}%", model::resource_name(static_cast<Resource>(i)),
                              100 * split.share(static_cast<Resource>(i)));
  }
  out.header += "\n" + system_lines(obs);
  out.header += "(# on_cpu, w cpu_wait, D disk, N network, L lock, M memory, s sleep, . idle)\n";
  out.columns = fmt::format("{:>7} {:>7} {:<16} {:<12} {:>6} {:>6} {:>7} {:>7} {:>6} {:>6}  {}",
                            "PID", "TID", "NAME", "TIME SPLIT", "CPU%", "RUNQ%", "READ/s",
                            "WRITE/s", "RSS", "dRSS", "WAIT");
  const auto rows = build_rows(obs, options.sort);
  std::size_t shown = 0;
  for (const auto& p : rows) {
    if (options.max_processes > 0 && shown++ >= options.max_processes) break;
    TopRowLine prow{p.pid, 0, false, p.name, p.name, {}};
    prow.text = fmt::format(
        "{:>7} {:>7} {:<16} [{}] {:>6.1f} {:>6.1f} {:>7} {:>7} {:>6} {:>6}", p.pid, "-",
        terminal_text(p.name.substr(0, 16)), split_bar(p.split, kRowBarWidth), p.cpu_pct,
        p.runq_pct, top_bytes_short(p.read_bytes_per_s), top_bytes_short(p.write_bytes_per_s),
        top_bytes_short(static_cast<double>(p.rss_bytes)), signed_bytes_short(p.rss_growth_bytes));
    if (p.thread_count <= 1 && (p.threads.empty() || p.threads[0].account->key.tid == p.pid)) {
      // A single-threaded process: its one thread is the process row; show where it waits.
      if (!p.threads.empty() && !p.threads[0].wait.empty()) {
        prow.text += fmt::format("  {}", terminal_text(p.threads[0].wait));
      }
      out.rows.push_back(std::move(prow));
      continue;
    }
    out.rows.push_back(std::move(prow));
    std::size_t listed = 0, quiet = 0;
    for (const auto& t : p.threads) {
      if (!busy_thread(t) || listed >= options.threads_per_process) {
        ++quiet;
        continue;
      }
      ++listed;
      TopRowLine trow{p.pid, t.account->key.tid, true, p.name, t.account->comm, {}};
      trow.text =
          fmt::format("{:>7} {:>7} {:<16} [{}] {:>6.1f} {:>6.1f} {:>7} {:>7} {:>6} {:>6}  {}", "",
                      t.account->key.tid, terminal_text(t.account->comm.substr(0, 16)),
                      split_bar(t.account->split, kRowBarWidth), t.cpu_pct, t.runq_pct, "", "", "",
                      "", terminal_text(t.wait));
      out.rows.push_back(std::move(trow));
    }
    if (quiet > 0) {
      out.rows.push_back(
          {p.pid, 0, true, p.name, p.name,
           fmt::format("{:>7} {:>7} ({} more threads idle or asleep)", "", "", quiet)});
    }
  }
  return out;
}

std::string top_frame_text(const model::Observation& obs, const analysis::Diagnosis& d,
                           const TopFrameInfo& info, const TopFrameOptions& options) {
  const auto lines = top_frame_lines(obs, d, info, options);
  std::string out = lines.header + "\n" + lines.columns + "\n";
  for (const auto& row : lines.rows) out += row.text + "\n";
  return out;
}

std::string top_frame_json(const model::Observation& obs, const analysis::Diagnosis& d,
                           const TopFrameInfo& info, const TopFrameOptions& options) {
  nlohmann::json j;
  j["frame"] = info.frame;
  j["at_s"] = round2(info.at_s);
  j["window_s"] = round2(static_cast<double>(obs.duration_ns) / 1e9);
  j["target"] = {{"kind", obs.target.kind}, {"spec", obs.target.spec}};
  nlohmann::json verdict = {{"resource", std::string(analysis::verdict_name(d.verdict))}};
  if (!d.bottlenecks.empty()) {
    const auto& b = d.bottlenecks.front();
    verdict["kind"] = std::string(analysis::kind_name(b.kind));
    verdict["share"] = round2(b.share);
    verdict["share_of"] = std::string(analysis::share_basis_name(analysis::share_basis(b.kind)));
    verdict["confidence"] = round2(b.confidence);
    verdict["evidence"] = b.evidence.empty() ? "" : b.evidence.front();
  }
  j["verdict"] = verdict;
  j["time_split"] = split_json(d.split);
  const auto& s = obs.system;
  nlohmann::json disks = nlohmann::json::array();
  for (const auto& disk : s.disks) {
    disks.push_back({{"name", disk.name},
                     {"utilization", round2(disk.utilization)},
                     {"read_bytes_per_s", std::round(disk.read_bytes_per_s)},
                     {"write_bytes_per_s", std::round(disk.write_bytes_per_s)},
                     {"await_ms", round2(disk.await_ms)}});
  }
  auto psi = [](const model::PsiSummary& p) {
    return p.available ? nlohmann::json(round2(p.some_share)) : nlohmann::json(nullptr);
  };
  j["system"] = {
      {"cpus", s.cpus_online},
      {"cpu_utilization", round2(s.cpu_utilization)},
      {"run_queue", round2(s.run_queue_avg)},
      {"psi_some", {{"cpu", psi(s.psi_cpu)}, {"io", psi(s.psi_io)}, {"memory", psi(s.psi_memory)}}},
      {"disks", disks},
      {"tcp_retrans_per_s", round2(s.tcp_retrans_per_s)},
      {"listen_overflows", s.listen_overflows}};
  nlohmann::json processes = nlohmann::json::array();
  std::size_t shown = 0;
  for (const auto& p : build_rows(obs, options.sort)) {
    if (options.max_processes > 0 && shown++ >= options.max_processes) break;
    nlohmann::json threads = nlohmann::json::array();
    for (const auto& t : p.threads) {
      threads.push_back({{"tid", t.account->key.tid},
                         {"name", t.account->comm},
                         {"cpu_pct", round2(t.cpu_pct)},
                         {"runq_pct", round2(t.runq_pct)},
                         {"wait", t.wait},
                         {"time_split", split_json(t.account->split)}});
    }
    processes.push_back({{"pid", p.pid},
                         {"name", p.name},
                         {"cpu_pct", round2(p.cpu_pct)},
                         {"runq_pct", round2(p.runq_pct)},
                         {"read_bytes_per_s", std::round(p.read_bytes_per_s)},
                         {"write_bytes_per_s", std::round(p.write_bytes_per_s)},
                         {"rss_bytes", p.rss_bytes},
                         {"rss_growth_bytes", p.rss_growth_bytes},
                         {"threads", threads}});
  }
  j["processes"] = processes;
  return json_text(j, -1);
}

}  // namespace chokepoint::render
