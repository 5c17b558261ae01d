// PostgreSQL's own wait events (pg_stat_activity) and statistics. A backend waiting on a row lock
// and one waiting for its client both sleep in epoll_wait on their latch; only the wait event
// tells them apart, so these shares are the database's own time split.
// See docs/verdicts/services.md.
#include <fmt/format.h>

#include <algorithm>

#include "analysis/rules/rule.h"
#include "analysis/services.h"

namespace chokepoint::analysis::rules {
namespace {

using model::Resource;

// A share of the client backends' samples that makes a class worth a finding.
constexpr double kNotableShare = 0.1;
// A table read mostly by sequential scans, at least this big, is a missing-index candidate.
constexpr double kBigTableRows = 10'000;
// Dead tuples against live ones above which autovacuum is behind.
constexpr double kDeadRatio = 0.2;
// Rollbacks as a share of transactions that, under serializable or repeatable read, say the
// clients retry serialization failures.
constexpr double kRetryRollbackShare = 0.05;

// The share of the busy backends' samples that were running a query (active, no wait event).
double busy_active_share(const std::map<std::string, int>& by_state, int total,
                         std::map<Resource, int>& by_resource) {
  const int busy = total - by_resource[Resource::kIdle];
  auto it = by_state.find("active");
  return busy > 0 && it != by_state.end() ? static_cast<double>(it->second) / busy : 0;
}

// The statements that took the most execution time in the window (pg_stat_statements), or how to
// load it. The top one is evidence for a CPU verdict when the busy backends mostly ran queries
// (rather than waiting on locks or IO, which their own findings cover) and it took at least
// kTopStatementShare of the statements' time.
constexpr double kTopStatementShare = 0.5;
void statements(const model::ServiceObservation& s, double secs, const std::string& status,
                double active_share, ServiceReport& r) {
  if (status.empty()) return;  // a recording from before the probe read it
  if (status != "loaded") {
    r.findings.push_back(
        {Resource::kOnCpu, false,
         "no per-query times: pg_stat_statements cannot be read (" + status + ")",
         "load it to see which queries take the time: shared_preload_libraries = "
         "'pg_stat_statements' in postgresql.conf (a restart), then CREATE EXTENSION "
         "pg_stat_statements; in the database the probe connects to"});
    return;
  }
  struct Statement {
    double ms = 0, calls = 0;
    std::string text;
  };
  std::vector<Statement> top;
  double all_ms = 0;
  const std::string suffix = ":total_ms";
  for (const auto& [name, v] : s.counters_last) {
    if (name.rfind("stmt:", 0) != 0 || name.size() <= suffix.size() ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    const std::string k = name.substr(0, name.size() - suffix.size());
    Statement st{s.delta(name), s.delta(k + ":calls"), ""};
    if (st.ms <= 0) continue;
    auto text = s.settings.find(k + ":query");
    if (text != s.settings.end()) st.text = text->second;
    all_ms += st.ms;
    top.push_back(std::move(st));
  }
  if (top.empty() || secs <= 0) return;
  std::sort(top.begin(), top.end(),
            [](const Statement& a, const Statement& b) { return a.ms > b.ms; });
  for (std::size_t i = 0; i < top.size() && i < 3; ++i) {
    const Statement& st = top[i];
    const double share = st.ms / all_ms;
    if (i > 0 && share < kNotableShare) break;
    const bool limits = i == 0 && share >= kTopStatementShare && active_share >= 0.5;
    r.findings.push_back(
        {Resource::kOnCpu, limits,
         fmt::format("statement taking {} of the statements' time ({:.0f} ms/s, {} calls/s, "
                     "{:.2f} ms each): {}",
                     percent(share), st.ms / secs, count_text(st.calls / secs),
                     st.calls > 0 ? st.ms / st.calls : 0.0, st.text),
         limits ? "EXPLAIN ANALYZE it: an index for its filter, a cheaper plan, or caching its "
                  "result where it repeats"
                : ""});
  }
}

}  // namespace

ServiceReport service_postgres(const model::ServiceObservation& s) {
  ServiceReport r;
  const double secs = static_cast<double>(s.duration_ns) / 1e9;
  // Shares of the client backends' samples by what they waited on.
  std::map<std::string, int> by_state;
  std::map<Resource, int> by_resource;
  int total = 0;
  for (const auto& [pid, states] : s.backend_waits) {
    for (const auto& [state, n] : states) {
      by_state[state] += n;
      total += n;
      if (auto res = model::postgres_wait_resource(state)) by_resource[*res] += n;
    }
  }
  auto setting = [&](const char* n) {
    auto it = s.settings.find(n);
    return it == s.settings.end() ? std::string() : it->second;
  };
  // The probe's own statements are transactions too: not the service's work.
  const double commits = std::max(0.0, s.rate_per_s("xact_commit") - s.rate_per_s("probe_xacts"));
  const double busy_backends =
      s.activity_samples > 0
          ? static_cast<double>(total - by_resource[Resource::kIdle]) / s.activity_samples
          : 0;
  r.summary = fmt::format(
      "{} commits/s, {:.1f} backends busy on average (of {:.0f} connected, "
      "max_connections {})",
      count_text(commits), busy_backends,
      s.gauges.count("numbackends") ? s.gauges.at("numbackends").last : 0.0,
      setting("max_connections"));
  if (total > 0) {
    // The top wait events among the busy samples.
    std::vector<std::pair<int, std::string>> top;
    for (const auto& [state, n] : by_state) {
      auto res = model::postgres_wait_resource(state);
      if (res && *res == Resource::kIdle) continue;
      top.emplace_back(n, state);
    }
    std::sort(top.rbegin(), top.rend());
    const int busy_total = total - by_resource[Resource::kIdle];
    for (std::size_t i = 0; i < top.size() && i < 3; ++i) {
      const double share = busy_total > 0 ? static_cast<double>(top[i].first) / busy_total : 0;
      if (share < kNotableShare) break;
      const auto res = model::postgres_wait_resource(top[i].second).value_or(Resource::kIdle);
      std::string fix;
      if (res == Resource::kLock) {
        fix =
            "shorten the transactions that hold the rows (commit sooner, no client round trips "
            "inside), spread hot rows (shard a counter over N rows), or queue with SELECT ... "
            "FOR UPDATE SKIP LOCKED";
      } else if (res == Resource::kDisk) {
        fix = top[i].second.find("WAL") != std::string::npos
                  ? "commit in groups (commit_delay, batching in the application), or "
                    "synchronous_commit = off where losing the last moments of commits is fine"
                  : "more memory for the working set (shared_buffers, the page cache), or the "
                    "index that avoids the read";
      } else if (res == Resource::kOnCpu && setting("pg_stat_statements") != "loaded") {
        // With pg_stat_statements loaded, its finding names the statement and the fix.
        fix =
            "find the expensive queries (pg_stat_statements) and their plans (EXPLAIN "
            "ANALYZE)";
      }
      const bool limits = res == Resource::kLock || res == Resource::kDisk ||
                          res == Resource::kOnCpu || res == Resource::kNetwork;
      r.findings.push_back(
          {res, limits,
           top[i].second == "active"
               ? fmt::format("{} of the busy backends' time runs queries (active, no wait event)",
                             percent(share))
               : fmt::format("{} of the busy backends' time waits on {}", percent(share),
                             top[i].second),
           fix});
    }
  }
  // Lock chains, the newest first.
  for (const auto& line : s.slow) {
    if (line.find(" waits for ") == std::string::npos) continue;
    r.findings.push_back({Resource::kLock, true, "lock chain: " + line, ""});
    break;
  }
  const double syncs = s.rate_per_s("wal_sync");
  if (syncs > 0) {
    const double per_commit = commits > 0 ? syncs / commits : 0;
    r.findings.push_back(
        {Resource::kDisk, false,
         fmt::format("{} WAL syncs/s for {} commits/s ({:.2f} per commit); synchronous_commit={}, "
                     "commit_delay={}, wal_sync_method={}",
                     count_text(syncs), count_text(commits), per_commit,
                     setting("synchronous_commit"), setting("commit_delay"),
                     setting("wal_sync_method")),
         per_commit > 0.5 && commits > 100
             ? "every commit waits for its own WAL flush: batch commits, set commit_delay "
               "(group commit), or synchronous_commit = off for data that may lose the last "
               "~600 ms on a crash"
             : ""});
  }
  if (const double forced = s.delta("checkpoints_req"); forced > 0) {
    r.findings.push_back(
        {Resource::kDisk, true,
         fmt::format("{:.0f} checkpoints forced by WAL volume in the window", forced),
         "raise max_wal_size so checkpoints come from checkpoint_timeout"});
  }
  // Tables: sequential scans on big tables, and dead tuples.
  for (const auto& [name, v] : s.counters_last) {
    if (name.rfind("table:", 0) != 0 || name.size() < 15 ||
        name.substr(name.size() - 13) != ":seq_tup_read") {
      continue;
    }
    const std::string table = name.substr(6, name.size() - 6 - 13);
    const std::string k = "table:" + table + ":";
    const double scans = s.delta(k + "seq_scan");
    const double rows_read = s.delta(k + "seq_tup_read");
    const double idx = s.delta(k + "idx_scan");
    auto live = s.gauges.find(k + "n_live_tup");
    const double live_rows = live == s.gauges.end() ? 0 : live->second.last;
    if (scans > 0 && live_rows >= kBigTableRows && scans > idx) {
      r.findings.push_back(
          {Resource::kOnCpu, true,
           fmt::format("table {} ({} rows) was read by {} sequential scans/s ({} rows/s) and {} "
                       "index scans/s: a missing index",
                       table, count_text(live_rows), count_text(secs > 0 ? scans / secs : 0),
                       count_text(secs > 0 ? rows_read / secs : 0),
                       count_text(secs > 0 ? idx / secs : 0)),
           fmt::format("index the columns the queries on {} filter by (EXPLAIN shows the Seq Scan)",
                       table)});
    }
    auto dead = s.gauges.find(k + "n_dead_tup");
    if (dead != s.gauges.end() && live_rows >= kBigTableRows &&
        dead->second.last > kDeadRatio * live_rows) {
      r.findings.push_back(
          {Resource::kDisk, false,
           fmt::format("table {}: {} dead rows for {} live: autovacuum is behind", table,
                       count_text(dead->second.last), count_text(live_rows)),
           "let autovacuum run more often on it (autovacuum_vacuum_scale_factor) and look for "
           "long transactions that hold old rows"});
    }
  }
  // Serialization failures: PostgreSQL 15 counts none by themselves (pg_stat_database has
  // rollbacks, deadlocks and recovery conflicts), so under an isolation level that raises them
  // the rollback rate is their upper bound, and said as such.
  const std::string isolation = setting("default_transaction_isolation");
  const double rollbacks = s.rate_per_s("xact_rollback");
  const double xacts = commits + rollbacks;
  if ((isolation == "serializable" || isolation == "repeatable read") && xacts > 0 &&
      rollbacks >= kRetryRollbackShare * xacts && rollbacks >= 1) {
    r.findings.push_back(
        {Resource::kLock, true,
         fmt::format("{} rollbacks/s ({} of transactions) under default_transaction_isolation = "
                     "{}: serialization failures retried by the clients (PostgreSQL counts "
                     "rollbacks, not their reasons: an upper bound)",
                     count_text(rollbacks), percent(rollbacks / xacts), isolation),
         "keep the transactions that conflict short and touching fewer rows, or run them under "
         "read committed with explicit row locks (SELECT ... FOR UPDATE) where that is correct"});
  }
  statements(s, secs, setting("pg_stat_statements"),
             busy_active_share(by_state, total, by_resource), r);
  const double maxconn = std::atof(setting("max_connections").c_str());
  if (maxconn > 0 && s.gauges.count("numbackends") &&
      s.gauges.at("numbackends").max >= 0.8 * maxconn) {
    r.findings.push_back({Resource::kNetwork, true,
                          fmt::format("{:.0f} connections of max_connections {:.0f}",
                                      s.gauges.at("numbackends").max, maxconn),
                          "put a pooler in front (PgBouncer in transaction mode) rather than "
                          "raising max_connections"});
  }
  return r;
}

}  // namespace chokepoint::analysis::rules
