// The recording writer (store/recording.h): the file created with its schema
// (recording_schema.h), each tick written in one transaction (its thread rows, sums and edges
// packed, store/thread_pack.h, in schema 4's envelope, store/blob_codec.h), a write that fails
// counted as lost and retried, and rotation (--max-size, --keep-for).
// Over 600 lines for one class: RecordingWriter::Impl, whose write_tick (200 lines) writes every
// table of a tick in the one transaction and keeps the per-thread state the next tick's deltas
// are taken from; the pieces share that state, so they stay together.
#include "store/recording.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <deque>
#include <functional>
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

std::uint64_t thread_key(int pid, int tid) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(pid)) << 32) |
         static_cast<std::uint32_t>(tid);
}

bool same_wait(const model::WaitObservation& a, const model::WaitObservation& b) {
  return a.state == b.state && a.where == b.where && a.syscall_nr == b.syscall_nr &&
         a.args == b.args && a.fd_role == b.fd_role && a.fd_detail == b.fd_detail &&
         a.process_waits_on_network == b.process_waits_on_network && a.frozen == b.frozen &&
         a.futex_caller == b.futex_caller;
}

}  // namespace

struct RecordingWriter::Impl {
  std::string path;
  WriterOptions opt;
  DbHandle db;
  Stmt begin_tx, commit_tx, rollback_tx;
  Stmt ins_tick, ins_keyframe, ins_text, ins_thread, ins_process, ins_pid, ins_base, ins_pack,
      ins_end, ins_name, ins_process_sample, ins_socket, ins_system, ins_collector, ins_exact;
  // The exact mode's sums and wait-for edges, packed against what was written before
  // (store/thread_pack.h), from the first tick with the exact mode after each keyframe. Each
  // keeps every entry's latest value, written whole at each keyframe so that rotation keeps
  // every baseline.
  DeltaPacker<model::ExactWait> waits_packer;
  DeltaPacker<model::WakeEdge> edges_packer;
  bool exact_restart = true;

  struct Thread {
    std::int64_t id = 0;
    model::ThreadSample last;  // absolute counters, the last wait with stat, comm and names
    std::int64_t row_ns = 0;   // the time of its last row (base or sample)
    bool row_written = false;  // its thread row is committed
    bool renamed = false;      // last.comm is not its thread row's: each keyframe says it again
  };
  // By thread_key(pid, tid): hashed, as a tick looks up every thread that ran (a std::map's find
  // was 2.6% of the recorder's CPU at 1,000 threads, perf); a keyframe sorts them.
  std::unordered_map<std::uint64_t, Thread> threads;
  std::int64_t next_thread_id = 1;
  std::unordered_map<std::string, std::int64_t> texts;
  std::int64_t next_text_id = 1;
  std::map<int, std::string> process_names;
  std::map<int, int> process_ppids;  // schema 3's process.ppid, from the first read
  std::set<int> process_names_written;
  std::int64_t next_tick_id = 1;
  std::deque<std::pair<std::int64_t, std::int64_t>> keyframes;  // (tick id, at_ns), oldest first
  bool need_keyframe = true;
  std::int64_t next_keyframe_ns = 0;
  std::uint64_t bytes_at_keyframe = 0;
  bool failing = false;
  int tx_rc = SQLITE_OK;  // the first failure inside the tick's transaction
  std::uint64_t ticks_written = 0, ticks_lost = 0, thread_rows = 0;
  StackTableWriter stack_tables;  // schema 3: stacks over time
  ProbeTableWriter probe_tables;  // schema 5: the probes' polls

  // Rolled back with a failed tick.
  std::vector<std::string> tx_texts;
  std::vector<std::uint64_t> tx_threads;  // thread_key
  std::vector<int> tx_process_names;

