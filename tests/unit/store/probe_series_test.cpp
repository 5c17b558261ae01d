// Schema 5: the service probes' polls over time (store/probe_series.h), written tick by tick and
// read back by window; damaged rows are errors with hints, never crashes; older files have none.
#include "store/probe_series.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <random>

#include "store/recording.h"
#include "support/files.h"
#include "unit/store/copy_changed.h"

namespace chokepoint::store {
namespace {

using test::copy_changed;

constexpr std::int64_t kMs = 1'000'000;

std::string temp_path(const std::string& name) {
  static const test_support::TempDir dir("chokepoint-probe-series-test");
  return dir.path + "/" + name;
}

std::string one(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  std::string v;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != nullptr) {
      v = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return v;
}

const std::vector<model::ServiceProbe> kProbes = {
    {model::ServiceKind::kRedis, "127.0.0.1:6379", "hiredis over TCP: INFO"},
    {model::ServiceKind::kPostgres, "/tmp/pg:5432/postgres", "libpq \"quoted\"\n"}};

// Redis at 1 Hz: its counter grows 1,000 a second, one command appears at the third poll, and
// the fifth poll fails. PostgreSQL at 5 Hz: one backend alternating lock and idle.
std::vector<model::ServicePoll> polls(std::int64_t t0, int seconds) {
  std::vector<model::ServicePoll> out;
  for (int i = 0; i <= seconds * 5; ++i) {
    const std::int64_t at = t0 + i * 200 * kMs;
    if (i % 5 == 0) {
      model::ServicePoll p;
      p.at_ns = at;
      p.probe = 0;
      p.ok = i != 20;
      if (p.ok) {
        p.reading.counters["total_commands_processed"] = 1000.0 * i / 5;
        if (i >= 10) p.reading.counters["cmd:set:calls"] = 10.0 * i;
        p.reading.gauges["blocked_clients"] = i / 5;
        p.reading.gauges["mem_fragmentation_ratio"] = 1.25;
        p.reading.settings["maxmemory_policy"] = "allkeys-lru";
        p.reading.slow = {"12.1 ms KEYS \xff*"};
        p.reading.new_counters_were_zero = true;
      } else {
        p.error = "redis probe: cannot read redis at 127.0.0.1:6379: timed out";
        p.hint = "check that it is up";
      }
      out.push_back(p);
    }
    model::ServicePoll pg;
    pg.at_ns = at + kMs;
    pg.probe = 1;
    pg.ok = true;
    pg.reading.backend_states[4242] = i % 2 ? "Lock:transactionid" : "idle";
    out.push_back(pg);
  }
  return out;
}

// A recording of `seconds` at 1 s ticks with the polls of each tick written after it.
std::vector<model::ServicePoll> write_series(const std::string& path, int seconds,
                                             WriterOptions opt = {}) {
  auto w = RecordingWriter::create(path, std::move(opt));
  EXPECT_TRUE(w);
  if (!w) return {};
  model::RecordingInfo info;
  info.target = {"pid", "100", {}};
  info.interval_ns = 1000 * kMs;
  (*w)->begin(info);
  EXPECT_TRUE((*w)->set_probes(kProbes));
  const std::int64_t t0 = 1'000'000 * kMs;
  const auto all = polls(t0, seconds);
  std::size_t next = 0;
  for (int s = 0; s <= seconds; ++s) {
    model::Tick t;
    t.at_ns = t0 + s * 1000 * kMs + 5 * kMs;
    t.runnable = 1;
    (*w)->add(t);
    std::vector<model::ServicePoll> batch;
    while (next < all.size() && all[next].at_ns <= t.at_ns) batch.push_back(all[next++]);
    EXPECT_TRUE((*w)->add_probe_polls(batch));
  }
  std::vector<model::ServicePoll> rest(all.begin() + static_cast<std::ptrdiff_t>(next), all.end());
  EXPECT_TRUE((*w)->add_probe_polls(rest));
  return all;
}

TEST(ProbeSeries, EveryPollComesBackAsItWasReadInTimeOrder) {
  const std::string path = temp_path("series.chokepoint");
  const auto written = write_series(path, 6);
  auto r = RecordingReader::open(path);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->meta().schema_version, kSchemaVersion);  // the probe tables came with 5
  ASSERT_EQ(r->probes().size(), 2u);
  EXPECT_EQ(r->probes()[1].kind, model::ServiceKind::kPostgres);
  EXPECT_EQ(r->probes()[1].how, kProbes[1].how);
  auto back = r->probe_polls(std::numeric_limits<std::int64_t>::min(),
                             std::numeric_limits<std::int64_t>::max());
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->size(), written.size());
  for (std::size_t i = 0; i < written.size(); ++i) {
    const auto& a = written[i];
    const auto& b = (*back)[i];
    EXPECT_EQ(a.at_ns, b.at_ns);
    EXPECT_EQ(a.probe, b.probe);
    EXPECT_EQ(a.ok, b.ok);
    EXPECT_EQ(a.error, b.error);
    EXPECT_EQ(a.hint, b.hint);
    EXPECT_EQ(a.reading.counters, b.reading.counters);
    EXPECT_EQ(a.reading.gauges, b.reading.gauges);
    EXPECT_EQ(a.reading.settings, b.reading.settings);
    EXPECT_EQ(a.reading.backend_states, b.reading.backend_states);
    EXPECT_EQ(a.reading.new_counters_were_zero, b.reading.new_counters_were_zero);
    ASSERT_EQ(a.reading.slow.size(), b.reading.slow.size());
  }
  // The service's bytes that are not UTF-8 are replaced, not a failed write.
  EXPECT_EQ((*back)[0].reading.slow[0], "12.1 ms KEYS \xef\xbf\xbd*");
  // One row per poll; each with the first tick at or after it.
  EXPECT_EQ(one(path, "SELECT count(*) FROM probe_sample"), std::to_string(written.size()));
  EXPECT_EQ(one(path,
                "SELECT count(*) FROM probe_sample AS p JOIN tick AS t ON t.id = p.tick WHERE "
                "p.at_ns > t.at_ns OR p.at_ns <= coalesce((SELECT max(at_ns) FROM tick WHERE "
                "id < p.tick), -1)"),
            "0");
}

