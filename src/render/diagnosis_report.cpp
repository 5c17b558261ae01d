#include "render/diagnosis_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "analysis/rules/rule.h"
#include "model/sample_json.h"
#include "util/escape.h"
#include "util/plural.h"

namespace chokepoint::render {
namespace {

using model::Resource;
using util::terminal_text;

constexpr int kBarWidth = 60;
constexpr std::array<char, model::kResourceCount> kBarChars = {'#', 'w', 'D', 'N',
                                                               'L', 'M', 's', '.'};

std::string bar(const model::TimeSplit& split) {
  return split_bar(split, kBarWidth);
}

}  // namespace

std::string split_bar(const model::TimeSplit& split, int width) {
  std::string out;
  const double total = static_cast<double>(split.total_ns());
  if (total <= 0) return std::string(static_cast<std::size_t>(width), ' ');
  // Largest-remainder rounding so the bar is always exactly width wide.
  std::array<int, model::kResourceCount> cells{};
  std::array<double, model::kResourceCount> rest{};
  int used = 0;
  for (std::size_t i = 0; i < model::kResourceCount; ++i) {
    double exact = static_cast<double>(split.ns[i]) / total * width;
    cells[i] = static_cast<int>(std::floor(exact));
    rest[i] = exact - cells[i];
    used += cells[i];
  }
  while (used < width) {
    auto i = static_cast<std::size_t>(std::max_element(rest.begin(), rest.end()) - rest.begin());
    ++cells[i];
    rest[i] = -1;
    ++used;
  }
  for (std::size_t i = 0; i < model::kResourceCount; ++i)
    out.append(static_cast<std::size_t>(cells[i]), kBarChars[i]);
  return out;
}

namespace {

std::string target_line(const model::Observation& obs) {
  // The spec is what the user gave (a cgroup path, a name, a command) and names are the
  // target's own: every observed string in this report goes through terminal_text.
  std::string who = obs.target.kind == "host"
                        ? "the whole host"
                        : obs.target.kind + " " + terminal_text(obs.target.spec);
  if (obs.processes.size() == 1) {
    const auto& p = obs.processes[0];
    // "pid 1234 (nginx)", not "pid 1234 (nginx, pid 1234)".
    if (obs.target.kind == "pid" && obs.target.spec == std::to_string(p.pid))
      who += fmt::format(" ({})", terminal_text(p.name));
    else
      who += fmt::format(" ({}, pid {})", terminal_text(p.name), p.pid);
  } else if (!obs.processes.empty()) {
    who += fmt::format(" ({})", util::count_of(obs.processes.size(), "process", "processes"));
  }
  return fmt::format("chokepoint diagnose: {}, {:.1f} s, {}", who, obs.duration_ns / 1e9,
                     util::count_of(obs.threads.size(), "thread"));
}

}  // namespace

namespace {

// The target's TCP sockets by state, from the window's end dump (and its start, when it differs).
std::string tcp_states_text(const model::Observation& obs) {
  if (!obs.system.tcp) return "";
  const auto& tcp = *obs.system.tcp;
  std::string row;
  for (int i = 1; i <= model::kTcpStateMax; ++i) {
    const auto state = static_cast<model::TcpState>(i);
    if (state == model::TcpState::kListen) continue;
    const std::uint64_t n = tcp.end.count(state);
    const std::uint64_t before = tcp.start ? tcp.start->count(state) : n;
    if (n == 0 && before == 0) continue;
    row += fmt::format("{}{} {}", row.empty() ? "" : ", ", model::tcp_state_name(state), n);
    if (before != n) row += fmt::format(" (was {})", before);
  }
  if (row.empty()) return "";
  return "\nTCP states (the target's sockets at the window's end): " + terminal_text(row) + "\n";
}

// The wait-for chains of a bottleneck: each waiter to the root thread it waits for.
nlohmann::json chains_json(const std::vector<model::WaitChain>& chains) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : chains) {
    nlohmann::json steps = nlohmann::json::array();
    for (const auto& s : c.steps) {
      steps.push_back({{"pid", s.pid},
                       {"tid", s.tid},
                       {"comm", s.comm},
                       {"syscall", model::syscall_name(s.syscall_nr)},
                       {"object", s.object}});
    }
    nlohmann::json root = {
        {"pid", c.root_pid},
        {"tid", c.root_tid},
        {"comm", c.root_comm},
        {"kind", c.root_kind == model::WakerKind::kThread         ? "thread"
                 : c.root_kind == model::WakerKind::kKernelThread ? "kernel_thread"
                                                                  : "interrupt"}};
    if (c.root_resource) {
      root["state"] = std::string(model::resource_name(*c.root_resource));
      root["state_share"] = c.root_share;
    }
    // The root is that many short-lived threads (model::ShortLivedThread), their split inferred.
    if (c.root_short_lived > 0) root["short_lived_threads"] = c.root_short_lived;
    if (!c.root_function.empty()) {
      root["function"] = c.root_function;
      root["function_share"] = c.root_function_share;
    }
    out.push_back({{"waiters", steps}, {"root", root}, {"depth_limited", c.depth_limited}});
  }
  return out;
}