  util::Result<void> prepare_all();
  // Runs `body` (an SQLite code) in a transaction of its own, rolled back when anything fails.
  util::Result<void> in_transaction(const std::function<int()>& body);
  std::int64_t text_id(const std::string& s);
  // Binds column i of a process row to pid's parent, or NULL when it was not read.
  void bind_ppid(Stmt& st, int i, int pid) const {
    auto it = process_ppids.find(pid);
    if (it == process_ppids.end()) {
      st.bind_null(i);
    } else {
      st.bind(i, it->second);
    }
  }
  int write_thread_row(Thread& t);
  ThreadPacker packer;  // the tick's thread rows
  BlobEncoder blobs;    // schema 4: each packed blob compressed (store/blob_codec.h)
  WaitRow wait_row(const model::WaitObservation& w);
  int write_wait(Stmt& st, int first_col, const model::WaitObservation& w);
  int write_base(std::int64_t tick_id, const Thread& t);
  // A thread_name row: the thread is called t.last.comm from this tick on.
  int write_name(std::int64_t tick_id, const Thread& t);
  int write_tick(model::Tick& tick, std::int64_t tick_id, bool keyframe);
  // Drops the exact sums and edges of threads that ended (they have had their last).
  void forget_ended(const std::vector<model::ThreadEnd>& threads_ended);
  std::uint64_t used_bytes();
  void rotate(std::int64_t newest_at_ns);
  int delete_before(std::int64_t tick_id);
};

RecordingWriter::RecordingWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RecordingWriter::~RecordingWriter() {
  if (impl_ && impl_->db) {
    // Fold the WAL back into the file, so that a finished recording is one file (readers then
    // leave no -wal and -shm files beside it).
    (void)exec(impl_->db.get(), "PRAGMA journal_mode=DELETE", impl_->path);
  }
}

bool RecordingWriter::failing() const {
  return impl_->failing;
}
std::uint64_t RecordingWriter::ticks_written() const {
  return impl_->ticks_written;
}
std::uint64_t RecordingWriter::ticks_lost() const {
  return impl_->ticks_lost;
}
std::uint64_t RecordingWriter::thread_rows_written() const {
  return impl_->thread_rows;
}

util::Result<void> RecordingWriter::Impl::prepare_all() {
  sqlite3* d = db.get();
  const std::string wait_params = "?,?,?,?,?,?,?,?,?,?,?,?,?";
  struct Item {
    Stmt* stmt;
    std::string sql;
  };
  const Item items[] = {
      {&begin_tx, "BEGIN"},
      {&commit_tx, "COMMIT"},
      {&rollback_tx, "ROLLBACK"},
      {&ins_tick, "INSERT INTO tick VALUES(?,?,?,?,?)"},
      {&ins_keyframe, "INSERT INTO keyframe VALUES(?)"},
      {&ins_text, "INSERT INTO text VALUES(?,?)"},
      {&ins_thread, "INSERT INTO thread VALUES(?,?,?,?,?,?)"},
      {&ins_process, "INSERT OR REPLACE INTO process VALUES(?,?,?)"},
      {&ins_pid, "INSERT INTO pid_seen VALUES(?,?)"},
      {&ins_base, "INSERT INTO thread_base VALUES(?,?,?,?,?,?,?,?," + wait_params + ")"},
      {&ins_pack, "INSERT INTO thread_pack VALUES(?,?,?,?,?)"},
      {&ins_end, "INSERT INTO thread_end VALUES(?,?,?)"},
      {&ins_name, "INSERT INTO thread_name VALUES(?,?,?)"},
      {&ins_process_sample, "INSERT INTO process_sample VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"},
      {&ins_socket, "INSERT INTO socket_sample VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"},
      {&ins_system, "INSERT INTO system_sample VALUES(?,?)"},
      {&ins_collector, "INSERT INTO collector_sample VALUES(?,?)"},
      {&ins_exact, "INSERT INTO exact_sample VALUES(?,?,?,?)"},
  };
  for (const auto& item : items) {
    auto s = Stmt::prepare(d, item.sql);
    if (!s) return s.error();
    *item.stmt = std::move(*s);
  }
  return {};
}

