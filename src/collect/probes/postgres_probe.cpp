#include "collect/probes/postgres_probe.h"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <vector>

#include "collect/probes/stats_text.h"
#include "util/shared_library.h"

namespace chokepoint::collect::probes {
namespace {

// pg_stat_activity is sampled at 10 Hz (interval_ns); the slower statistics on every
// kSlowEvery-th read (1 s).
constexpr int kSlowEvery = 10;

// libpq's functions this probe calls. libpq is opened when a probe first needs it, not at exec
// (util/shared_library.h: with its 21 dependencies it was most of chokepoint's start-up).
struct PqApi {
  decltype(&::PQconnectdb) connectdb;
  decltype(&::PQfinish) finish;
  decltype(&::PQstatus) status;
  decltype(&::PQerrorMessage) error_message;
  decltype(&::PQexec) exec;
  decltype(&::PQresultStatus) result_status;
  decltype(&::PQresultErrorMessage) result_error_message;
  decltype(&::PQclear) clear;
  decltype(&::PQntuples) ntuples;
  decltype(&::PQgetvalue) getvalue;
  decltype(&::PQhost) host;
  decltype(&::PQport) port;
  decltype(&::PQdb) db;
  decltype(&::PQconninfoParse) conninfo_parse;
  decltype(&::PQconninfoFree) conninfo_free;
  decltype(&::PQfreemem) freemem;
};

// Opened once per process; the same error every time when it cannot be.
const util::Result<PqApi>& load_pq() {
  static const util::Result<PqApi> kApi = util::SharedLibrary::load<PqApi>(
      CHOKEPOINT_LIBPQ_SONAME, "the PostgreSQL probe",
      "install libpq5 (apt install libpq5), or leave out --pg; "
      "the kernel-level verdict does not depend on it",
      [](const util::SharedLibrary& lib, PqApi& a) {
        return std::vector<util::Result<void>>{
            lib.bind(a.connectdb, "PQconnectdb"),
            lib.bind(a.finish, "PQfinish"),
            lib.bind(a.status, "PQstatus"),
            lib.bind(a.error_message, "PQerrorMessage"),
            lib.bind(a.exec, "PQexec"),
            lib.bind(a.result_status, "PQresultStatus"),
            lib.bind(a.result_error_message, "PQresultErrorMessage"),
            lib.bind(a.clear, "PQclear"),
            lib.bind(a.ntuples, "PQntuples"),
            lib.bind(a.getvalue, "PQgetvalue"),
            lib.bind(a.host, "PQhost"),
            lib.bind(a.port, "PQport"),
            lib.bind(a.db, "PQdb"),
            lib.bind(a.conninfo_parse, "PQconninfoParse"),
            lib.bind(a.conninfo_free, "PQconninfoFree"),
            lib.bind(a.freemem, "PQfreemem")};
      });
  return kApi;
}

// The opened library; called only where load_pq() succeeded (a connection or result exists).
const PqApi& pq() {
  return *load_pq();
}

struct PqFinish {
  void operator()(PGconn* c) const { pq().finish(c); }
};
struct PqClear {
  void operator()(PGresult* r) const { pq().clear(r); }
};
using Conn = std::unique_ptr<PGconn, PqFinish>;
using PgResult = std::unique_ptr<PGresult, PqClear>;

double as_number(const char* s) {
  if (s == nullptr || *s == '\0') return 0;
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  return (end != nullptr && *end == '\0' && std::isfinite(v)) ? v : 0;
}

// Backends of clients only: the probe's own, the autovacuum launcher, WAL writer and the other
// auxiliary processes would blur the picture.
constexpr const char* kActivity =
    "/* chokepoint-probe */ SELECT pid, coalesce(state, ''), coalesce(wait_event_type, ''), "
    "coalesce(wait_event, '') "
    "FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()";
constexpr const char* kBlocking =
    "/* chokepoint-probe */ SELECT pid, pg_blocking_pids(pid)::text, "
    "coalesce(extract(epoch FROM now() - query_start), 0), left(query, 120) "
    "FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0 LIMIT 20";
constexpr const char* kDatabase =
    "/* chokepoint-probe */ SELECT sum(xact_commit), sum(xact_rollback), sum(blks_read), "
    "sum(blks_hit), sum(deadlocks), "
    "sum(temp_bytes), sum(numbackends) FROM pg_stat_database";
constexpr const char* kWal =
    "/* chokepoint-probe */ SELECT wal_records, wal_bytes, wal_write, wal_sync, wal_write_time, "
    "wal_sync_time "
    "FROM pg_stat_wal";
constexpr const char* kBgwriter =
    "/* chokepoint-probe */ SELECT checkpoints_timed, checkpoints_req, buffers_checkpoint, "
    "buffers_backend_fsync "
    "FROM pg_stat_bgwriter";
constexpr const char* kTables =
    "/* chokepoint-probe */ SELECT schemaname || '.' || relname, seq_scan, seq_tup_read, "
    "coalesce(idx_scan, 0), "
    "n_live_tup, n_dead_tup, coalesce(extract(epoch FROM now() - "
    "greatest(last_autovacuum, last_vacuum)), -1) FROM pg_stat_user_tables "
    "ORDER BY seq_tup_read DESC LIMIT 10";
constexpr const char* kSettings =
    "/* chokepoint-probe */ SELECT name, setting FROM pg_settings WHERE name IN "
    "('synchronous_commit', 'commit_delay', "
    "'wal_sync_method', 'max_connections', 'fsync', 'shared_buffers', 'server_version', "
    "'default_transaction_isolation', 'track_io_timing')";

// The statements that took the most time since the server started (pg_stat_statements, when it
// is loaded), without the probe's own (each of them starts with the chokepoint-probe comment,
// which pg_stat_statements keeps in the text it shows).
constexpr const char* kStatements =
    "/* chokepoint-probe */ SELECT queryid::text, calls, total_exec_time, "
    "left(regexp_replace(query, '\\s+', ' ', 'g'), 200) FROM pg_stat_statements "
    "WHERE query NOT LIKE '%chokepoint-probe%' AND queryid IS NOT NULL "
    "ORDER BY total_exec_time DESC LIMIT 20";
// Tried again every kStatementsRetry slow reads after it failed (not loaded, no rights).
constexpr int kStatementsRetry = 30;

// "/var/run/postgresql:5432/postgres as postgres" from a conninfo, without its password; the
// conninfo itself when libpq cannot parse it (the connection will say why).
std::string describe(const std::string& conninfo) {
  // Without libpq the conninfo cannot be parsed, and it may hold a password.
  if (!load_pq()) return "the --pg server";
  char* err = nullptr;
  PQconninfoOption* opts = pq().conninfo_parse(conninfo.c_str(), &err);
  if (err != nullptr) pq().freemem(err);
  if (opts == nullptr) return conninfo;
  std::string host = "(default)", port = "5432", db, user;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string k = o->keyword;
    if (k == "host" || (k == "hostaddr" && host == "(default)")) host = o->val;
    if (k == "port") port = o->val;
    if (k == "dbname") db = o->val;
    if (k == "user") user = o->val;
  }
  pq().conninfo_free(opts);
  std::string out = fmt::format("{}:{}", host, port);
  if (!db.empty()) out += "/" + db;
  if (!user.empty()) out += " as " + user;
  return out;
}

class PostgresProbe final : public Probe {
 public:
  PostgresProbe(std::string conninfo, std::string how, std::optional<OsUser> as_user)
      : conninfo_(std::move(conninfo)), how_(std::move(how)), as_user_(std::move(as_user)) {
    endpoint_ = describe(conninfo_);
  }
  model::ServiceKind kind() const override { return model::ServiceKind::kPostgres; }
  std::string endpoint() const override { return endpoint_; }
  std::int64_t interval_ns() const override { return 100'000'000; }
  std::string how() const override { return "libpq (" + how_ + "): pg_stat_activity, pg_stat_*"; }