nlohmann::json tcp_states_json(const model::TcpTableSample& t) {
  nlohmann::json states = nlohmann::json::object();
  for (int i = 1; i <= model::kTcpStateMax; ++i) {
    const auto state = static_cast<model::TcpState>(i);
    if (state == model::TcpState::kListen) continue;
    if (const std::uint64_t n = t.count(state); n > 0)
      states[std::string(model::tcp_state_name(state))] = n;
  }
  return states;
}

nlohmann::json tcp_json(const model::TcpTable& tcp) {
  using nlohmann::json;
  json groups = json::array();
  for (const auto& g : tcp.end.groups) {
    if (!g.target) continue;
    groups.push_back({{"state", model::tcp_state_name(g.state)},
                      {"side", g.server_side ? "server" : "client"},
                      {"local_addr", g.local_addr},
                      {"local_port", g.local_port},
                      {"remote_addr", g.remote_addr},
                      {"remote_port", g.remote_port},
                      {"count", g.count}});
  }
  json listeners = json::array();
  for (const auto& l : tcp.end.listeners) {
    if (!l.target) continue;
    listeners.push_back({{"local_addr", l.local_addr},
                         {"local_port", l.local_port},
                         {"accept_queue", l.accept_queue},
                         {"backlog", l.backlog}});
  }
  const auto opt = [](const auto& v) { return v ? json(*v) : json(nullptr); };
  json j{{"states", tcp_states_json(tcp.end)},
         {"groups", std::move(groups)},
         {"listeners", std::move(listeners)},
         {"port_range_low", opt(tcp.end.port_range_low)},
         {"port_range_high", opt(tcp.end.port_range_high)},
         {"somaxconn", opt(tcp.end.somaxconn)},
         {"tcp_max_syn_backlog", opt(tcp.end.max_syn_backlog)},
         {"tcp_tw_reuse", opt(tcp.end.tw_reuse)},
         {"tcp_syncookies", opt(tcp.end.syncookies)}};
  if (tcp.start) {
    j["states_start"] = tcp_states_json(*tcp.start);
    j["span_s"] = tcp.span_s;
  }
  if (tcp.end.conntrack_count) {
    using T = model::TcpTableSample;
    j["conntrack"] = {{"count", *tcp.end.conntrack_count},
                      {"max", opt(tcp.end.conntrack_max)},
                      {"drop", opt(tcp.end.conntrack_drop)},
                      {"early_drop", opt(tcp.end.conntrack_early_drop)},
                      {"insert_failed", opt(tcp.end.conntrack_insert_failed)},
                      {"drop_window", tcp.growth(&T::conntrack_drop)},
                      {"early_drop_window", tcp.growth(&T::conntrack_early_drop)},
                      {"insert_failed_window", tcp.growth(&T::conntrack_insert_failed)}};
  }
  return j;
}

}  // namespace

