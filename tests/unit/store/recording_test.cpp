#include "store/recording.h"

#include <gtest/gtest.h>
#include <linux/futex.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "analysis/diagnosis.h"
#include "model/builder.h"
#include "render/diagnosis_report.h"
#include "support/files.h"
#include "support/socket_sample.h"
#include "unit/store/copy_changed.h"

namespace chokepoint::store {
namespace {

using test::copy_changed;

constexpr std::int64_t kMs = 1'000'000;

// Every file of this test binary, removed when it exits.
std::string temp_path(const std::string& name) {
  static const test_support::TempDir dir("chokepoint-store-test");
  return dir.path + "/" + name;
}

model::WaitObservation in_syscall(long nr, model::FdRole role = model::FdRole::kUnknown,
                                  std::string detail = "") {
  model::WaitObservation w;
  w.state = 'S';
  w.where = model::SyscallWhere::kInSyscall;
  w.syscall_nr = nr;
  w.fd_role = role;
  w.fd_detail = std::move(detail);
  return w;
}

model::ThreadSample thread(int tid, std::int64_t at, bool first, std::uint64_t run_ns,
                           model::WaitObservation wait) {
  model::ThreadSample s;
  s.key = {100, tid, 1234};
  s.at_ns = at;
  // Thread 1 is read at every tick (its rows leave prev_poll_ago_ns out); the others had polls
  // that found them unchanged in between.
  s.prev_poll_ns = first ? at : at - (tid == 1 ? 100 : 50) * kMs;
  s.first = first;
  if (first) {
    s.comm = "worker\n)x";  // hostile names survive unchanged
    s.process_name = "svc";
  }
  s.run_ns = run_ns;
  s.run_delay_ns = run_ns / 10;
  s.has_stat = true;
  s.utime_ns = run_ns / 2;
  s.stime_ns = run_ns / 2;
  s.majflt = run_ns / kMs;
  s.wait = std::move(wait);
  return s;
}

// A window with every kind of sample: threads that run, wait on a disk sync, a mutex and an
// upstream, one that ends; a process with io, delays and sockets; system and collector samples.
model::Samples sample_window(int ticks) {
  model::Samples s;
  s.info.target = {"pid", "100", {}};
  s.info.interval_ns = 100 * kMs;
  model::SystemSample sys;
  sys.cpus_online = 2;
  sys.has_cpu = true;
  sys.has_net = true;
  sys.tcp_retrans_segs = 5;
  sys.disks = std::vector<model::DiskSample>{{"vda", 1, 2, 3, 4, 5, 6, 7, 8, 9}};
  sys.psi_io = {true, true, "", 100, 50};
  auto futex = in_syscall(SYS_futex);
  futex.args = {0xdeadbeef00, FUTEX_WAIT_PRIVATE, 2, 0, 0, 0};
  for (int i = 0; i < ticks; ++i) {
    model::Tick t;
    t.at_ns = 1'000 * kMs + i * 100 * kMs;
    t.lock_credit_ns = i == 0 ? 0 : 100 * kMs;
    t.runnable = static_cast<std::uint32_t>(i % 3);
    const bool first = i == 0;
    if (first) t.new_pids = {100};
    const auto u = static_cast<std::uint64_t>(i);
    t.threads.push_back(thread(1, t.at_ns, first, u * 20 * kMs,
                               in_syscall(SYS_fdatasync, model::FdRole::kRegularFile, "/d/log")));
    if (first || i % 2 == 0) t.threads.push_back(thread(2, t.at_ns, first, u * 7 * kMs, futex));
    if (i < 5) {
      auto up = in_syscall(SYS_epoll_wait);
      up.process_waits_on_network = i % 2 == 0;
      up.fd_detail = "upstream 127.0.0.1:9001";
      t.threads.push_back(thread(3, t.at_ns, first, u * 3 * kMs, up));
    }
    if (i == 5) t.ended.push_back({100, 3, t.at_ns - 10 * kMs});
    model::ProcessSample p;
    p.pid = 100;
    p.at_ns = t.at_ns;
    if (first) {
      p.name = "svc";
      p.ppid = 1;
    }
    p.io = model::ProcessIo{u * 100, u * 4096, u};
    p.has_status = true;
    p.rss_bytes = (10 + u) << 20;
    p.anon_bytes = (5 + u) << 20;
    p.delays = model::GroupDelays{u, 2 * u, 3 * u, 4 * u, 5 * u, 6 * u};
    if (i == ticks - 1) {
      p.open_fds = 12;
      p.fd_soft_limit = 1024;
    }
    t.processes.push_back(p);
    auto sock = test_support::socket_sample(100, 77, model::SocketState::kEstablished,
                                            {"", 0, "127.0.0.1", 9001});
    sock.at_ns = t.at_ns;
    sock.bytes_acked = u * 1000;
    sock.rtt_us = 250;
    sock.rttvar_us = 60 + static_cast<std::uint32_t>(i);
    sock.total_retrans = static_cast<std::uint32_t>(u);
    sock.unacked_segments = static_cast<std::uint32_t>(3 * u);
    t.sockets.push_back(sock);
    sys.at_ns = t.at_ns;
    sys.cpu_total_ns += 200 * kMs;
    sys.cpu_busy_ns += 50 * kMs;
    sys.tcp_retrans_segs = *sys.tcp_retrans_segs + 1;
    if (first || i == ticks - 1) {
      t.system = sys;
      // The TCP table with the namespace's conntrack at both ends, rlimits at the end only.
      model::TcpTableSample table;
      table.at_ns = t.at_ns;
      table.conntrack_count = first ? 1000 : 250000;
      table.conntrack_max = 262144;
      table.conntrack_drop = first ? 3 : 10;
      table.conntrack_early_drop = first ? 0 : 500;
      table.conntrack_insert_failed = 0;
      t.system->tcp_table = table;
      if (!first) {
        model::ProcessRlimits r;
        r.pid = 100;
        r.uid = 1000;
        r.nproc_soft = 64;
        r.uid_tasks = 60;
        r.memlock_soft_bytes = 8 << 20;
        r.locked_bytes = 1 << 20;
        r.stack_bytes = 132 << 10;
        r.core_soft_bytes = 0;
        t.system->rlimits = model::RlimitSample{{r}};
      }
    }
    model::CollectorSample c;
    c.delayacct_readable = true;
    c.delayacct_on = true;
    c.taskstats_open = true;
    c.thread_samples = u * 3;
    c.cpu_ns = static_cast<std::int64_t>(u) * kMs;
    c.cpus_allowed = 1.5;
    c.socket_problem = "sock_diag: \"refused\"";
    if (i == ticks - 1) t.collector = c;
    t.closing = i == ticks - 1;
    s.ticks.push_back(std::move(t));
  }
  return s;
}

std::string report(const model::Samples& s, model::Window w = {}) {
  model::Observation obs = model::build_observation(s.info, s.ticks, w);
  return render::diagnosis_json(obs, analysis::diagnose(obs)).dump(1);
}

util::Result<std::unique_ptr<RecordingWriter>> write(const std::string& path,
                                                     const model::Samples& s,
                                                     WriterOptions opt = {}) {
  auto w = RecordingWriter::create(path, std::move(opt));
  if (!w) return w.error();
  (*w)->begin(s.info);
  for (const auto& t : s.ticks) (*w)->add(t);
  return w;
}

TEST(Recording, ReplaysTheSameObservation) {
  const std::string path = temp_path("round_trip.chokepoint");
  const model::Samples s = sample_window(20);
  {
    auto w = write(path, s);
    ASSERT_TRUE(w) << w.error().message;
    EXPECT_EQ((*w)->ticks_written(), 20u);
    EXPECT_FALSE((*w)->failing());
  }
  auto back = read_all(path);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->ticks.size(), s.ticks.size());
  EXPECT_EQ(back->info.target.spec, "100");
  // Schema 6: each connection's RTT variance and retransmits come back as they were read; schema
  // 7: its unacknowledged segments.
  for (std::size_t i = 0; i < s.ticks.size(); ++i) {
    ASSERT_EQ(back->ticks[i].sockets.size(), s.ticks[i].sockets.size());
    for (std::size_t k = 0; k < s.ticks[i].sockets.size(); ++k) {
      EXPECT_EQ(back->ticks[i].sockets[k].rttvar_us, s.ticks[i].sockets[k].rttvar_us);
      EXPECT_EQ(back->ticks[i].sockets[k].total_retrans, s.ticks[i].sockets[k].total_retrans);
      // Schema 7: unacknowledged segments too.
      EXPECT_EQ(back->ticks[i].sockets[k].unacked_segments, s.ticks[i].sockets[k].unacked_segments);
    }
  }
  EXPECT_EQ(back->info.interval_ns, 100 * kMs);
  const std::string live = report(s);
  EXPECT_NE(live.find("fdatasync /d/log"), std::string::npos);
  EXPECT_NE(live.find("worker\\n)x"), std::string::npos);
  EXPECT_NE(live.find("\"early_drop_window\": 500"), std::string::npos) << live;
  EXPECT_NE(live.find("\"uid_tasks\": 60"), std::string::npos) << live;
  EXPECT_NE(live.find("RLIMIT_NPROC"), std::string::npos) << live;
  EXPECT_NE(live.find("nf_conntrack_max 262144 (95%)"), std::string::npos) << live;
  EXPECT_EQ(report(*back), live);
  // A part of it too.
  const model::Window part{1'500 * kMs, 2'200 * kMs};
  EXPECT_EQ(report(*back, part), report(s, part));
  auto reader = RecordingReader::open(path);
  ASSERT_TRUE(reader);
  EXPECT_EQ(reader->meta().schema_version, kSchemaVersion);
  ASSERT_TRUE(reader->time_range());
  EXPECT_EQ(reader->time_range()->first, 1'000 * kMs);
  EXPECT_EQ(reader->time_range()->second, 2'900 * kMs);
}

// Schema 3 keeps each process's parent (its first read's), which groups processes into tiers.
TEST(Recording, KeepsEachProcesssParent) {
  const std::string path = temp_path("ppid.chokepoint");
  const model::Samples s = sample_window(5);
  ASSERT_TRUE(write(path, s));
  auto back = read_all(path);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->ticks.size(), 5u);
  ASSERT_EQ(back->ticks[0].processes.size(), 1u);
  EXPECT_EQ(back->ticks[0].processes[0].ppid, std::optional<int>(1));
  EXPECT_EQ(back->ticks[0].processes[0].name, std::optional<std::string>("svc"));
  ASSERT_EQ(back->ticks[1].processes.size(), 1u);
  EXPECT_FALSE(back->ticks[1].processes[0].ppid);  // the first read's only, as written
}

// The exact mode's sums survive a recording: only changed entries are written per tick, and a
// recording without them (made before the exact mode) reads as one without the exact mode.
TEST(Recording, KeepsTheExactModesSums) {
  const std::string path = temp_path("exact.chokepoint");
  model::Samples s = sample_window(20);
  for (std::size_t i = 0; i < s.ticks.size(); ++i) {
    model::ExactSample x;
    x.state.on = true;
    x.state.mode = "auto";
    x.state.switches = 100 * i;
    x.state.thin_every_max = 1;
    x.state.thin_below_ns_max = 250'000 * i;  // the largest thinning threshold so far
    model::ExactWait w;
    w.pid = 100;
    w.tid = 1;
    w.kind = model::ExactKind::kUninterruptible;
    w.syscall_nr = SYS_fdatasync;
    w.object = 3;
    w.ns = 40 * kMs * i;
    w.count = i;
    w.start_time_ticks = 1234;             // sample_window()'s threads
    if (i % 2 == 0) x.waits.push_back(w);  // unchanged on odd ticks: not given again
    // A wait-for edge (kernel thread 2 woke 1), changed on every third tick.
    model::WakeEdge e;
    e.waker_pid = e.wakee_pid = 100;
    e.waker_tid = 2;
    e.waker_kind = model::WakerKind::kKernelThread;
    e.wakee_tid = 1;
    e.syscall_nr = SYS_futex;
    e.object = 0x7f0000001000;
    e.ns = 30 * kMs * i;
    e.count = i;
    if (i % 3 == 0) x.edges.push_back(e);
    // What two fds the sums named are, on the tick that first named them (model::FdName).
    if (i == 4) {
      x.fd_names = {{100, 9, model::FdRole::kRegularFile, "/d/\"other\"\nlog"},
                    {100, 12, model::FdRole::kSocketClient, "upstream 127.0.0.1:9001"},
                    // A path is any bytes: not UTF-8, it is kept with U+FFFD in their place.
                    {100, 13, model::FdRole::kRegularFile, "/d/\xff\xfe.log"}};
    }
    s.ticks[i].exact = std::move(x);
  }
  {
    auto w = write(path, s);
    ASSERT_TRUE(w) << w.error().message;
  }
  auto back = read_all(path);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->ticks.size(), s.ticks.size());
  for (std::size_t i = 0; i < s.ticks.size(); ++i) {
    ASSERT_TRUE(back->ticks[i].exact) << i;
    const auto& got = *back->ticks[i].exact;
    EXPECT_TRUE(got.state.on);
    EXPECT_EQ(got.state.mode, "auto");
    EXPECT_EQ(got.state.switches, 100 * i);
    EXPECT_EQ(got.state.thin_below_ns_max, 250'000 * i);
    // The first tick is a keyframe: every entry so far; later ticks only the changed ones.
    ASSERT_EQ(got.waits.size(), s.ticks[i].exact->waits.size()) << i;
    for (std::size_t k = 0; k < got.waits.size(); ++k) {
      EXPECT_EQ(got.waits[k].ns, s.ticks[i].exact->waits[k].ns);
      EXPECT_EQ(got.waits[k].kind, model::ExactKind::kUninterruptible);
      EXPECT_EQ(got.waits[k].syscall_nr, SYS_fdatasync);
      EXPECT_EQ(got.waits[k].start_time_ticks, 1234u);
    }
    ASSERT_EQ(got.edges.size(), s.ticks[i].exact->edges.size()) << i;
    for (std::size_t k = 0; k < got.edges.size(); ++k) {
      const auto& want = s.ticks[i].exact->edges[k];
      EXPECT_EQ(got.edges[k].ns, want.ns);
      EXPECT_EQ(got.edges[k].count, want.count);
      EXPECT_EQ(got.edges[k].object, want.object);
      EXPECT_EQ(got.edges[k].waker_tid, 2);
      EXPECT_EQ(got.edges[k].waker_kind, model::WakerKind::kKernelThread);
      EXPECT_EQ(got.edges[k].wakee_tid, 1);
      EXPECT_EQ(got.edges[k].syscall_nr, SYS_futex);
    }
    ASSERT_EQ(got.fd_names.size(), s.ticks[i].exact->fd_names.size()) << i;
    for (std::size_t k = 0; k < got.fd_names.size(); ++k) {
      const auto& want = s.ticks[i].exact->fd_names[k];
      EXPECT_EQ(got.fd_names[k].pid, want.pid);
      EXPECT_EQ(got.fd_names[k].fd, want.fd);
      EXPECT_EQ(got.fd_names[k].role, want.role);
      EXPECT_EQ(got.fd_names[k].detail,
                want.fd == 13 ? "/d/\xEF\xBF\xBD\xEF\xBF\xBD.log" : want.detail);
    }
  }
  EXPECT_EQ(report(*back), report(s));
  EXPECT_NE(report(s).find("time split"), std::string::npos);
  // Schema 2 packs the sums beside the document: a blob that does not decode is an error.
  const std::string damaged = temp_path("exact_damaged.chokepoint");
  ASSERT_TRUE(copy_changed(path, damaged, "UPDATE exact_sample SET waits = x'80' WHERE tick = 3"));
  auto bad = read_all(damaged);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("exact sums of tick 3"), std::string::npos);
  EXPECT_FALSE(bad.error().hint.empty());
  // Schema 3 packs the wait-for edges too.
  ASSERT_TRUE(copy_changed(path, damaged, "UPDATE exact_sample SET edges = x'80' WHERE tick = 4"));
  bad = read_all(damaged);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("wait-for edges of tick 4"), std::string::npos);
  EXPECT_FALSE(bad.error().hint.empty());
  // Names of fds that are not what a writer writes (a hostile file) are left out, one by one.
  ASSERT_TRUE(copy_changed(path, damaged,
                           "UPDATE exact_sample SET sample = json_set(sample, '$.fd_names', "
                           "json('[[100, 9, 99, \"/role out of range\"], [100, \"9\", 1, \"/x\"], "
                           "[100, 9, 1], 7, [100, 10, 1, \"/kept\"]]')) WHERE tick = 6"));
  bad = read_all(damaged);
  ASSERT_TRUE(bad) << bad.error().message;
  std::size_t names = 0;
  for (const auto& t : bad->ticks) {
    if (!t.exact) continue;
    for (const auto& n : t.exact->fd_names) {
      ++names;
      if (n.fd == 10) {
        EXPECT_EQ(n.detail, "/kept");
      }
    }
  }
  EXPECT_EQ(names, 4u);  // tick 4's three and the one well-formed row
  // Without the table (a recording made before the exact mode): no exact samples, no error.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DROP TABLE exact_sample", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto old = read_all(path);
  ASSERT_TRUE(old) << old.error().message;
  ASSERT_EQ(old->ticks.size(), s.ticks.size());
  for (const auto& t : old->ticks) EXPECT_FALSE(t.exact);
}