  util::Result<Reading> read() override {
    if (const auto& api = load_pq(); !api) return api.error();
    if (!conn_ || pq().status(conn_.get()) != CONNECTION_OK) {
      if (auto c = connect(); !c) return c.error();
    }
    Reading r;
    auto act = query(kActivity);
    if (!act) return act.error();
    for (int i = 0; i < pq().ntuples(act->get()); ++i) {
      const int pid = static_cast<int>(as_number(pq().getvalue(act->get(), i, 0)));
      // A backend with a wait event waits on it (Client:ClientRead is its client); "active"
      // without one is on a CPU; idle ones wait for their client's next command.
      std::string wait = pq().getvalue(act->get(), i, 2);
      if (wait.empty()) {
        wait = pq().getvalue(act->get(), i, 1);
      } else {
        wait.append(":").append(pq().getvalue(act->get(), i, 3));
      }
      r.backend_states[pid] = std::move(wait);
    }
    if (reads_++ % kSlowEvery == 0) read_slow(r);
    return r;
  }

 private:
  util::Result<void> connect() {
    const std::string with_timeout = conninfo_.find("connect_timeout") == std::string::npos &&
                                             conninfo_.find("://") == std::string::npos
                                         ? conninfo_ + " connect_timeout=2"
                                         : conninfo_;
    Conn c;
    if (as_user_) {
      // This thread only: the kernel takes a Unix socket's peer credentials at connect().
      if (syscall(SYS_setresgid, -1, as_user_->gid, -1) != 0 ||
          syscall(SYS_setresuid, -1, as_user_->uid, -1) != 0) {
        syscall(SYS_setresgid, -1, 0, -1);
        return util::errno_error(
            fmt::format("postgres probe: cannot act as {} for peer authentication", as_user_->name),
            "run as root, or pass --pg with a role and password");
      }
      c.reset(pq().connectdb(with_timeout.c_str()));
      syscall(SYS_setresuid, -1, 0, -1);
      syscall(SYS_setresgid, -1, 0, -1);
    } else {
      c.reset(pq().connectdb(with_timeout.c_str()));
    }
    if (!c) return util::Error{"postgres probe: out of memory", ""};
    if (pq().status(c.get()) != CONNECTION_OK) {
      std::string msg = pq().error_message(c.get());
      while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
      std::string hint =
          "pass --pg 'host=/var/run/postgresql port=5432 user=USER dbname=DB' (or a "
          "postgresql:// URI) for a role with pg_monitor; the kernel-level verdict does not "
          "depend on it";
      if (msg.find("password") != std::string::npos) {
        hint =
            "the server wants a password: put it in ~/.pgpass or PGPASSWORD, or pass --pg "
            "with the password; " +
            hint;
      }
      return util::Error{fmt::format("postgres probe: cannot connect ({}): {}", how_, msg), hint};
    }
    // Statements of our own must not wait long on a busy server.
    PgResult set(pq().exec(c.get(),
                           "SET statement_timeout = '1s'; SET application_name = "
                           "'chokepoint probe'"));
    endpoint_ = fmt::format("{} port {} db {}", pq().host(c.get()) ? pq().host(c.get()) : "",
                            pq().port(c.get()) ? pq().port(c.get()) : "",
                            pq().db(c.get()) ? pq().db(c.get()) : "");
    conn_ = std::move(c);
    return {};
  }

