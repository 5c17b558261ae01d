// The recording reader (store/recording.h): a file from elsewhere opened defensively (read-only,
// defensive mode, trusted_schema off), its identity and schema checked, and its ticks decoded in
// time order from every table at once, schema 1 to 5.
// Over 600 lines for one class: RecordingReader, whose read_ticks (290 lines) walks every table's
// rows in time order at once, with each schema's columns; split, its cursors would have to be
// handed between files.
#include "store/recording.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>

#include "store/blob_codec.h"
#include "store/probe_series.h"
#include "store/recording_schema.h"
#include "store/sample_documents.h"
#include "store/sqlite.h"
#include "store/thread_pack.h"
#include "util/clock.h"

namespace chokepoint::store {
namespace {

// Absolute counters of one thread, as the last row of it left them, with that row's wait and
// time (a thread_sample row leaves out what did not change since).
struct Counters {
  std::uint64_t run_ns = 0, run_delay_ns = 0, utime_ns = 0, stime_ns = 0, majflt = 0, blkio_ns = 0;
  model::WaitObservation wait;
  std::int64_t row_ns = 0;
};

}  // namespace

struct RecordingReader::Impl {
  std::string path;
  DbHandle db;
  model::RecordingInfo info;
  RecordingMeta meta;
  std::map<std::string, std::string> notes;
  std::optional<std::pair<std::int64_t, std::int64_t>> range;
  std::unordered_map<std::int64_t, std::string> texts;
  struct Thread {
    model::ThreadKey key;
    std::string comm, process_name;
  };
  std::unordered_map<std::int64_t, Thread> threads;
  std::unordered_map<int, std::string> process_names;
  std::unordered_map<int, int> process_ppids;  // schema 3 and later
  std::vector<model::ServiceProbe> probes;     // schema 5

  const std::string& text(std::int64_t id) const {
    static const std::string kEmpty;
    auto it = texts.find(id);
    return it == texts.end() ? kEmpty : it->second;
  }
  util::Error corrupt(int rc) const { return sqlite_error(db.get(), rc, "reading " + path, path); }
  int version = 0;  // the file's schema
  // A wait from its row, every value clamped (the file may be hostile).
  model::WaitObservation read_wait(const WaitRow& r) const;
  // Reads the text, thread and process tables (inside read_ticks' transaction, so that they match
  // the ticks it reads while a writer adds more).
  util::Result<void> load_names();
};

RecordingReader::RecordingReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RecordingReader::~RecordingReader() = default;
RecordingReader::RecordingReader(RecordingReader&&) noexcept = default;
RecordingReader& RecordingReader::operator=(RecordingReader&&) noexcept = default;

const model::RecordingInfo& RecordingReader::info() const {
  return impl_->info;
}
const RecordingMeta& RecordingReader::meta() const {
  return impl_->meta;
}
std::optional<std::string> RecordingReader::note(const std::string& key) const {
  auto it = impl_->notes.find("note." + key);
  if (it == impl_->notes.end()) return std::nullopt;
  return it->second;
}
util::Result<std::vector<StackSlice>> RecordingReader::stack_slices(StackKind kind,
                                                                    std::int64_t from_ns,
                                                                    std::int64_t to_ns) const {
  return read_stack_slices(impl_->db.get(), impl_->path, kind, from_ns, to_ns);
}
const std::vector<model::ServiceProbe>& RecordingReader::probes() const {
  return impl_->probes;
}
util::Result<std::vector<model::ServicePoll>> RecordingReader::probe_polls(
    std::int64_t from_ns, std::int64_t to_ns) const {
  if (impl_->probes.empty()) return std::vector<model::ServicePoll>{};
  return read_probe_polls(impl_->db.get(), impl_->path, impl_->probes.size(), from_ns, to_ns);
}
std::optional<std::pair<std::int64_t, std::int64_t>> RecordingReader::time_range() const {
  return impl_->range;
}

namespace {

std::int64_t parse_i64(const std::string& s) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end == s.c_str()) return 0;
  return v;
}

}  // namespace