TEST(Recording, FileHasTheDocumentedIdentityAndPassesIntegrityCheck) {
  const std::string path = temp_path("identity.chokepoint");
  auto writer = write(path, sample_window(3));
  ASSERT_TRUE(writer);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  auto one = [&](const char* sql) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, nullptr), SQLITE_OK) << sql;
    EXPECT_EQ(sqlite3_step(st), SQLITE_ROW) << sql;
    std::string v = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return v;
  };
  // WAL while it is written (readers do not block the writer); one plain file once finished.
  EXPECT_EQ(one("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(one("SELECT count(*) FROM tick"), "3");
  sqlite3_close(db);
  writer->reset();
  EXPECT_FALSE(std::filesystem::exists(path + "-wal"));
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  EXPECT_EQ(one("PRAGMA journal_mode"), "delete");
  EXPECT_EQ(one("PRAGMA application_id"), std::to_string(kApplicationId));
  EXPECT_EQ(one("PRAGMA user_version"), std::to_string(kSchemaVersion));
  EXPECT_EQ(one("PRAGMA integrity_check"), "ok");
  // thread_pack keeps per tick the number of thread rows and the sum of their run deltas: their
  // sum is what the threads used after their first sight.
  std::uint64_t rows = 0, run = 0;
  std::map<int, std::uint64_t> last;
  for (const auto& t : sample_window(3).ticks) {
    for (const auto& th : t.threads) {
      if (!th.first) {
        ++rows;
        run += th.run_ns - last[th.key.tid];
      }
      last[th.key.tid] = th.run_ns;
    }
  }
  ASSERT_GT(rows, 0u);
  EXPECT_EQ(one("SELECT sum(threads) FROM thread_pack"), std::to_string(rows));
  EXPECT_EQ(one("SELECT sum(run_ns) FROM thread_pack"), std::to_string(run));
  sqlite3_close(db);
}

TEST(Recording, ForeignTruncatedAndNewerFilesGiveErrorsWithHints) {
  const std::string text = temp_path("notes.txt");
  std::ofstream(text) << "not a database\n";
  auto r = RecordingReader::open(text);
  ASSERT_FALSE(r);
  EXPECT_FALSE(r.error().hint.empty());

  auto missing = RecordingReader::open(temp_path("does_not_exist"));
  ASSERT_FALSE(missing);
  EXPECT_FALSE(missing.error().hint.empty());

  const std::string other = temp_path("other.db");
  std::filesystem::remove(other);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(other.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t(x)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto foreign = RecordingReader::open(other);
  ASSERT_FALSE(foreign);
  EXPECT_NE(foreign.error().message.find("not a chokepoint recording"), std::string::npos);
  // Nor is it replaced by a writer.
  auto clobber = RecordingWriter::create(other, {});
  ASSERT_FALSE(clobber);
  EXPECT_TRUE(std::filesystem::exists(other));

  const std::string newer = temp_path("newer.chokepoint");
  ASSERT_TRUE(write(newer, sample_window(2)));
  ASSERT_EQ(sqlite3_open(newer.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto future = RecordingReader::open(newer);
  ASSERT_FALSE(future);
  EXPECT_NE(future.error().message.find("schema 99"), std::string::npos);

  // Cut at every 4 KiB page boundary and in the middle of pages: an error or a shorter replay,
  // never a crash.
  const std::string full = temp_path("full.chokepoint");
  ASSERT_TRUE(write(full, sample_window(30)));
  const auto size = std::filesystem::file_size(full);
  const std::string cut = temp_path("cut.chokepoint");
  for (std::uintmax_t len = 0; len < size; len += 1500) {
    std::filesystem::remove(cut);
    std::filesystem::copy_file(full, cut);
    std::filesystem::resize_file(cut, len);
    auto samples = read_all(cut);
    if (!samples) {
      EXPECT_FALSE(samples.error().message.empty()) << len;
    }
  }
}

TEST(Recording, HostileValuesAreClampedNotTrusted) {
  const std::string path = temp_path("hostile.chokepoint");
  ASSERT_TRUE(write(path, sample_window(4)));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "UPDATE thread_base SET state=100000, site=-4, fd_role=999, "
                         "fd_detail=123456, syscall_nr=1e15;"
                         "UPDATE system_sample SET sample='{\"cpu\":[1,2],\"disks\":7}';"
                         "UPDATE collector_sample SET sample='not json';"
                         "UPDATE socket_sample SET state=42, local_addr=-1;"
                         "UPDATE tick SET at_ns=-at_ns WHERE id=2;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto samples = read_all(path);
  ASSERT_TRUE(samples) << samples.error().message;
  ASSERT_EQ(samples->ticks.size(), 4u);
  (void)report(*samples);  // builds without tripping over anything
}

// A thread_pack blob that does not decode (cut, or bytes that are not varints) is an error with a
// hint, never a crash or a read past its end; any other bytes decode to values that are clamped.
TEST(Recording, DamagedThreadPacksGiveErrorsWithHints) {
  const std::string path = temp_path("damaged_pack.chokepoint");
  ASSERT_TRUE(write(path, sample_window(6)));
  for (const char* damage : {"UPDATE thread_pack SET data = substr(data, 1, length(data) - 1)",
                             "UPDATE thread_pack SET data = x'ffffffffffffffffffffff01'",
                             "UPDATE thread_pack SET data = x'0208'"}) {
    const std::string copy = temp_path("damaged_copy.chokepoint");
    ASSERT_TRUE(copy_changed(path, copy, damage)) << damage;
    auto samples = read_all(copy);
    ASSERT_FALSE(samples) << damage;
    EXPECT_NE(samples.error().message.find("thread rows of tick"), std::string::npos);
    EXPECT_FALSE(samples.error().hint.empty());
  }
  // Random bytes: an error or a replay, never a crash.
  for (int seed = 0; seed < 50; ++seed) {
    const std::string copy = temp_path("random_copy.chokepoint");
    ASSERT_TRUE(copy_changed(path, copy, "UPDATE thread_pack SET data = randomblob(length(data))"));
    auto samples = read_all(copy);
    if (samples) (void)report(*samples);
  }
}

// Schema 4 compresses a tick's thread rows, exact sums and edges when that pays (many threads):
// they replay exactly, and a damaged compressed blob is an error with a hint.
TEST(Recording, CompressedBlobsReplayExactlyAndDamagedOnesGiveErrors) {
  model::Samples s = sample_window(4);
  for (auto& t : s.ticks) {
    const bool first = &t == &s.ticks.front();
    t.exact = model::ExactSample{};
    t.exact->state.on = true;
    for (int tid = 10; tid < 400; ++tid) {
      const auto run = static_cast<std::uint64_t>(t.at_ns / 1000 + tid * 7919);
      auto th = thread(tid, t.at_ns, first, run, in_syscall(SYS_futex));
      th.utime_ns = run / 3;
      th.stime_ns = run - th.utime_ns;  // the sampler's split: one value stored
      t.threads.push_back(std::move(th));
      model::ExactWait w;
      w.pid = 100;
      w.tid = tid;
      w.kind = model::ExactKind::kInterruptible;
      w.syscall_nr = SYS_futex;
      w.object = 0xdeadbeef00;
      w.ns = run * 3;
      w.count = run / 1000;
      w.start_time_ticks = 1234;
      t.exact->waits.push_back(w);
      model::WakeEdge e;
      e.waker_pid = 100;
      e.waker_tid = tid + 1;
      e.wakee_pid = 100;
      e.wakee_tid = tid;
      e.syscall_nr = SYS_futex;
      e.object = 0xdeadbeef00;
      e.ns = run * 2;
      e.count = run / 999;
      t.exact->edges.push_back(e);
    }
  }
  const std::string path = temp_path("compressed.chokepoint");
  ASSERT_TRUE(write(path, s));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(
      sqlite3_prepare_v2(db,
                         "SELECT (SELECT count(*) FROM thread_pack WHERE hex(substr(data, 1, "
                         "1)) = '01'), (SELECT count(*) FROM exact_sample WHERE "
                         "hex(substr(waits, 1, 1)) = '01' AND hex(substr(edges, 1, 1)) = '01')",
                         -1, &st, nullptr),
      SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), 3);  // every tick after the first (zstd: codec 1)
  EXPECT_GE(sqlite3_column_int(st, 1), 3);
  sqlite3_finalize(st);
  sqlite3_close(db);
  auto back = read_all(path);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->ticks.size(), s.ticks.size());
  for (std::size_t i = 1; i < s.ticks.size(); ++i) {
    ASSERT_EQ(back->ticks[i].threads.size(), s.ticks[i].threads.size()) << i;
    for (std::size_t k = 0; k < s.ticks[i].threads.size(); ++k) {
      const auto& a = back->ticks[i].threads[k];
      const auto& b = s.ticks[i].threads[k];
      EXPECT_EQ(a.run_ns, b.run_ns);
      EXPECT_EQ(a.utime_ns, b.utime_ns);
      EXPECT_EQ(a.stime_ns, b.stime_ns);
    }
    EXPECT_EQ(back->ticks[i].exact->waits.size(), s.ticks[i].exact->waits.size());
    EXPECT_EQ(back->ticks[i].exact->edges.size(), s.ticks[i].exact->edges.size());
  }
  EXPECT_EQ(report(*back), report(s));
  const std::string copy = temp_path("compressed_damaged.chokepoint");
  for (auto [damage, what] : std::initializer_list<std::pair<const char*, const char*>>{
           {"UPDATE thread_pack SET data = substr(data, 1, 30) || zeroblob(20) || substr(data, 51) "
            "WHERE tick = 3",
            "thread rows of tick 3"},
           {"UPDATE exact_sample SET waits = substr(waits, 1, length(waits) - 2) WHERE tick = 2",
            "exact sums of tick 2"},
           {"UPDATE exact_sample SET edges = x'01' || randomblob(100) WHERE tick = 4",
            "wait-for edges of tick 4"}}) {
    ASSERT_TRUE(copy_changed(path, copy, damage)) << damage;
    auto bad = read_all(copy);
    ASSERT_FALSE(bad) << damage;
    EXPECT_NE(bad.error().message.find(what), std::string::npos) << bad.error().message;
    EXPECT_FALSE(bad.error().hint.empty());
  }
}

// A thread renamed after its first read (pthread_setname_np, an exec) keeps its new name in a
// recording: read back in the tick it was seen in, in a window that starts at a later keyframe,
// and after rotation dropped the tick of the rename. A window before it has the old name.
TEST(Recording, ARenamedThreadKeepsItsNewNameAcrossKeyframesAndRotation) {
  model::Samples s = sample_window(400);           // 40 s; thread 2 is read at every even tick
  const std::string renamed = "io\x1b[2J-worker";  // hostile names survive unchanged
  for (auto& t : s.ticks) {
    if (t.at_ns != 2'000 * kMs) continue;
    for (auto& th : t.threads) {
      if (th.key.tid == 2) th.comm = renamed;
    }
  }
  const auto comm_of_2 = [](const model::Observation& obs) {
    for (const auto& a : obs.threads) {
      if (a.key.tid == 2) return a.comm;
    }
    return std::string("(no thread 2)");
  };
  const std::string path = temp_path("renamed.chokepoint");
  WriterOptions opt;
  opt.keyframe_every_ns = 5'000 * kMs;
  ASSERT_TRUE(write(path, s, opt));
  auto back = read_all(path);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->ticks.size(), s.ticks.size());
  for (std::size_t i = 0; i < s.ticks.size(); ++i) {
    for (std::size_t k = 0; k < back->ticks[i].threads.size(); ++k) {
      const auto& got = back->ticks[i].threads[k];
      if (got.key.tid != 2 || got.first || back->ticks[i].at_ns > 2'000 * kMs) continue;
      // The read that saw the rename carries the name, none before it.
      EXPECT_EQ(got.comm, back->ticks[i].at_ns == 2'000 * kMs ? renamed : "") << i;
    }
  }
  EXPECT_EQ(comm_of_2(model::build_observation(back->info, back->ticks)), renamed);
  EXPECT_EQ(comm_of_2(model::build_observation(back->info, back->ticks, {0, 1'900 * kMs})),
            "worker\n)x");
  // From a keyframe after the rename: its base row carries the new name.
  const auto from_keyframe = [&](const model::Samples& in) {
    std::vector<model::Tick> later;
    for (const auto& t : in.ticks) {
      if (t.at_ns >= 11'000 * kMs) later.push_back(t);
    }
    return comm_of_2(model::build_observation(in.info, later));
  };
  EXPECT_EQ(from_keyframe(*back), renamed);

  // Rotation drops the rename's tick; the keyframes after it still name the thread.
  opt.keep_for_ns = 20'000 * kMs;
  const std::string aged = temp_path("renamed_aged.chokepoint");
  ASSERT_TRUE(write(aged, s, opt));
  auto young = read_all(aged);
  ASSERT_TRUE(young) << young.error().message;
  ASSERT_GT(young->ticks.front().at_ns, 2'000 * kMs);
  EXPECT_EQ(comm_of_2(model::build_observation(young->info, young->ticks)), renamed);
}

TEST(Recording, ReplacesAnEarlierRecording) {
  const std::string path = temp_path("replaced.chokepoint");
  ASSERT_TRUE(write(path, sample_window(10)));
  ASSERT_TRUE(write(path, sample_window(3)));
  auto back = read_all(path);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->ticks.size(), 3u);
}

TEST(Recording, RotationDropsTheOldestTicksAndKeepsTheNewest) {
  const std::string path = temp_path("rotated.chokepoint");
  WriterOptions opt;
  opt.max_bytes = 256 * 1024;
  const model::Samples s = sample_window(4000);
  ASSERT_TRUE(write(path, s, opt));
  auto back = read_all(path);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_FALSE(back->ticks.empty());
  EXPECT_LT(back->ticks.size(), s.ticks.size());
  EXPECT_EQ(back->ticks.back().at_ns, s.ticks.back().at_ns);
  EXPECT_LE(std::filesystem::file_size(path), 2 * opt.max_bytes);
  // What is left replays: the threads still alive at the end are there, from a keyframe.
  model::Observation obs = model::build_observation(back->info, back->ticks);
  EXPECT_EQ(obs.threads.size(), 2u);
  EXPECT_GT(obs.threads[0].split.total_ns(), 0);

  WriterOptions keep;
  keep.keep_for_ns = 30'000 * kMs;
  keep.keyframe_every_ns = 5'000 * kMs;
  const std::string aged = temp_path("aged.chokepoint");
  ASSERT_TRUE(write(aged, s, keep));
  auto young = read_all(aged);
  ASSERT_TRUE(young);
  const std::int64_t span = young->ticks.back().at_ns - young->ticks.front().at_ns;
  EXPECT_GE(span, 30'000 * kMs);
  EXPECT_LE(span, 36'000 * kMs);
}

}  // namespace
}  // namespace chokepoint::store