  util::Result<PgResult> query(const char* sql) {
    ++queries_;  // each is a transaction of its own, counted in xact_commit
    PgResult res(pq().exec(conn_.get(), sql));
    if (!res || pq().result_status(res.get()) != PGRES_TUPLES_OK) {
      std::string msg =
          res ? pq().result_error_message(res.get()) : pq().error_message(conn_.get());
      while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
      const bool denied = msg.find("permission denied") != std::string::npos;
      if (pq().status(conn_.get()) != CONNECTION_OK) conn_.reset();
      return util::Error{
          fmt::format("postgres probe: {}", msg),
          denied ? "grant the probe's role pg_monitor: GRANT pg_monitor TO role;" : ""};
    }
    return res;
  }

  // Once a second: lock chains, counters, settings. A failure here (an older server without
  // pg_stat_wal, a missing grant) loses that part only.
  void read_slow(Reading& r) {
    if (auto b = query(kBlocking)) {
      for (int i = 0; i < pq().ntuples(b->get()); ++i) {
        r.slow.push_back(fmt::format("pid {} waits for {} since {:.1f} s: {}",
                                     pq().getvalue(b->get(), i, 0), pq().getvalue(b->get(), i, 1),
                                     as_number(pq().getvalue(b->get(), i, 2)),
                                     pq().getvalue(b->get(), i, 3)));
      }
    }
    // The probe's own statements up to and including this one: the rule takes them out of the
    // commit rate.
    r.counters["probe_xacts"] = static_cast<double>(queries_ + 1);
    if (auto d = query(kDatabase); d && pq().ntuples(d->get()) == 1) {
      const char* names[] = {"xact_commit", "xact_rollback", "blks_read",
                             "blks_hit",    "deadlocks",     "temp_bytes"};
      for (int c = 0; c < 6; ++c) r.counters[names[c]] = as_number(pq().getvalue(d->get(), 0, c));
      r.gauges["numbackends"] = as_number(pq().getvalue(d->get(), 0, 6));
    }
    if (auto w = query(kWal); w && pq().ntuples(w->get()) == 1) {
      const char* names[] = {"wal_records", "wal_bytes",         "wal_write",
                             "wal_sync",    "wal_write_time_ms", "wal_sync_time_ms"};
      for (int c = 0; c < 6; ++c) r.counters[names[c]] = as_number(pq().getvalue(w->get(), 0, c));
    }
    if (auto g = query(kBgwriter); g && pq().ntuples(g->get()) == 1) {
      const char* names[] = {"checkpoints_timed", "checkpoints_req", "buffers_checkpoint",
                             "buffers_backend_fsync"};
      for (int c = 0; c < 4; ++c) r.counters[names[c]] = as_number(pq().getvalue(g->get(), 0, c));
    }
    if (auto t = query(kTables)) {
      for (int i = 0; i < pq().ntuples(t->get()); ++i) {
        const std::string k = std::string("table:") + pq().getvalue(t->get(), i, 0) + ":";
        r.counters[k + "seq_scan"] = as_number(pq().getvalue(t->get(), i, 1));
        r.counters[k + "seq_tup_read"] = as_number(pq().getvalue(t->get(), i, 2));
        r.counters[k + "idx_scan"] = as_number(pq().getvalue(t->get(), i, 3));
        r.gauges[k + "n_live_tup"] = as_number(pq().getvalue(t->get(), i, 4));
        r.gauges[k + "n_dead_tup"] = as_number(pq().getvalue(t->get(), i, 5));
      }
    }
    if (auto s = query(kSettings)) {
      for (int i = 0; i < pq().ntuples(s->get()); ++i) {
        r.settings[pq().getvalue(s->get(), i, 0)] = pq().getvalue(s->get(), i, 1);
      }
    }
    read_statements(r);
  }