std::string diagnosis_text(const model::Observation& obs, const analysis::Diagnosis& d) {
  std::string out = target_line(obs) + "\n\n";
  const double busy = static_cast<double>(d.split.busy_ns());
  if (d.verdict == analysis::Verdict::kNone) {
    out += "VERDICT: none - nothing limits this service now\n";
    out += "  headroom: " + terminal_text(d.headroom) + "\n";
  } else {
    const auto& b = d.bottlenecks.front();
    out += fmt::format("VERDICT: {} ({}) - {}, confidence {:.2f}\n",
                       analysis::verdict_name(b.resource), analysis::kind_name(b.kind),
                       analysis::share_text(b), b.confidence);
  }

  out += fmt::format(
      "\nWhere the time goes (all threads; # on_cpu, w cpu_wait, D disk, N network, L lock, "
      "M memory, s sleep, . idle):\n  [{}]\n  ",
      bar(d.split));
  for (std::size_t i = 0; i < model::kResourceCount; ++i) {
    out += fmt::format("{}{} {}", i ? "  " : "", model::resource_name(static_cast<Resource>(i)),
                       analysis::rules::percent(d.split.share(static_cast<Resource>(i))));
  }
  out += "\n";
  if (busy > 0) {
    out += "  busy time only (idle and sleep left out): ";
    bool first = true;
    for (std::size_t i = 0; i < 6; ++i) {
      double s = static_cast<double>(d.split.ns[i]) / busy;
      if (s < 0.005) continue;
      out +=
          fmt::format("{}{} {}", first ? "" : ", ", model::resource_name(static_cast<Resource>(i)),
                      analysis::rules::percent(s));
      first = false;
    }
    out += "\n";
  }

  int shown = 0;
  for (const auto& b : d.bottlenecks) {
    if (!b.significant) continue;
    out += fmt::format("\n{} {} ({}): {}\n", shown == 0 ? "Bottleneck" : "Also significant:",
                       analysis::verdict_name(b.resource), analysis::kind_name(b.kind),
                       analysis::share_text(b));
    out += "  Evidence:\n";
    for (const auto& e : b.evidence) out += "    - " + terminal_text(e) + "\n";
    out += shown == 0 ? "  Fix first:\n" : "  Fixes:\n";
    int n = 1;
    for (const auto& f : b.fixes) out += fmt::format("    {}. {}\n", n++, terminal_text(f));
    ++shown;
  }
  if (!d.findings.empty()) {
    out += "\nOther findings:\n";
    for (const auto& f : d.findings) {
      out += fmt::format("  - [{}] {}\n", analysis::severity_name(f.severity),
                         terminal_text(f.message));
      if (!f.hint.empty()) out += "    hint: " + terminal_text(f.hint) + "\n";
    }
  }
  out += tcp_states_text(obs);
  out += "\nSources:\n";
  for (const auto& s : obs.sources) {
    out += fmt::format("  {} {}: {}\n", s.available ? "+" : "-", terminal_text(s.name),
                       terminal_text(s.available ? s.detail : s.hint));
  }
  if (obs.target_exited)
    out += "\nnote: the target exited before the window ended; this is what was seen until then\n";
  // The whole run when it was measured (start-up, stacks and symbolizing too), else the window.
  const bool whole = obs.overhead.run_wall_s > 0;
  const double cost_cpu_s = whole ? obs.overhead.run_cpu_s : obs.overhead.cpu_s;
  const double cost_wall_s = whole ? obs.overhead.run_wall_s : obs.duration_ns / 1e9;
  out += fmt::format(
      "\nchokepoint's own cost: {:.3f} s CPU over {}{:.1f} s ({:.2f}% of one core), {} RSS, "
      "{} thread samples ({} of threads that ran)\n",
      cost_cpu_s, whole ? "the whole run of " : "", cost_wall_s,
      cost_wall_s > 0 ? cost_cpu_s / cost_wall_s * 100 : 0,
      analysis::rules::bytes(static_cast<double>(obs.overhead.rss_bytes)),
      obs.overhead.thread_samples, obs.overhead.deep_samples);
  return out;
}