TEST(ProbeSeries, AWindowFoldsItsOwnPollsIntoItsOwnRates) {
  const std::string path = temp_path("window.chokepoint");
  const auto written = write_series(path, 6);
  auto r = RecordingReader::open(path);
  ASSERT_TRUE(r);
  const std::int64_t t0 = written.front().at_ns;
  // 2 s to 4 s: Redis polls at 2, 3 and 4 s (the one at 4 s failed).
  const std::int64_t from = t0 + 2000 * kMs, to = t0 + 4000 * kMs;
  auto part = r->probe_polls(from, to);
  ASSERT_TRUE(part);
  for (const auto& p : *part) {
    EXPECT_GE(p.at_ns, from);
    EXPECT_LE(p.at_ns, to);
  }
  const auto obs = model::fold_service_polls(r->probes(), *part, from, to);
  ASSERT_EQ(obs.size(), 2u);
  EXPECT_EQ(obs[0].samples_ok, 2);
  EXPECT_EQ(obs[0].samples_failed, 1);
  EXPECT_NE(obs[0].error.find("timed out"), std::string::npos);
  EXPECT_NEAR(obs[0].rate_per_s("total_commands_processed"), 1000, 1e-6);
  EXPECT_DOUBLE_EQ(obs[0].gauges.at("blocked_clients").mean, 2.5);
  // The whole recording against the same fold of everything: the same as a live runner's.
  const auto whole = model::fold_service_polls(r->probes(), written, 0, t0 * 2);
  EXPECT_EQ(whole[0].samples_ok, 6);
  EXPECT_NEAR(whole[0].rate_per_s("total_commands_processed"), 1000, 1e-6);
  EXPECT_EQ(whole[1].backend_waits.at(4242).at("Lock:transactionid"), 15);
}

TEST(ProbeSeries, LargePollsAreCompressedSmallOnesKeptAsText) {
  const std::string path = temp_path("codec.chokepoint");
  auto w = RecordingWriter::create(path, {});
  ASSERT_TRUE(w);
  (*w)->begin({});
  ASSERT_TRUE((*w)->set_probes(kProbes));
  model::Tick t;
  t.at_ns = 10 * kMs;
  (*w)->add(t);
  model::ServicePoll big;
  big.at_ns = 5 * kMs;
  big.ok = true;
  for (int i = 0; i < 200; ++i)
    big.reading.counters["cmd:command" + std::to_string(i) + ":usec"] = i;
  model::ServicePoll small;
  small.at_ns = 6 * kMs;
  small.probe = 1;
  small.ok = true;
  small.reading.backend_states[7] = "active";
  ASSERT_TRUE((*w)->add_probe_polls({big, small}));
  const auto [doc, stored] = (*w)->probe_document_bytes();
  EXPECT_LT(stored, doc);
  w->reset();
  EXPECT_EQ(one(path, "SELECT hex(substr(data, 1, 1)) FROM probe_sample WHERE probe = 0"), "01");
  EXPECT_EQ(one(path, "SELECT hex(substr(data, 1, 1)) FROM probe_sample WHERE probe = 1"), "00");
  // A small poll is JSON the sqlite3 CLI reads after its codec byte.
  EXPECT_EQ(one(path,
                "SELECT json_extract(CAST(substr(data, 2) AS TEXT), '$.backends.7') FROM "
                "probe_sample WHERE probe = 1"),
            "active");
  auto r = RecordingReader::open(path);
  ASSERT_TRUE(r);
  auto back = r->probe_polls(0, 100 * kMs);
  ASSERT_TRUE(back);
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].reading.counters, big.reading.counters);
}