util::Result<std::unique_ptr<RecordingWriter>> RecordingWriter::create(const std::string& path,
                                                                       WriterOptions options) {
  if (path.empty()) {
    return util::Error{"the recording needs a file name", "pass e.g. -o run.chokepoint", EINVAL};
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    // Replace an earlier recording; refuse to clobber anything else.
    if (!S_ISREG(st.st_mode)) {
      return util::Error{fmt::format("{} exists and is not a regular file", path),
                         "choose another file name for the recording", EEXIST};
    }
    if (st.st_size > 0) {
      auto old = RecordingReader::open(path);
      if (!old) {
        return util::Error{
            fmt::format("{} exists and is not a chokepoint recording: not replacing it", path),
            "choose another file name, or remove the file first", EEXIST};
      }
    }
    for (const char* suffix : {"", "-wal", "-shm"}) ::unlink((path + suffix).c_str());
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->opt = std::move(options);
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  impl->db.reset(raw);
  if (rc != SQLITE_OK) return sqlite_error(raw, rc, "cannot create " + path, path);
  sqlite3_busy_timeout(raw, 1000);  // readers recovering the WAL index hold it for moments
  auto ok = exec(raw,
                 // One transaction: a file killed while it is created is a recording or not.
                 fmt::format("PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;"
                             "PRAGMA journal_size_limit=8388608;BEGIN;PRAGMA application_id={};"
                             "PRAGMA user_version={};{}COMMIT;",
                             kApplicationId, kSchemaVersion,
                             schema_sql() + stack_schema_sql() + probe_schema_sql()),
                 path);
  if (!ok) return ok.error();
  if (auto p = impl->prepare_all(); !p) return p.error();
  return std::unique_ptr<RecordingWriter>(new RecordingWriter(std::move(impl)));
}

void RecordingWriter::begin(const model::RecordingInfo& info) {
  Impl& w = *impl_;
  utsname u{};
  ::uname(&u);
  const std::int64_t mono = util::monotonic_ns();
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  const std::int64_t unix_ns = static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
  const std::pair<const char*, std::string> rows[] = {
      {"schema_version", std::to_string(kSchemaVersion)},
      {"chokepoint_version", w.opt.chokepoint_version},
      {"kernel", std::string(u.release) + " " + u.version},
      {"machine", u.machine},
      {"cpus", std::to_string(sysconf(_SC_NPROCESSORS_ONLN))},
      {"created_unix_ns", std::to_string(unix_ns)},
      {"created_monotonic_ns", std::to_string(mono)},
      {"target_kind", info.target.kind},
      {"target_spec", info.target.spec},
      {"interval_ns", std::to_string(info.interval_ns)},
  };
  auto st = Stmt::prepare(w.db.get(), "INSERT OR REPLACE INTO meta VALUES(?,?)");
  if (!st) {
    if (w.opt.on_write_error) w.opt.on_write_error(st.error());
    return;
  }
  for (const auto& [k, v] : rows) {
    st->bind_text(1, k);
    st->bind_text(2, v);
    if (int rc = st->run(); rc != SQLITE_OK && w.opt.on_write_error) {
      w.opt.on_write_error(sqlite_error(w.db.get(), rc, "writing " + w.path, w.path));
      return;
    }
  }
}

util::Result<void> RecordingWriter::add_note(const std::string& key, const std::string& text) {
  Impl& w = *impl_;
  auto st = Stmt::prepare(w.db.get(), "INSERT OR REPLACE INTO meta VALUES(?,?)");
  if (!st) return st.error();
  st->bind_text(1, "note." + key);
  st->bind_text(2, text);
  if (int rc = st->run(); rc != SQLITE_OK) {
    return sqlite_error(w.db.get(), rc, "writing " + w.path, w.path);
  }
  return {};
}

util::Result<void> RecordingWriter::add_stack_slice(const StackSlice& slice) {
  Impl& w = *impl_;
  auto ok = w.in_transaction([&] { return w.stack_tables.write(w.db.get(), slice); });
  if (ok) {
    w.stack_tables.committed();
  } else {
    w.stack_tables.rolled_back();
  }
  return ok;
}

util::Result<void> RecordingWriter::Impl::in_transaction(const std::function<int()>& body) {
  int rc = begin_tx.run();
  if (rc == SQLITE_OK) rc = body();
  if (rc == SQLITE_OK) rc = commit_tx.run();
  if (rc != SQLITE_OK) {
    const util::Error err = sqlite_error(db.get(), rc, "writing " + path, path);
    rollback_tx.run();
    return err;
  }
  return {};
}

util::Result<void> RecordingWriter::set_probes(const std::vector<model::ServiceProbe>& probes) {
  Impl& w = *impl_;
  return w.in_transaction([&] { return w.probe_tables.write_probes(w.db.get(), probes); });
}

util::Result<void> RecordingWriter::add_probe_polls(const std::vector<model::ServicePoll>& polls) {
  Impl& w = *impl_;
  if (polls.empty()) return {};
  return w.in_transaction(
      [&] { return w.probe_tables.write_polls(w.db.get(), w.next_tick_id - 1, polls); });
}

std::pair<std::uint64_t, std::uint64_t> RecordingWriter::probe_document_bytes() const {
  return {impl_->probe_tables.document_bytes(), impl_->probe_tables.stored_bytes()};
}

std::int64_t RecordingWriter::Impl::text_id(const std::string& s) {
  auto it = texts.find(s);
  if (it != texts.end()) return it->second;
  const std::int64_t id = next_text_id++;
  ins_text.bind(1, id);
  ins_text.bind_text(2, s);
  if (int rc = ins_text.run(); rc != SQLITE_OK) {
    if (tx_rc == SQLITE_OK) tx_rc = rc;  // the tick is rolled back
    return 0;
  }
  texts.emplace(s, id);
  tx_texts.push_back(s);
  return id;
}

int RecordingWriter::Impl::write_thread_row(Thread& t) {
  if (t.row_written) return SQLITE_OK;
  ins_thread.bind(1, t.id);
  ins_thread.bind(2, t.last.key.pid);
  ins_thread.bind(3, t.last.key.tid);
  ins_thread.bind_u64(4, t.last.key.start_time_ticks);
  ins_thread.bind(5, text_id(t.last.comm));
  ins_thread.bind(6, text_id(t.last.process_name));
  int rc = ins_thread.run();
  if (rc == SQLITE_OK) {
    t.row_written = true;
    tx_threads.push_back(thread_key(t.last.key.pid, t.last.key.tid));
  }
  return rc;
}

WaitRow RecordingWriter::Impl::wait_row(const model::WaitObservation& w) {
  WaitRow r;
  r.state = static_cast<unsigned char>(w.state);
  r.site = static_cast<std::int64_t>(w.where);
  if (w.where == model::SyscallWhere::kInSyscall) {
    r.syscall_nr = w.syscall_nr;
    r.args = w.args;
  }
  r.fd_role = static_cast<std::int64_t>(w.fd_role);
  if (!w.fd_detail.empty()) r.fd_detail = text_id(w.fd_detail);
  // net_wait holds two flags: bit 0 the process waits on the network, bit 1 its cgroup is frozen.
  r.net_wait = (w.process_waits_on_network ? 1 : 0) | (w.frozen ? 2 : 0);
  if (!w.futex_caller.empty()) r.futex_caller = text_id(w.futex_caller);
  return r;
}

int RecordingWriter::Impl::write_wait(Stmt& st, int c, const model::WaitObservation& w) {
  const WaitRow r = wait_row(w);
  st.bind(c, r.state);
  st.bind(c + 1, r.site);
  if (r.site == kSiteInSyscall) {
    st.bind(c + 2, r.syscall_nr);
    for (int i = 0; i < 6; ++i) st.bind_u64(c + 3 + i, r.args[static_cast<std::size_t>(i)]);
  } else {
    for (int i = 0; i < 7; ++i) st.bind_null(c + 2 + i);
  }
  st.bind(c + 9, r.fd_role);
  // Text references are NULL when there is none.
  if (r.fd_detail == 0) {
    st.bind_null(c + 10);
  } else {
    st.bind(c + 10, r.fd_detail);
  }
  st.bind(c + 11, r.net_wait);
  if (r.futex_caller == 0) {
    st.bind_null(c + 12);
  } else {
    st.bind(c + 12, r.futex_caller);
  }
  return SQLITE_OK;
}

int RecordingWriter::Impl::write_base(std::int64_t tick_id, const Thread& t) {
  const auto& s = t.last;
  ins_base.bind(1, tick_id);
  ins_base.bind(2, t.id);
  ins_base.bind_u64(3, s.run_ns);
  ins_base.bind_u64(4, s.run_delay_ns);
  ins_base.bind_u64(5, s.utime_ns);
  ins_base.bind_u64(6, s.stime_ns);
  ins_base.bind_u64(7, s.majflt);
  ins_base.bind_u64(8, s.blkio_delay_ns);
  write_wait(ins_base, 9, s.wait);
  ++thread_rows;
  return ins_base.run();
}

int RecordingWriter::Impl::write_name(std::int64_t tick_id, const Thread& t) {
  ins_name.bind(1, tick_id);
  ins_name.bind(2, t.id);
  ins_name.bind(3, text_id(t.last.comm));
  return ins_name.run();
}

int RecordingWriter::Impl::write_tick(model::Tick& tick, std::int64_t tick_id, bool keyframe) {
  int rc = SQLITE_OK;
  auto check = [&rc](int r) {
    if (rc == SQLITE_OK && r != SQLITE_OK) rc = r;
  };
  ins_tick.bind(1, tick_id);
  ins_tick.bind(2, tick.at_ns);
  ins_tick.bind(3, tick.lock_credit_ns);
  if (tick.runnable) {
    ins_tick.bind(4, *tick.runnable);
  } else {
    ins_tick.bind_null(4);
  }
  ins_tick.bind(5, (tick.closing ? kFlagClosing : 0) | (tick.target_exited ? kFlagExited : 0));
  check(ins_tick.run());
  if (keyframe) {
    // Every live thread gets an absolute base row here, so that the ticks before can go; in
    // (pid, tid) order, as the readers have always met them.
    std::vector<std::pair<std::uint64_t, Thread*>> live;
    live.reserve(threads.size());
    for (auto& [key, t] : threads) live.emplace_back(key, &t);
    std::sort(live.begin(), live.end());
    for (auto& [key, t] : live) {
      check(write_thread_row(*t));
      check(write_base(tick_id, *t));
      if (t->renamed) check(write_name(tick_id, *t));
      t->row_ns = tick.at_ns;
    }
    ins_keyframe.bind(1, tick_id);
    check(ins_keyframe.run());
  }
  for (const auto& e : tick.ended) {
    auto it = threads.find(thread_key(e.pid, e.tid));
    if (it == threads.end()) continue;
    ins_end.bind(1, tick_id);
    ins_end.bind(2, it->second.id);
    ins_end.bind(3, e.last_poll_ns);
    check(ins_end.run());
    threads.erase(it);
  }
  for (int pid : tick.new_pids) {
    ins_pid.bind(1, tick_id);
    ins_pid.bind(2, pid);
    check(ins_pid.run());
  }
  packer.clear();
  std::uint64_t run_sum = 0, delay_sum = 0;
  for (const auto& s : tick.threads) {
    const std::uint64_t id = thread_key(s.key.pid, s.key.tid);
    if (s.first) {
      Thread& t = threads[id];
      t = Thread{};
      t.id = next_thread_id++;
      t.last = s;
      t.row_ns = s.at_ns;
      check(write_thread_row(t));
      check(write_base(tick_id, t));
      continue;
    }
    auto it = threads.find(id);
    if (it == threads.end()) continue;
    Thread& t = it->second;
    if (!s.comm.empty() && s.comm != t.last.comm) {
      t.last.comm = s.comm;
      t.renamed = true;
      check(write_name(tick_id, t));
    }
    PackedThread row;
    row.thread = t.id;
    // None: read at every poll since its last row (the common case for a thread that runs).
    if (s.prev_poll_ns != t.row_ns) row.prev_poll_ago_ns = s.at_ns - s.prev_poll_ns;
    t.row_ns = s.at_ns;
    row.has_stat = s.has_stat;
    row.run_ns = s.run_ns - t.last.run_ns;  // modular: the reader adds it back exactly
    row.run_delay_ns = s.run_delay_ns - t.last.run_delay_ns;
    run_sum += row.run_ns;
    delay_sum += row.run_delay_ns;
    t.last.run_ns = s.run_ns;
    t.last.run_delay_ns = s.run_delay_ns;
    if (s.has_stat) {
      row.utime_ns = s.utime_ns - t.last.utime_ns;
      row.stime_ns = s.stime_ns - t.last.stime_ns;
      row.majflt = s.majflt - t.last.majflt;
      row.blkio_ns = s.blkio_delay_ns - t.last.blkio_delay_ns;
      // No wait: the same wait as the thread's row before (a thread that keeps going back to
      // the same condition variable, socket or file).
      if (!same_wait(s.wait, t.last.wait)) row.wait = wait_row(s.wait);
      t.last.utime_ns = s.utime_ns;
      t.last.stime_ns = s.stime_ns;
      t.last.majflt = s.majflt;
      t.last.blkio_delay_ns = s.blkio_delay_ns;
      t.last.wait = s.wait;
    }
    packer.add(row);
    ++thread_rows;
  }
  if (packer.count() > 0) {
    ins_pack.bind(1, tick_id);
    ins_pack.bind(2, static_cast<std::int64_t>(packer.count()));
    ins_pack.bind_u64(3, run_sum);
    ins_pack.bind_u64(4, delay_sum);
    ins_pack.bind_blob(5, blobs.encode(packer.bytes()));
    check(ins_pack.run());
  }
  for (const auto& p : tick.processes) {
    if (p.name) {
      process_names[p.pid] = *p.name;
      process_names_written.erase(p.pid);
    }
    if (p.ppid) process_ppids[p.pid] = *p.ppid;
    if (!process_names_written.count(p.pid) && process_names.count(p.pid)) {
      ins_process.bind(1, p.pid);
      ins_process.bind(2, text_id(process_names[p.pid]));
      bind_ppid(ins_process, 3, p.pid);
      check(ins_process.run());
      process_names_written.insert(p.pid);
      tx_process_names.push_back(p.pid);
    }
    Stmt& st = ins_process_sample;
    st.bind(1, tick_id);
    st.bind(2, p.pid);
    if (p.io) {
      st.bind_u64(3, p.io->read_bytes);
      st.bind_u64(4, p.io->write_bytes);
      st.bind_u64(5, p.io->syscw);
    } else {
      for (int c = 3; c <= 5; ++c) st.bind_null(c);
    }
    if (p.has_status) {
      st.bind_u64(6, p.rss_bytes);
      st.bind_u64(7, p.anon_bytes);
    } else {
      st.bind_null(6);
      st.bind_null(7);
    }
    if (p.delays) {
      const auto& d = *p.delays;
      st.bind_u64(8, d.cpu_ns);
      st.bind_u64(9, d.blkio_ns);
      st.bind_u64(10, d.swapin_ns);
      st.bind_u64(11, d.reclaim_ns);
      st.bind_u64(12, d.thrashing_ns);
      st.bind_u64(13, d.compact_ns);
    } else {
      for (int c = 8; c <= 13; ++c) st.bind_null(c);
    }
    st.bind_opt(14, p.open_fds);
    st.bind_opt(15, p.fd_soft_limit);
    check(st.run());
  }
  for (const auto& s : tick.sockets) {
    Stmt& st = ins_socket;
    st.bind(1, tick_id);
    st.bind(2, s.pid);
    st.bind_u64(3, s.inode);
    st.bind(4, static_cast<std::int64_t>(s.state));
    st.bind(5, s.server_side ? 1 : 0);
    st.bind(6, text_id(s.local_addr));
    st.bind(7, s.local_port);
    st.bind(8, text_id(s.remote_addr));
    st.bind(9, s.remote_port);
    st.bind(10, s.recv_queue_bytes);
    st.bind(11, s.send_queue_bytes);
    st.bind(12, s.notsent_bytes);
    st.bind(13, s.rtt_us);
    st.bind_u64(14, s.bytes_acked);
    st.bind_u64(15, s.sndbuf_limited_us);
    st.bind_u64(16, s.rwnd_limited_us);
    st.bind(17, s.rttvar_us);
    st.bind(18, s.total_retrans);
    st.bind(19, s.unacked_segments);
    check(st.run());
  }
  if (tick.system) {
    ins_system.bind(1, tick_id);
    ins_system.bind_text(2, system_document(*tick.system));
    check(ins_system.run());
  }
  if (tick.collector) {
    ins_collector.bind(1, tick_id);
    ins_collector.bind_text(2, collector_document(*tick.collector));
    check(ins_collector.run());
  }
  if (tick.exact) {
    exact_restart = exact_restart || keyframe;
    ins_exact.bind(1, tick_id);
    ins_exact.bind_text(2, exact_document(*tick.exact));
    if (keyframe) {
      // Every entry kept, changed or not, so that the ticks before can go.
      ins_exact.bind_blob(3, blobs.encode(waits_packer.pack_all(tick.exact->waits)));
      ins_exact.bind_blob(4, blobs.encode(edges_packer.pack_all(tick.exact->edges)));
    } else {
      // Sorted in place: the tick is the writer's (add takes it by value).
      DeltaPacker<model::ExactWait>::sort_for_packing(tick.exact->waits);
      DeltaPacker<model::WakeEdge>::sort_for_packing(tick.exact->edges);
      ins_exact.bind_blob(3, blobs.encode(waits_packer.pack(tick.exact->waits, exact_restart)));
      ins_exact.bind_blob(4, blobs.encode(edges_packer.pack(tick.exact->edges, exact_restart)));
    }
    exact_restart = false;
    check(ins_exact.run());
    // Threads that ended have had their last sums. Most ticks end none: every sum and edge of
    // the target (thousands at 1,000 threads) is walked only when one ended (the walk was 14% of
    // the recorder's CPU at 1,000 busy threads, perf).
    if (!tick.ended.empty()) forget_ended(tick.ended);
  }
  check(tx_rc);
  return rc;
}

void RecordingWriter::Impl::forget_ended(const std::vector<model::ThreadEnd>& threads_ended) {
  std::set<std::pair<int, std::uint64_t>> gone;
  std::set<int> gone_tids;
  for (const auto& e : threads_ended) {
    gone.insert({e.tid, e.start_time_ticks});
    gone_tids.insert(e.tid);
  }
  // A sum without a start time is of the ended thread's id, whoever it was.
  waits_packer.drop_if([&](const model::ExactWait& w) {
    return gone.count({w.tid, w.start_time_ticks}) != 0 ||
           (w.start_time_ticks == 0 && gone_tids.count(w.tid) != 0);
  });
  // The edges' key has no start time.
  edges_packer.drop_if([&](const model::WakeEdge& e) { return gone_tids.count(e.wakee_tid) != 0; });
}

std::uint64_t RecordingWriter::Impl::used_bytes() {
  auto pragma = [&](const char* sql) -> std::uint64_t {
    auto st = Stmt::prepare(db.get(), sql);
    if (!st || st->step() != SQLITE_ROW) return 0;
    return st->u64(0);
  };
  const std::uint64_t pages = pragma("PRAGMA page_count");
  const std::uint64_t free_pages = pragma("PRAGMA freelist_count");
  return (pages - std::min(pages, free_pages)) * pragma("PRAGMA page_size");
}

int RecordingWriter::Impl::delete_before(std::int64_t tick_id) {
  int rc = begin_tx.run();
  auto run = [&](const std::string& sql) {
    if (rc != SQLITE_OK) return;
    auto st = Stmt::prepare(db.get(), sql);
    if (!st) {
      rc = SQLITE_ERROR;
      return;
    }
    st->bind(1, tick_id);
    rc = st->run();
  };
  for (const char* table : kTickTables) run(fmt::format("DELETE FROM {} WHERE tick < ?1", table));
  if (rc == SQLITE_OK) rc = stack_tables.delete_before_tick(db.get(), tick_id);
  run("DELETE FROM keyframe WHERE tick < ?1");
  run("DELETE FROM tick WHERE id < ?1");
  if (rc == SQLITE_OK) {
    rc = commit_tx.run();
  } else {
    rollback_tx.run();
  }
  return rc;
}

// Drops the oldest keyframe spans: those older than keep_for, and while the file is over
// max_bytes, one span per tick. The newest keyframe is never dropped, nor anything after it.
void RecordingWriter::Impl::rotate(std::int64_t newest_at_ns) {
  std::int64_t cutoff = 0;
  if (opt.keep_for_ns > 0) {
    for (std::size_t i = 1; i < keyframes.size(); ++i) {
      if (keyframes[i].second <= newest_at_ns - opt.keep_for_ns) cutoff = keyframes[i].first;
    }
  }
  if (opt.max_bytes > 0) {
    const std::uint64_t used = used_bytes();
    if (used > opt.max_bytes) {
      if (keyframes.size() >= 2) {
        cutoff = std::max(cutoff, keyframes[1].first);
      } else {
        need_keyframe = true;  // the next tick starts a span that the one before can go for
      }
    } else if (used > bytes_at_keyframe + opt.max_bytes / 8) {
      need_keyframe = true;  // spans of an eighth of the limit: rotation drops little at a time
    }
  }
  if (cutoff == 0) return;
  if (delete_before(cutoff) != SQLITE_OK) return;  // tried again at the next tick
  while (!keyframes.empty() && keyframes.front().first < cutoff) keyframes.pop_front();
}

void RecordingWriter::add(model::Tick tick) {
  Impl& w = *impl_;
  const std::int64_t tick_id = w.next_tick_id++;
  const bool keyframe = w.need_keyframe || tick.at_ns >= w.next_keyframe_ns;
  // The writer's thread state moves with the stream even when a tick is lost, so it is saved
  // first: a failed tick is followed by a keyframe, which restores absolute values.
  w.tx_rc = SQLITE_OK;
  int rc = w.begin_tx.run();
  if (rc == SQLITE_OK) rc = w.write_tick(tick, tick_id, keyframe);
  if (rc == SQLITE_OK) rc = w.commit_tx.run();
  if (rc != SQLITE_OK) {
    const util::Error err = sqlite_error(w.db.get(), rc, "writing " + w.path, w.path);
    w.rollback_tx.run();
    for (const auto& s : w.tx_texts) w.texts.erase(s);
    for (std::uint64_t id : w.tx_threads) {
      if (auto it = w.threads.find(id); it != w.threads.end()) it->second.row_written = false;
    }
    for (int pid : w.tx_process_names) w.process_names_written.erase(pid);
    w.tx_texts.clear();
    w.tx_threads.clear();
    w.tx_process_names.clear();
    w.waits_packer.forget();  // the reader will not have seen what they packed
    w.edges_packer.forget();
    w.need_keyframe = true;
    ++w.ticks_lost;
    if (!w.failing && w.opt.on_write_error) w.opt.on_write_error(err);
    w.failing = true;
    return;
  }
  w.tx_texts.clear();
  w.tx_threads.clear();
  w.tx_process_names.clear();
  ++w.ticks_written;
  if (w.failing && w.opt.on_write_resumed) w.opt.on_write_resumed();
  w.failing = false;
  if (keyframe) {
    w.keyframes.emplace_back(tick_id, tick.at_ns);
    w.need_keyframe = false;
    w.next_keyframe_ns = tick.at_ns + w.opt.keyframe_every_ns;
    if (w.opt.max_bytes > 0) w.bytes_at_keyframe = w.used_bytes();
  }
  if (w.opt.max_bytes > 0 || w.opt.keep_for_ns > 0) w.rotate(tick.at_ns);
}

}  // namespace chokepoint::store