  // Per-statement calls and time, "stmt:<queryid>:calls" and "stmt:<queryid>:total_ms", with the
  // text in settings "stmt:<queryid>:query"; settings "pg_stat_statements" says why not when the
  // view cannot be read.
  void read_statements(Reading& r) {
    if (statements_wait_ > 0) {
      --statements_wait_;
      r.settings["pg_stat_statements"] = statements_problem_;
      return;
    }
    auto st = query(kStatements);
    if (!st) {
      statements_problem_ = st.error().message;
      statements_wait_ = kStatementsRetry;
      r.settings["pg_stat_statements"] = statements_problem_;
      return;
    }
    r.settings["pg_stat_statements"] = "loaded";
    for (int i = 0; i < pq().ntuples(st->get()); ++i) {
      const std::string k = std::string("stmt:") + pq().getvalue(st->get(), i, 0) + ":";
      r.counters[k + "calls"] = as_number(pq().getvalue(st->get(), i, 1));
      r.counters[k + "total_ms"] = as_number(pq().getvalue(st->get(), i, 2));
      r.settings[k + "query"] = pq().getvalue(st->get(), i, 3);
    }
  }

  std::string conninfo_;
  std::string how_;
  std::optional<OsUser> as_user_;
  std::string endpoint_;
  Conn conn_;
  int reads_ = 0;
  std::uint64_t queries_ = 0;
  int statements_wait_ = 0;         // slow reads left before pg_stat_statements is tried again
  std::string statements_problem_;  // why it could not be read
};

}  // namespace

std::unique_ptr<Probe> make_postgres_probe(std::string conninfo, std::string how,
                                           std::optional<OsUser> as_user) {
  return std::make_unique<PostgresProbe>(std::move(conninfo), std::move(how), std::move(as_user));
}

util::Result<std::string> conninfo_from_postmaster_pid(const std::string& data_dir,
                                                       const std::string& user) {
  const std::string path = data_dir + "/postmaster.pid";
  std::ifstream in(path);
  if (!in) {
    return util::Error{fmt::format("cannot read {}", path),
                       "pass --pg with the server's socket directory and port"};
  }
  // postmaster.pid (src/include/utils/pidfile.h): 1 pid, 2 data dir, 3 start time, 4 port,
  // 5 first socket dir, 6 listen address, 7 shmem key, 8 status.
  std::vector<std::string> lines;
  std::string line;
  while (lines.size() < 8 && std::getline(in, line)) lines.push_back(line.substr(0, 4096));
  if (lines.size() < 5) {
    return util::Error{fmt::format("{} is shorter than a running server writes it", path),
                       "pass --pg with the server's socket directory and port"};
  }
  const auto port = parse_count(lines[3]);
  if (!port || *port == 0 || *port > 65535) {
    return util::Error{fmt::format("{}: line 4 is not a port", path), ""};
  }
  const std::string socket_dir = lines[4].empty() ? "/tmp" : lines[4];
  // Values are quoted for libpq: single quotes and backslashes escaped.
  auto quote = [](const std::string& v) {
    std::string out = "'";
    for (char c : v) {
      if (c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    return out + "'";
  };
  return fmt::format("host={} port={} user={} dbname=postgres", quote(socket_dir), *port,
                     quote(user));
}

}  // namespace chokepoint::collect::probes