nlohmann::json diagnosis_json(const model::Observation& obs, const analysis::Diagnosis& d) {
  using nlohmann::json;
  json j;
  j["schema"] = 1;
  j["target"] = {{"kind", obs.target.kind}, {"spec", obs.target.spec}, {"pids", obs.target.pids}};
  j["duration_s"] = obs.duration_ns / 1e9;
  j["interval_ms"] = obs.interval_ns / 1e6;
  json split = json::object();
  for (std::size_t i = 0; i < model::kResourceCount; ++i) {
    split[std::string(model::resource_name(static_cast<Resource>(i)))] =
        d.split.share(static_cast<Resource>(i));
  }
  j["time_split"] = split;
  json split_s = json::object();
  for (std::size_t i = 0; i < model::kResourceCount; ++i) {
    split_s[std::string(model::resource_name(static_cast<Resource>(i)))] =
        static_cast<double>(d.split.ns[i]) / 1e9;
  }
  j["time_split_thread_s"] = split_s;
  j["verdict"] = analysis::verdict_name(d.verdict);
  if (!d.headroom.empty()) j["headroom"] = d.headroom;
  json bs = json::array();
  for (const auto& b : d.bottlenecks) {
    json jb = {{"resource", analysis::verdict_name(b.resource)},
               {"kind", analysis::kind_name(b.kind)},
               {"share", b.share},
               {"share_of", analysis::share_basis_name(analysis::share_basis(b.kind))},
               {"share_text", analysis::share_text(b)},
               {"confidence", b.confidence},
               {"significant", b.significant},
               {"evidence", b.evidence},
               {"fixes", b.fixes}};
    if (b.limit_in_s) jb["limit_in_s"] = *b.limit_in_s;
    if (!b.chains.empty()) jb["chains"] = chains_json(b.chains);
    bs.push_back(std::move(jb));
  }
  j["bottlenecks"] = bs;
  json fs = json::array();
  for (const auto& f : d.findings) {
    fs.push_back({{"resource", analysis::finding_resource_name(f.resource)},
                  {"severity", analysis::severity_name(f.severity)},
                  {"message", f.message},
                  {"hint", f.hint}});
  }
  j["findings"] = fs;
  json sources = json::object();
  for (const auto& s : obs.sources) {
    sources[s.name] = {{"available", s.available}, {"detail", s.detail}, {"hint", s.hint}};
  }
  j["sources"] = sources;
  json procs = json::array();
  for (const auto& p : obs.processes) {
    procs.push_back({{"pid", p.pid},
                     {"name", p.name},
                     {"threads", p.threads},
                     {"rss_start_bytes", p.rss_start_bytes},
                     {"rss_end_bytes", p.rss_end_bytes},
                     {"write_bytes", p.write_bytes},
                     {"read_bytes", p.read_bytes},
                     {"majflt", p.majflt},
                     {"open_fds", p.open_fds},
                     {"fd_soft_limit", p.fd_soft_limit},
                     {"server_connections", p.server_connections},
                     {"client_connections", p.client_connections},
                     {"upstream_peers", p.upstream_peers()}});
    json peers = json::array();
    for (const auto& peer : p.peers) {
      peers.push_back({{"address", peer.address},
                       {"clients", peer.clients},
                       {"connections", peer.connections},
                       {"bytes_sent_per_s", peer.bytes_sent_per_s},
                       {"retransmits", peer.retransmits},
                       {"rtt_ms_max", static_cast<double>(peer.rtt_us_max) / 1000},
                       {"notsent_bytes", peer.notsent_bytes},
                       {"unacked_segments", peer.unacked_segments}});
    }
    procs.back()["peers"] = std::move(peers);
    if (p.has_delays) {
      auto s = [](std::uint64_t ns) { return static_cast<double>(ns) / 1e9; };
      procs.back()["delays_s"] = {{"cpu", s(p.delay_cpu_ns)},
                                  {"blkio", s(p.delay_blkio_ns)},
                                  {"swapin", s(p.delay_swapin_ns)},
                                  {"reclaim", s(p.delay_reclaim_ns)},
                                  {"thrashing", s(p.delay_thrashing_ns)},
                                  {"compact", s(p.delay_compact_ns)}};
    }
  }
  j["processes"] = procs;
  json threads = json::array();
  for (const auto& t : obs.threads) {
    json ts = json::object();
    for (std::size_t i = 0; i < model::kResourceCount; ++i) {
      ts[std::string(model::resource_name(static_cast<Resource>(i)))] =
          t.split.share(static_cast<Resource>(i));
    }
    json waits = json::object();
    for (std::size_t i = 0; i < model::kResourceCount; ++i) {
      for (const auto& [detail, ns] : t.details[i]) {
        if (ns * 50 < t.split.total_ns()) continue;  // under 2% of the thread's time
        waits[std::string(model::resource_name(static_cast<Resource>(i))) + ": " + detail] =
            ns / 1e9;
      }
    }
    threads.push_back({{"pid", t.key.pid},
                       {"tid", t.key.tid},
                       {"comm", t.comm},
                       {"observed_s", t.split.total_ns() / 1e9},
                       {"time_split", ts},
                       {"waits_s", waits}});
    if (t.waited_for.total_ns() > 0) {
      // Of time_split, what it waited for other threads' hand-offs (model::attribute_handoffs).
      json waited = json::object();
      for (std::size_t i = 0; i < model::kResourceCount; ++i) {
        if (t.waited_for.ns[i] > 0) {
          waited[std::string(model::resource_name(static_cast<Resource>(i)))] =
              t.waited_for.ns[i] / 1e9;
        }
      }
      threads.back()["waited_for_s"] = waited;
    }
  }
  j["threads"] = threads;
  const auto& s = obs.system;
  j["system"] = {{"cpus_online", s.cpus_online},
                 {"cpus_allowed", s.cpus_allowed},
                 {"cpu_utilization", s.cpu_utilization},
                 {"run_queue_avg", s.run_queue_avg},
                 {"psi_cpu_some", s.psi_cpu.some_share},
                 {"psi_memory_some", s.psi_memory.some_share},
                 {"psi_io_some", s.psi_io.some_share},
                 {"mem_available_bytes", s.mem_available_bytes},
                 {"majflt_per_s", s.majflt_per_s},
                 {"tcp_retrans_per_s", s.tcp_retrans_per_s},
                 {"listen_overflows", s.listen_overflows},
                 {"listen_drops", s.listen_drops},
                 {"time_wait", s.time_wait},
                 {"files_open", s.files_open},
                 {"files_max", s.files_max}};
  if (s.tcp) j["tcp"] = tcp_json(*s.tcp);
  if (s.shm) j["shared_memory"] = model::shm_json(*s.shm);
  if (s.rlimits) j["rlimits"] = model::rlimit_processes_json(*s.rlimits);
  j["target_exited"] = obs.target_exited;
  j["overhead"] = {{"cpu_s", obs.overhead.cpu_s},
                   {"run_wall_s", obs.overhead.run_wall_s},
                   {"run_cpu_s", obs.overhead.run_cpu_s},
                   {"rss_bytes", obs.overhead.rss_bytes},
                   {"thread_samples", obs.overhead.thread_samples},
                   {"deep_samples", obs.overhead.deep_samples}};
  return j;
}

}  // namespace chokepoint::render