TEST(ProbeSeries, DamagedRowsAreErrorsWithHintsNeverCrashes) {
  const std::string path = temp_path("damaged.chokepoint");
  write_series(path, 3);
  for (const char* damage :
       {"UPDATE probe_sample SET data = substr(data, 1, length(data) - 3) WHERE rowid = 2",
        "UPDATE probe_sample SET data = x'005b312c325d' WHERE rowid = 2",
        "UPDATE probe_sample SET data = x'07' WHERE rowid = 2",
        "UPDATE probe_sample SET data = x'01ffffffff' WHERE rowid = 2",
        "UPDATE probe_sample SET probe = 9 WHERE rowid = 2",
        "UPDATE probe_sample SET probe = -1 WHERE rowid = 2",
        "UPDATE probe_sample SET ok = 7 WHERE rowid = 2"}) {
    const std::string copy = temp_path("damaged_copy.chokepoint");
    ASSERT_TRUE(copy_changed(path, copy, damage)) << damage;
    auto r = RecordingReader::open(copy);
    ASSERT_TRUE(r) << damage;
    auto p = r->probe_polls(std::numeric_limits<std::int64_t>::min(),
                            std::numeric_limits<std::int64_t>::max());
    ASSERT_FALSE(p) << damage;
    EXPECT_NE(p.error().message.find("probe poll of tick"), std::string::npos) << damage;
    EXPECT_FALSE(p.error().hint.empty());
  }
  // A probe table that is not the writer's: the file is refused when opened, with a hint.
  for (const char* damage :
       {"UPDATE probe SET kind = 'mysql' WHERE id = 1", "UPDATE probe SET id = 5 WHERE id = 1"}) {
    const std::string copy = temp_path("damaged_probe.chokepoint");
    ASSERT_TRUE(copy_changed(path, copy, damage)) << damage;
    auto r = RecordingReader::open(copy);
    ASSERT_FALSE(r) << damage;
    EXPECT_NE(r.error().message.find("probe table"), std::string::npos);
    EXPECT_FALSE(r.error().hint.empty());
  }
  // Mistyped fields read as absent; random bytes are an error or a poll, never a crash.
  const std::string copy = temp_path("mistyped.chokepoint");
  const std::string mistyped =
      R"({"counters": {"a": "x", "b": null, "c": 2}, "gauges": [], "backends": )"
      R"({"-4": "idle", "12": 3, "13": "idle"}, "slow": 5})";
  std::string sql = "UPDATE probe_sample SET data = x'00";
  for (unsigned char c : mistyped) sql += fmt::format("{:02x}", c);
  sql += "'";
  ASSERT_TRUE(copy_changed(path, copy, sql.c_str()));
  auto r = RecordingReader::open(copy);
  ASSERT_TRUE(r);
  auto p = r->probe_polls(std::numeric_limits<std::int64_t>::min(),
                          std::numeric_limits<std::int64_t>::max());
  ASSERT_TRUE(p) << p.error().message;
  for (const auto& poll : *p) {
    if (!poll.ok) continue;
    EXPECT_EQ(poll.reading.counters.size(), 1u);
    EXPECT_TRUE(poll.reading.gauges.empty());
    EXPECT_EQ(poll.reading.backend_states.size(), 1u);
  }
  for (int seed = 0; seed < 30; ++seed) {
    ASSERT_TRUE(
        copy_changed(path, copy, "UPDATE probe_sample SET data = randomblob(length(data))"));
    auto rr = RecordingReader::open(copy);
    ASSERT_TRUE(rr);
    (void)rr->probe_polls(0, std::numeric_limits<std::int64_t>::max());
  }
}

TEST(ProbeSeries, RotationDropsThePollsWithTheirTicks) {
  const std::string path = temp_path("rotated.chokepoint");
  WriterOptions opt;
  opt.keep_for_ns = 20'000 * kMs;
  opt.keyframe_every_ns = 5'000 * kMs;
  write_series(path, 60, opt);
  auto r = RecordingReader::open(path);
  ASSERT_TRUE(r);
  const auto range = r->time_range();
  ASSERT_TRUE(range);
  auto p = r->probe_polls(std::numeric_limits<std::int64_t>::min(),
                          std::numeric_limits<std::int64_t>::max());
  ASSERT_TRUE(p);
  ASSERT_FALSE(p->empty());
  // What is left starts within a tick before the oldest tick kept, and ends with the newest.
  EXPECT_GE(p->front().at_ns, range->first - 1000 * kMs);
  EXPECT_GE(p->back().at_ns, range->second - 1000 * kMs);
  EXPECT_LT(p->size(), polls(0, 60).size());
}

TEST(ProbeSeries, OlderSchemasHaveNoSeries) {
  for (const char* name :
       {"lab_lock_v2.chokepoint", "lab_lock_v3.chokepoint", "lab_lock_v4.chokepoint"}) {
    auto r = RecordingReader::open(std::string(CHOKEPOINT_FIXTURES_DIR) + "/recordings/" + name);
    ASSERT_TRUE(r) << name << ": " << r.error().message;
    EXPECT_TRUE(r->probes().empty());
    auto p = r->probe_polls(0, std::numeric_limits<std::int64_t>::max());
    ASSERT_TRUE(p);
    EXPECT_TRUE(p->empty());
  }
}

}  // namespace
}  // namespace chokepoint::store