util::Result<RecordingReader> RecordingReader::open(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return util::errno_error("cannot open " + path, "check the recording's path");
  }
  if (!S_ISREG(st.st_mode)) {
    return util::Error{path + " is not a file", "pass a recording made by chokepoint record",
                       EINVAL};
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  impl->db.reset(raw);
  if (rc != SQLITE_OK) return sqlite_error(raw, rc, "cannot open " + path, path);
  sqlite3_busy_timeout(raw, 2000);  // a writer's checkpoint holds the file for moments
  // A recording is data from elsewhere: no schema-defined functions or views run, and writes
  // that could corrupt it are refused even by mistake.
  sqlite3_db_config(raw, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_db_config(raw, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  sqlite3_db_config(raw, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, nullptr);
  sqlite3_db_config(raw, SQLITE_DBCONFIG_ENABLE_VIEW, 0, nullptr);
  sqlite3_limit(raw, SQLITE_LIMIT_LENGTH, 1 << 24);
  (void)exec(raw, "PRAGMA cell_size_check=ON", path);
  const util::Error not_ours{fmt::format("{} is not a chokepoint recording", path),
                             "pass a file written by chokepoint record or diagnose --record",
                             EINVAL};
  auto pragma = [&](const char* sql) -> util::Result<std::int64_t> {
    auto q = Stmt::prepare(raw, sql);
    if (!q) return not_ours;
    int r = q->step();
    if (r != SQLITE_ROW) return impl->corrupt(r);
    return q->i64(0);
  };
  auto app_id = pragma("PRAGMA application_id");
  if (!app_id) return app_id.error();
  if (*app_id != kApplicationId) return not_ours;
  auto version = pragma("PRAGMA user_version");
  if (!version) return version.error();
  if (*version > kSchemaVersion) {
    return util::Error{
        fmt::format("{} has recording schema {}; this chokepoint reads up to schema {}", path,
                    *version, kSchemaVersion),
        "replay it with the newer chokepoint that recorded it", EINVAL};
  }
  if (*version < 1) return not_ours;

  auto meta = Stmt::prepare(raw, "SELECT key, value FROM meta");
  if (!meta) return not_ours;
  std::map<std::string, std::string> m;
  while ((rc = meta->step()) == SQLITE_ROW) m[meta->text(0)] = meta->text(1);
  if (rc != SQLITE_DONE) return impl->corrupt(rc);
  impl->meta.schema_version = static_cast<int>(*version);
  impl->version = static_cast<int>(*version);
  impl->meta.chokepoint_version = m["chokepoint_version"];
  impl->meta.kernel = m["kernel"];
  impl->meta.machine = m["machine"];
  impl->meta.cpus = static_cast<int>(std::clamp<std::int64_t>(parse_i64(m["cpus"]), 0, 1 << 20));
  impl->meta.created_unix_ns = parse_i64(m["created_unix_ns"]);
  impl->meta.created_monotonic_ns = parse_i64(m["created_monotonic_ns"]);
  impl->info.target.kind = m["target_kind"];
  impl->info.target.spec = m["target_spec"];
  impl->info.interval_ns = std::max<std::int64_t>(0, parse_i64(m["interval_ns"]));
  for (const auto& [k, v] : m) {
    if (k.rfind("note.", 0) == 0) impl->notes[k] = v;
  }

  for (const char* sql : {"SELECT id, value FROM text LIMIT 0",
                          "SELECT id, pid, tid, start_time_ticks, comm, process_name FROM thread "
                          "LIMIT 0",
                          "SELECT pid, name FROM process LIMIT 0"}) {
    if (!Stmt::prepare(raw, sql)) return not_ours;
  }
  auto range = Stmt::prepare(raw, "SELECT min(at_ns), max(at_ns) FROM tick");
  if (!range) return not_ours;
  rc = range->step();
  if (rc != SQLITE_ROW) return impl->corrupt(rc);
  if (!range->is_null(0)) impl->range = std::make_pair(range->i64(0), range->i64(1));
  // Every table the reader needs must be there, with its columns: checked by preparing now.
  constexpr const char* kThreadBase =
      "SELECT tick, thread, run_ns, run_delay_ns, utime_ns, stime_ns, majflt, blkio_ns, state, "
      "site, syscall_nr, a0, a1, a2, a3, a4, a5, fd_role, fd_detail, net_wait, futex_caller "
      "FROM thread_base LIMIT 0";
  for (const char* sql :
       {kThreadBase,
        *version == 1 ? "SELECT prev_poll_ago_ns, has_stat FROM thread_sample LIMIT 0"
                      : "SELECT tick, threads, run_ns, run_delay_ns, data FROM thread_pack LIMIT 0",
        "SELECT tick, thread, last_poll_ns FROM thread_end LIMIT 0",
        "SELECT tick, pid FROM pid_seen LIMIT 0",
        "SELECT fd_soft_limit FROM process_sample LIMIT 0",
        "SELECT rwnd_limited_us FROM socket_sample LIMIT 0",
        "SELECT sample FROM system_sample LIMIT 0", "SELECT sample FROM collector_sample LIMIT 0",
        "SELECT flags FROM tick LIMIT 0"}) {
    if (!Stmt::prepare(raw, sql)) return not_ours;
  }
  if (*version >= 6 &&
      !Stmt::prepare(raw, "SELECT rttvar_us, total_retrans FROM socket_sample LIMIT 0")) {
    return not_ours;
  }
  if (*version >= 7 && !Stmt::prepare(raw, "SELECT unacked FROM socket_sample LIMIT 0")) {
    return not_ours;
  }
  if (*version >= 5) {
    for (const char* sql : {"SELECT id, kind, endpoint, how FROM probe LIMIT 0",
                            "SELECT tick, probe, at_ns, ok, data FROM probe_sample LIMIT 0"}) {
      if (!Stmt::prepare(raw, sql)) return not_ours;
    }
    auto probes = read_probes(raw, path);
    if (!probes) return probes.error();
    impl->probes = std::move(*probes);
  }
  return RecordingReader(std::move(impl));
}

namespace {

// The WAIT columns from column c on (NULL reads as 0: no text).
WaitRow wait_columns(const Stmt& st, int c) {
  WaitRow r;
  r.state = st.i64(c);
  r.site = st.i64(c + 1);
  r.syscall_nr = st.i64(c + 2);
  for (int i = 0; i < 6; ++i) r.args[static_cast<std::size_t>(i)] = st.u64(c + 3 + i);
  r.fd_role = st.i64(c + 9);
  r.fd_detail = st.i64(c + 10);
  r.net_wait = st.i64(c + 11);
  r.futex_caller = st.i64(c + 12);
  return r;
}

}  // namespace

model::WaitObservation RecordingReader::Impl::read_wait(const WaitRow& r) const {
  model::WaitObservation w;
  w.state = r.state >= 32 && r.state < 127 ? static_cast<char>(r.state) : '?';
  w.where = r.site >= 0 && r.site <= static_cast<std::int64_t>(model::SyscallWhere::kInSyscall)
                ? static_cast<model::SyscallWhere>(r.site)
                : model::SyscallWhere::kUnknown;
  if (w.where == model::SyscallWhere::kInSyscall) {
    w.syscall_nr = static_cast<long>(std::clamp<std::int64_t>(r.syscall_nr, -1, 1 << 16));
    w.args = r.args;
  }
  w.fd_role = r.fd_role >= 0 && r.fd_role <= static_cast<std::int64_t>(model::FdRole::kOther)
                  ? static_cast<model::FdRole>(r.fd_role)
                  : model::FdRole::kUnknown;
  // Text ids start at 1: 0 (a NULL column) and unknown ids read as no text.
  w.fd_detail = text(r.fd_detail);
  w.process_waits_on_network = (r.net_wait & 1) != 0;
  w.frozen = (r.net_wait & 2) != 0;
  w.futex_caller = text(r.futex_caller);
  return w;
}

util::Result<void> RecordingReader::Impl::load_names() {
  sqlite3* raw = db.get();
  const util::Error not_ours{fmt::format("{} is not a chokepoint recording", path),
                             "pass a file written by chokepoint record or diagnose --record",
                             EINVAL};
  int rc = SQLITE_OK;
  texts.clear();
  threads.clear();
  process_names.clear();
  process_ppids.clear();
  auto text_rows = Stmt::prepare(raw, "SELECT id, value FROM text");
  if (!text_rows) return not_ours;
  while ((rc = text_rows->step()) == SQLITE_ROW) texts[text_rows->i64(0)] = text_rows->text(1);
  if (rc != SQLITE_DONE) return corrupt(rc);
  auto thread_rows =
      Stmt::prepare(raw, "SELECT id, pid, tid, start_time_ticks, comm, process_name FROM thread");
  if (!thread_rows) return not_ours;
  while ((rc = thread_rows->step()) == SQLITE_ROW) {
    Impl::Thread t;
    t.key = {static_cast<int>(thread_rows->i64(1)), static_cast<int>(thread_rows->i64(2)),
             thread_rows->u64(3)};
    t.comm = text(thread_rows->i64(4));
    t.process_name = text(thread_rows->i64(5));
    threads[thread_rows->i64(0)] = std::move(t);
  }
  if (rc != SQLITE_DONE) return corrupt(rc);
  auto procs = Stmt::prepare(
      raw, version >= 3 ? "SELECT pid, name, ppid FROM process" : "SELECT pid, name FROM process");
  if (!procs) return not_ours;
  while ((rc = procs->step()) == SQLITE_ROW) {
    const int pid = static_cast<int>(procs->i64(0));
    process_names[pid] = text(procs->i64(1));
    if (version >= 3 && !procs->is_null(2)) process_ppids[pid] = static_cast<int>(procs->i64(2));
  }
  if (rc != SQLITE_DONE) return corrupt(rc);
  return {};
}

util::Result<void> RecordingReader::read_ticks(std::int64_t to_ns,
                                               const std::function<bool(model::Tick&&)>& each) {
  Impl& r = *impl_;
  sqlite3* db = r.db.get();
  // One read transaction: every table as of one moment, while a writer may be adding ticks.
  if (auto b = exec(db, "BEGIN", r.path); !b) return r.corrupt(sqlite3_errcode(db));
  struct EndRead {
    sqlite3* db;
    ~EndRead() { sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr); }
  } end_read{db};
  if (auto names = r.load_names(); !names) return names.error();
  // One cursor per table, each in tick order; they advance together, tick by tick.
  struct Cursor {
    Stmt st;
    int rc = SQLITE_ROW;
    bool row() const { return rc == SQLITE_ROW; }
    void next() { rc = st.step(); }
    std::int64_t tick() const { return st.i64(0); }
  };
  const char* sqls[] = {
      "SELECT tick, thread, run_ns, run_delay_ns, utime_ns, stime_ns, majflt, blkio_ns, state, "
      "site, syscall_nr, a0, a1, a2, a3, a4, a5, fd_role, fd_detail, net_wait, futex_caller "
      "FROM thread_base ORDER BY tick, rowid",
      // Schema 1: a row per thread; schema 2: a packed blob per tick.
      r.version == 1
          ? "SELECT tick, thread, prev_poll_ago_ns, has_stat, run_ns, run_delay_ns, utime_ns, "
            "stime_ns, majflt, blkio_ns, state, site, syscall_nr, a0, a1, a2, a3, a4, a5, "
            "fd_role, fd_detail, net_wait, futex_caller FROM thread_sample ORDER BY rowid"
          : "SELECT tick, data FROM thread_pack ORDER BY tick",
      "SELECT tick, thread, last_poll_ns FROM thread_end ORDER BY rowid",
      "SELECT tick, pid FROM pid_seen ORDER BY rowid",
      "SELECT tick, pid, read_bytes, write_bytes, syscw, rss_bytes, anon_bytes, delay_cpu_ns, "
      "delay_blkio_ns, delay_swapin_ns, delay_reclaim_ns, delay_thrashing_ns, delay_compact_ns, "
      "open_fds, fd_soft_limit FROM process_sample ORDER BY rowid",
      // Schema 6 adds rttvar_us and total_retrans, schema 7 unacked; older files read them as 0.
      r.version >= 7
          ? "SELECT tick, pid, inode, state, server_side, local_addr, local_port, remote_addr, "
            "remote_port, recv_queue_bytes, send_queue_bytes, notsent_bytes, rtt_us, bytes_acked, "
            "sndbuf_limited_us, rwnd_limited_us, rttvar_us, total_retrans, unacked FROM "
            "socket_sample ORDER BY rowid"
      : r.version == 6
          ? "SELECT tick, pid, inode, state, server_side, local_addr, local_port, remote_addr, "
            "remote_port, recv_queue_bytes, send_queue_bytes, notsent_bytes, rtt_us, bytes_acked, "
            "sndbuf_limited_us, rwnd_limited_us, rttvar_us, total_retrans, 0 FROM socket_sample "
            "ORDER BY rowid"
          : "SELECT tick, pid, inode, state, server_side, local_addr, local_port, remote_addr, "
            "remote_port, recv_queue_bytes, send_queue_bytes, notsent_bytes, rtt_us, bytes_acked, "
            "sndbuf_limited_us, rwnd_limited_us, 0, 0, 0 FROM socket_sample ORDER BY rowid",
      "SELECT tick, sample FROM system_sample ORDER BY rowid",
      "SELECT tick, sample FROM collector_sample ORDER BY rowid",
  };
  constexpr std::size_t kCursors = std::size(sqls);
  std::array<Cursor, kCursors> cur;
  for (std::size_t i = 0; i < kCursors; ++i) {
    auto st = Stmt::prepare(db, sqls[i]);
    if (!st) return st.error();
    cur[i].st = std::move(*st);
    cur[i].next();
  }
  auto ticks = Stmt::prepare(db,
                             "SELECT id, at_ns, lock_credit_ns, runnable, flags FROM tick "
                             "ORDER BY id");
  if (!ticks) return ticks.error();
  Cursor& base = cur[0];
  Cursor& sample = cur[1];
  Cursor& end = cur[2];
  Cursor& pid = cur[3];
  Cursor& proc = cur[4];
  Cursor& sock = cur[5];
  Cursor& sys = cur[6];
  Cursor& coll = cur[7];
  // Threads' new names; recordings made before 2026-12-06 have no thread_name table.
  Cursor names;
  names.rc = SQLITE_DONE;
  if (auto st =
          Stmt::prepare(db, "SELECT tick, thread, comm FROM thread_name ORDER BY tick, rowid")) {
    names.st = std::move(*st);
    names.next();
  }
  // Recordings made before the exact mode have no exact_sample table.
  Cursor exact;
  exact.rc = SQLITE_DONE;
  if (auto st = Stmt::prepare(
          db, r.version >= 3 ? "SELECT tick, sample, waits, edges FROM exact_sample ORDER BY rowid"
              : r.version == 2 ? "SELECT tick, sample, waits FROM exact_sample ORDER BY rowid"
                               : "SELECT tick, sample FROM exact_sample ORDER BY rowid")) {
    exact.st = std::move(*st);
    exact.next();
  }
  // Schema 3's exact sums and edges refer to those of the ticks before.
  DeltaUnpacker<model::ExactWait> waits_unpacker;
  DeltaUnpacker<model::WakeEdge> edges_unpacker;
  BlobDecoder blobs;  // schema 4's compressed blobs
  // A packed blob (schema 2) that does not decode.
  const auto damaged = [&r](const char* what, std::int64_t tick) {
    return util::Error{
        fmt::format("reading {}: the {} of tick {} are damaged", r.path, what, tick),
        "the file was changed or damaged after it was written; replay a window before it (--to)",
        EINVAL};
  };
  std::unordered_map<std::int64_t, Counters> counters;  // by thread id
  std::set<int> named;                                  // processes whose name was given
  int rc = SQLITE_ROW;
  while ((rc = ticks->step()) == SQLITE_ROW) {
    model::Tick t;
    const std::int64_t id = ticks->i64(0);
    t.at_ns = ticks->i64(1);
    if (t.at_ns > to_ns) return {};
    t.lock_credit_ns = std::max<std::int64_t>(0, ticks->i64(2));
    if (!ticks->is_null(3)) {
      t.runnable = static_cast<std::uint32_t>(std::clamp<std::int64_t>(ticks->i64(3), 0, 1 << 30));
    }
    const std::int64_t flags = ticks->i64(4);
    t.closing = (flags & kFlagClosing) != 0;
    t.target_exited = (flags & kFlagExited) != 0;
    // Rows of ticks that no longer exist (or out of order, in a damaged file) are skipped.
    for (auto& c : cur) {
      while (c.row() && c.tick() < id) c.next();
    }
    while (exact.row() && exact.tick() < id) exact.next();
    while (names.row() && names.tick() < id) names.next();
    for (; base.row() && base.tick() == id; base.next()) {
      auto th = r.threads.find(base.st.i64(1));
      if (th == r.threads.end()) continue;
      model::ThreadSample s;
      s.key = th->second.key;
      s.at_ns = t.at_ns;
      s.prev_poll_ns = t.at_ns;
      s.first = true;
      s.comm = th->second.comm;
      s.process_name = th->second.process_name;
      s.has_stat = true;
      Counters& c = counters[th->first];
      c = {base.st.u64(2),
           base.st.u64(3),
           base.st.u64(4),
           base.st.u64(5),
           base.st.u64(6),
           base.st.u64(7),
           r.read_wait(wait_columns(base.st, 8)),
           t.at_ns};
      s.run_ns = c.run_ns;
      s.run_delay_ns = c.run_delay_ns;
      s.utime_ns = c.utime_ns;
      s.stime_ns = c.stime_ns;
      s.majflt = c.majflt;
      s.blkio_delay_ns = c.blkio_ns;
      s.wait = c.wait;
      t.threads.push_back(std::move(s));
    }
    for (; end.row() && end.tick() == id; end.next()) {
      auto th = r.threads.find(end.st.i64(1));
      if (th == r.threads.end()) continue;
      t.ended.push_back(
          {th->second.key.pid, th->second.key.tid, end.st.i64(2), th->second.key.start_time_ticks});
    }
    // A thread that ran: its row's deltas added to its counters.
    const auto add_row = [&](const PackedThread& row) {
      auto th = r.threads.find(row.thread);
      if (th == r.threads.end()) return;
      auto c = counters.find(th->first);
      if (c == counters.end()) return;  // no base: rotated away, or a damaged file
      model::ThreadSample s;
      s.key = th->second.key;
      s.at_ns = t.at_ns;
      Counters& k = c->second;
      s.prev_poll_ns = row.prev_poll_ago_ns ? t.at_ns - *row.prev_poll_ago_ns : k.row_ns;
      k.row_ns = t.at_ns;
      s.has_stat = row.has_stat;
      k.run_ns += row.run_ns;
      k.run_delay_ns += row.run_delay_ns;
      s.run_ns = k.run_ns;
      s.run_delay_ns = k.run_delay_ns;
      if (s.has_stat) {
        k.utime_ns += row.utime_ns;
        k.stime_ns += row.stime_ns;
        k.majflt += row.majflt;
        k.blkio_ns += row.blkio_ns;
        if (row.wait) k.wait = r.read_wait(*row.wait);
        s.wait = k.wait;
      }
      s.utime_ns = k.utime_ns;
      s.stime_ns = k.stime_ns;
      s.majflt = k.majflt;
      s.blkio_delay_ns = k.blkio_ns;
      t.threads.push_back(std::move(s));
    };
    for (; sample.row() && sample.tick() == id; sample.next()) {
      const Stmt& q = sample.st;
      if (r.version >= 2) {
        std::optional<std::string> raw;
        if (r.version >= 4 && !(raw = blobs.decode(q.blob(1)))) return damaged("thread rows", id);
        auto rows = unpack_threads(raw ? std::string_view(*raw) : q.blob(1));
        if (!rows) return damaged("thread rows", id);
        t.threads.reserve(t.threads.size() + rows->size());
        for (const auto& row : *rows) add_row(row);
        continue;
      }
      PackedThread row;
      row.thread = q.i64(1);
      if (!q.is_null(2)) row.prev_poll_ago_ns = q.i64(2);
      row.has_stat = q.i64(3) != 0;
      row.run_ns = q.u64(4);
      row.run_delay_ns = q.u64(5);
      if (row.has_stat) {
        row.utime_ns = q.u64(6);
        row.stime_ns = q.u64(7);
        row.majflt = q.u64(8);
        row.blkio_ns = q.u64(9);
        if (!q.is_null(10)) row.wait = wait_columns(q, 10);
      }
      add_row(row);
    }
    // A rename names the thread in this tick's samples of it: its keyframe row (a first sample)
    // and its row of the tick, where it was read under the new name. Rare: a scan.
    for (; names.row() && names.tick() == id; names.next()) {
      auto th = r.threads.find(names.st.i64(1));
      if (th == r.threads.end()) continue;
      for (auto& s : t.threads) {
        if (s.key.pid == th->second.key.pid && s.key.tid == th->second.key.tid) {
          if (auto name = r.text(names.st.i64(2)); !name.empty()) s.comm = std::move(name);
        }
      }
    }
    for (; pid.row() && pid.tick() == id; pid.next()) {
      t.new_pids.push_back(static_cast<int>(pid.st.i64(1)));
    }
    for (; proc.row() && proc.tick() == id; proc.next()) {
      const Stmt& q = proc.st;
      model::ProcessSample p;
      p.pid = static_cast<int>(q.i64(1));
      p.at_ns = t.at_ns;
      if (named.insert(p.pid).second) {
        auto n = r.process_names.find(p.pid);
        if (n != r.process_names.end()) p.name = n->second;
        auto pp = r.process_ppids.find(p.pid);
        if (pp != r.process_ppids.end()) p.ppid = pp->second;
      }
      if (!q.is_null(2)) p.io = model::ProcessIo{q.u64(2), q.u64(3), q.u64(4)};
      if (!q.is_null(5)) {
        p.has_status = true;
        p.rss_bytes = q.u64(5);
        p.anon_bytes = q.u64(6);
      }
      if (!q.is_null(7)) {
        p.delays =
            model::GroupDelays{q.u64(7), q.u64(8), q.u64(9), q.u64(10), q.u64(11), q.u64(12)};
      }
      p.open_fds = q.opt_u64(13);
      p.fd_soft_limit = q.opt_u64(14);
      t.processes.push_back(std::move(p));
    }
    for (; sock.row() && sock.tick() == id; sock.next()) {
      const Stmt& q = sock.st;
      model::SocketSample s;
      s.pid = static_cast<int>(q.i64(1));
      s.at_ns = t.at_ns;
      s.inode = q.u64(2);
      const std::int64_t state = q.i64(3);
      s.state = state >= 0 && state <= static_cast<std::int64_t>(model::SocketState::kListen)
                    ? static_cast<model::SocketState>(state)
                    : model::SocketState::kOther;
      s.server_side = q.i64(4) != 0;
      s.local_addr = r.text(q.i64(5));
      s.local_port = static_cast<std::uint16_t>(q.i64(6));
      s.remote_addr = r.text(q.i64(7));
      s.remote_port = static_cast<std::uint16_t>(q.i64(8));
      s.recv_queue_bytes = static_cast<std::uint32_t>(q.i64(9));
      s.send_queue_bytes = static_cast<std::uint32_t>(q.i64(10));
      s.notsent_bytes = static_cast<std::uint32_t>(q.i64(11));
      s.rtt_us = static_cast<std::uint32_t>(q.i64(12));
      s.bytes_acked = q.u64(13);
      s.sndbuf_limited_us = q.u64(14);
      s.rwnd_limited_us = q.u64(15);
      s.rttvar_us = static_cast<std::uint32_t>(q.i64(16));
      s.total_retrans = static_cast<std::uint32_t>(q.i64(17));
      s.unacked_segments = static_cast<std::uint32_t>(q.i64(18));
      t.sockets.push_back(std::move(s));
    }
    for (; sys.row() && sys.tick() == id; sys.next()) {
      if (auto s = system_from(sys.st.text(1))) {
        s->at_ns = t.at_ns;
        t.system = std::move(s);
      }
    }
    for (; coll.row() && coll.tick() == id; coll.next()) {
      if (auto c = collector_from(coll.st.text(1))) t.collector = std::move(c);
    }
    for (; exact.row() && exact.tick() == id; exact.next()) {
      auto x = exact_from(exact.st.text(1));
      if (x && r.version >= 3) {
        // Schema 4 wraps each blob in store/blob_codec.h's envelope.
        std::optional<std::string> raw_waits, raw_edges;
        if (r.version >= 4 && !(raw_waits = blobs.decode(exact.st.blob(2)))) {
          return damaged("exact sums", id);
        }
        if (r.version >= 4 && !(raw_edges = blobs.decode(exact.st.blob(3)))) {
          return damaged("wait-for edges", id);
        }
        auto waits =
            waits_unpacker.unpack(raw_waits ? std::string_view(*raw_waits) : exact.st.blob(2));
        if (!waits) return damaged("exact sums", id);
        x->waits = std::move(*waits);
        auto edges =
            edges_unpacker.unpack(raw_edges ? std::string_view(*raw_edges) : exact.st.blob(3));
        if (!edges) return damaged("wait-for edges", id);
        x->edges = std::move(*edges);
      } else if (x && r.version == 2) {
        auto waits = unpack_exact_waits(exact.st.blob(2));
        if (!waits) return damaged("exact sums", id);
        x->waits = std::move(*waits);
      }
      if (x) t.exact = std::move(x);
    }
    for (const auto& c : cur) {
      if (!c.row() && c.rc != SQLITE_DONE) return r.corrupt(c.rc);
    }
    if (!exact.row() && exact.rc != SQLITE_DONE) return r.corrupt(exact.rc);
    if (!each(std::move(t))) return {};
  }
  if (rc != SQLITE_DONE) return r.corrupt(rc);
  return {};
}

util::Result<model::Samples> read_all(const std::string& path) {
  auto reader = RecordingReader::open(path);
  if (!reader) return reader.error();
  model::Samples samples;
  samples.info = reader->info();
  auto ok = reader->read_ticks(std::numeric_limits<std::int64_t>::max(), [&](model::Tick&& t) {
    samples.ticks.push_back(std::move(t));
    return true;
  });
  if (!ok) return ok.error();
  return samples;
}

}  // namespace chokepoint::store
