// diagnose with the service probes, end to end on the real binary: a redis-server found among the
// target's processes with no flag, its evictions in the report and the JSON, and the errors and
// hints of a probe that cannot read its service while the kernel-level verdict still stands.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "integration/probes/service_process.h"
#include "store/recording.h"
#include "support/cli.h"

namespace chokepoint {
namespace {

using test_support::Background;

// A Redis at 8 MiB of maxmemory (allkeys-lru) under redis-benchmark: 1 KiB sets over a million
// keys, so it evicts through the whole test. Fails the test when it cannot start.
struct EvictingRedis {
  test_support::TempDir dir{"chokepoint-diag-redis"};
  std::uint16_t port = test_support::free_loopback_port();
  std::optional<Background> redis, bench;
  bool start() {
    auto r = Background::start(
        "redis-server",
        {"--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", dir.path, "--maxmemory", "8mb", "--maxmemory-policy", "allkeys-lru"});
    EXPECT_TRUE(r) << r.error().message;
    if (!r) return false;
    redis.emplace(std::move(*r));
    EXPECT_TRUE(test_support::wait_for_port(port, 5000));
    auto b = Background::start(
        "redis-benchmark", {"-p", std::to_string(port), "-n", "100000000", "-r", "1000000", "-d",
                            "1024", "-t", "set", "-c", "8", "-q"});
    EXPECT_TRUE(b);
    if (!b) return false;
    bench.emplace(std::move(*b));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    return true;
  }
};

// The report's one service is the Redis at `port`, with its evictions as a memory warning.
void expect_evicting_redis(const nlohmann::json& j, std::uint16_t port) {
  ASSERT_TRUE(j.contains("services")) << j.dump(2);
  ASSERT_EQ(j["services"].size(), 1u);
  const auto& s = j["services"][0];
  EXPECT_EQ(s["kind"], "redis");
  EXPECT_EQ(s["endpoint"], "127.0.0.1:" + std::to_string(port));
  bool evicting = false;
  for (const auto& f : s["findings"]) {
    if (f["message"].get<std::string>().find("evicting") != std::string::npos) {
      evicting = true;
      EXPECT_EQ(f["resource"], "memory");
      EXPECT_EQ(f["severity"], "warning");
    }
  }
  EXPECT_TRUE(evicting) << s.dump(2);
}

TEST(DiagnoseProbes, FindsARedisTargetWithNoFlagAndFoldsItsEvictionsIntoTheReport) {
  EvictingRedis ev;
  ASSERT_TRUE(ev.start());
  const std::uint16_t port = ev.port;
  auto& redis = ev.redis;
  auto r = test_support::run_chokepoint(
      {"diagnose", "--pid", std::to_string(redis->pid()), "-d", "2s", "--no-stacks", "--json"}, 60);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  const auto j = nlohmann::json::parse(r.stdout_text);
  expect_evicting_redis(j, port);
  const std::string source = "redis probe 127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(j["sources"].contains(source)) << j["sources"].dump(2);
  EXPECT_TRUE(j["sources"][source]["available"].get<bool>());

  // The text report has the section, and --no-probes leaves it out.
  auto text = test_support::run_chokepoint(
      {"diagnose", "--pid", std::to_string(redis->pid()), "-d", "1s", "--no-stacks"}, 60);
  EXPECT_NE(text.stdout_text.find("Services (their own statistics"), std::string::npos)
      << text.stdout_text;
  auto none = test_support::run_chokepoint(
      {"diagnose", "--pid", std::to_string(redis->pid()), "-d", "1s", "--no-stacks", "--no-probes"},
      60);
  EXPECT_EQ(none.stdout_text.find("Services (their own statistics"), std::string::npos);
}

// record runs the probes as diagnose does, over the whole recording, and keeps what they read:
// the replay of the whole recording has the services, and --no-probes leaves them out.
TEST(DiagnoseProbes, RecordKeepsWhatARedisProbeReadAndReplayShowsIt) {
  EvictingRedis ev;
  ASSERT_TRUE(ev.start());
  const std::uint16_t port = ev.port;
  auto& redis = ev.redis;
  const std::string file = ev.dir.path + "/redis.chokepoint";
  auto rec = test_support::run_chokepoint(
      {"record", "--pid", std::to_string(redis->pid()), "-o", file, "-i", "500ms", "-d", "2s"}, 60);
  ASSERT_EQ(rec.exit_code, 0) << rec.stderr_text;
  EXPECT_NE(rec.stderr_text.find("kept what 1 service probe read"), std::string::npos)
      << rec.stderr_text;
  auto replay = test_support::run_chokepoint({"replay", file, "--json"}, 60);
  ASSERT_EQ(replay.exit_code, 0) << replay.stderr_text;
  const auto j = nlohmann::json::parse(replay.stdout_text);
  expect_evicting_redis(j, port);
  const std::string source = "redis probe 127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(j["sources"].contains(source)) << j["sources"].dump(2);
  auto text = test_support::run_chokepoint({"replay", file}, 60);
  EXPECT_NE(text.stdout_text.find("Services (their own statistics"), std::string::npos)
      << text.stdout_text;

  const std::string bare = ev.dir.path + "/bare.chokepoint";
  auto none = test_support::run_chokepoint({"record", "--pid", std::to_string(redis->pid()), "-o",
                                            bare, "-i", "500ms", "-d", "1s", "--no-probes"},
                                           60);
  ASSERT_EQ(none.exit_code, 0) << none.stderr_text;
  auto bare_replay = test_support::run_chokepoint({"replay", bare}, 60);
  ASSERT_EQ(bare_replay.exit_code, 0) << bare_replay.stderr_text;
  EXPECT_EQ(bare_replay.stdout_text.find("Services (their own statistics"), std::string::npos);
}

// Schema 5: record keeps every poll of the probe, timestamped, as it goes (one probe_sample row
// per poll, Redis's counters moving under redis-benchmark), and a replay of a part of the
// recording folds that part's polls into its own service evidence: the reads of the part, and the
// evictions the Redis did then.
TEST(DiagnoseProbes, RecordKeepsEachPollAndReplayOfAPartHasThatPartsServiceEvidence) {
  EvictingRedis ev;
  ASSERT_TRUE(ev.start());
  const std::string file = ev.dir.path + "/series.chokepoint";
  auto rec = test_support::run_chokepoint({"record", "--pid", std::to_string(ev.redis->pid()), "-o",
                                           file, "-i", "500ms", "-d", "6s", "--stacks", "off"},
                                          60);
  ASSERT_EQ(rec.exit_code, 0) << rec.stderr_text;
  auto reader = store::RecordingReader::open(file);
  ASSERT_TRUE(reader) << reader.error().message;
  ASSERT_EQ(reader->probes().size(), 1u);
  EXPECT_EQ(reader->probes()[0].kind, model::ServiceKind::kRedis);
  EXPECT_EQ(reader->probes()[0].endpoint, "127.0.0.1:" + std::to_string(ev.port));
  auto polls = reader->probe_polls(std::numeric_limits<std::int64_t>::min(),
                                   std::numeric_limits<std::int64_t>::max());
  ASSERT_TRUE(polls) << polls.error().message;
  // Read once a second, plus the first and last reads: 6 to 8 over 6 s (a loaded machine may
  // delay one).
  ASSERT_GE(polls->size(), 6u);
  ASSERT_LE(polls->size(), 9u);
  double last_commands = -1;
  std::int64_t last_at = 0;
  for (const auto& p : *polls) {
    ASSERT_TRUE(p.ok) << p.error;
    EXPECT_GT(p.at_ns, last_at);
    last_at = p.at_ns;
    const double commands = p.reading.counters.at("total_commands_processed");
    EXPECT_GT(commands, last_commands) << "redis-benchmark keeps it busy: the counter moves";
    last_commands = commands;
    EXPECT_GT(p.reading.gauges.at("used_memory"), 0);
  }
  // The whole replay's source counts every poll (the summary note holds the same reads).
  const std::string source = "redis probe 127.0.0.1:" + std::to_string(ev.port);
  auto whole = test_support::run_chokepoint({"replay", file, "--json"}, 60);
  ASSERT_EQ(whole.exit_code, 0) << whole.stderr_text;
  const auto jw = nlohmann::json::parse(whole.stdout_text);
  EXPECT_NE(jw["sources"][source]["detail"].get<std::string>().find(std::to_string(polls->size()) +
                                                                    " reads"),
            std::string::npos)
      << jw["sources"][source].dump();

  // A part: 1 s to 5 s of the recording holds three to five of the polls (its rates need two).
  const auto range = reader->time_range();
  ASSERT_TRUE(range);
  auto in_part = reader->probe_polls(range->first + 1'000'000'000, range->first + 5'000'000'000);
  ASSERT_TRUE(in_part);
  ASSERT_GE(in_part->size(), 2u);
  ASSERT_LT(in_part->size(), polls->size());
  for (const char* json_flag : {"--json", ""}) {
    std::vector<std::string> args = {"replay", file, "--from", "1s", "--to", "5s"};
    if (*json_flag) args.emplace_back(json_flag);
    auto part = test_support::run_chokepoint(args, 60);
    ASSERT_EQ(part.exit_code, 0) << part.stderr_text;
    if (!*json_flag) {
      EXPECT_NE(part.stdout_text.find("Services (their own statistics"), std::string::npos)
          << part.stdout_text;
      EXPECT_NE(part.stdout_text.find("evicting"), std::string::npos) << part.stdout_text;
      continue;
    }
    const auto j = nlohmann::json::parse(part.stdout_text);
    expect_evicting_redis(j, ev.port);
    EXPECT_NE(j["sources"][source]["detail"].get<std::string>().find(
                  std::to_string(in_part->size()) + " reads"),
              std::string::npos)
        << j["sources"][source].dump();
  }
}

TEST(DiagnoseProbes, AProbeThatCannotReadItsServiceIsASourceWithAHintAndTheVerdictStands) {
  const std::uint16_t nothing = test_support::free_loopback_port();
  auto sleeper = Background::start("sleep", {"30"});
  ASSERT_TRUE(sleeper);
  auto r = test_support::run_chokepoint(
      {"diagnose", "--pid", std::to_string(sleeper->pid()), "-d", "1s", "--no-stacks", "--json",
       "--redis", "127.0.0.1:" + std::to_string(nothing)},
      60);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  const auto j = nlohmann::json::parse(r.stdout_text);
  EXPECT_EQ(j["verdict"], "none");
  ASSERT_EQ(j["services"].size(), 1u);
  EXPECT_NE(j["services"][0]["problem"].get<std::string>().find("cannot read redis"),
            std::string::npos);
  EXPECT_NE(j["services"][0]["hint"].get<std::string>().find("--redis"), std::string::npos);
}

// Eight clients update one row, each holding it for 20 ms: the backends queue on the row lock.
// The kernel sees them sleeping on their latch (idle); PostgreSQL's wait events say lock, and the
// verdict must follow. The peer-authenticated cluster is found from the postmaster with no flag.
TEST(DiagnoseProbes, PostgresRowLockWaitsMoveFromIdleToLock) {
  test_support::PostgresServer pg;
  ASSERT_TRUE(pg.start("peer"));
  ASSERT_EQ(pg.run_as_postgres({"psql", "-q", "-h", pg.dir.path, "-c",
                                "CREATE TABLE counters (id int PRIMARY KEY, n bigint); "
                                "INSERT INTO counters VALUES (1, 0);"},
                               30'000),
            0);
  const std::string script = pg.dir.path + "/hot_row.sql";
  {
    std::ofstream(script) << "BEGIN;\nUPDATE counters SET n = n + 1 WHERE id = 1;\n"
                             "SELECT pg_sleep(0.02);\nCOMMIT;\n";
  }
  auto bench = Background::start(
      "setpriv", {"--reuid=postgres", "--regid=postgres", "--clear-groups", "pgbench", "-n", "-h",
                  pg.dir.path, "-c", "8", "-T", "30", "-f", script, "postgres"});
  ASSERT_TRUE(bench);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  const std::string pid = std::to_string(pg.pid());
  const std::string recording = pg.dir.path + "/window.chokepoint";
  auto with = test_support::run_chokepoint({"diagnose", "--pid", pid, "--children", "-d", "3s",
                                            "--no-stacks", "--json", "--record", recording},
                                           60);
  ASSERT_EQ(with.exit_code, 0) << with.stderr_text;
  const auto j = nlohmann::json::parse(with.stdout_text);
  EXPECT_EQ(j["verdict"], "lock") << j["time_split"].dump();
  EXPECT_EQ(j["bottlenecks"][0]["kind"], "row") << j["bottlenecks"][0].dump(2);
  ASSERT_FALSE(j["bottlenecks"].empty());
  bool named = false;
  for (const auto& e : j["bottlenecks"][0]["evidence"]) {
    if (e.get<std::string>().find("Lock:transactionid") != std::string::npos) named = true;
  }
  EXPECT_TRUE(named) << j["bottlenecks"][0].dump(2);
  // The recording keeps what the probe read: a replay applies the same rules and says the same.
  auto replay = test_support::run_chokepoint({"replay", recording, "--json"}, 60);
  ASSERT_EQ(replay.exit_code, 0) << replay.stderr_text;
  const auto r = nlohmann::json::parse(replay.stdout_text);
  EXPECT_EQ(r["verdict"], j["verdict"]);
  EXPECT_EQ(r["time_split"], j["time_split"]);
  EXPECT_EQ(r["bottlenecks"], j["bottlenecks"]);
  EXPECT_EQ(r["services"], j["services"]);
  EXPECT_EQ(r["sources"], j["sources"]);
  // Schema 5: every poll of pg_stat_activity (10 Hz) is in the recording, with the backends'
  // wait events; a part of the window (1 s to 2 s) refines its own split from its own polls, so
  // it reads as the row lock too (without them a part read as waiting for work).
  auto reader = store::RecordingReader::open(recording);
  ASSERT_TRUE(reader) << reader.error().message;
  ASSERT_EQ(reader->probes().size(), 1u);
  EXPECT_EQ(reader->probes()[0].kind, model::ServiceKind::kPostgres);
  auto polls = reader->probe_polls(std::numeric_limits<std::int64_t>::min(),
                                   std::numeric_limits<std::int64_t>::max());
  ASSERT_TRUE(polls) << polls.error().message;
  EXPECT_GE(polls->size(), 15u);
  int locked = 0;
  for (const auto& p : *polls) {
    for (const auto& [backend, state] : p.reading.backend_states) {
      if (state == "Lock:transactionid") ++locked;
    }
  }
  EXPECT_GT(locked, 0);
  auto part = test_support::run_chokepoint(
      {"replay", recording, "--from", "1s", "--to", "2s", "--json"}, 60);
  ASSERT_EQ(part.exit_code, 0) << part.stderr_text;
  const auto pj = nlohmann::json::parse(part.stdout_text);
  EXPECT_EQ(pj["verdict"], "lock") << pj["time_split"].dump();
  ASSERT_TRUE(pj.contains("services")) << part.stdout_text.substr(0, 2000);
  EXPECT_EQ(pj["services"][0]["kind"], "postgres");
  // Without the probe, the same backends read as waiting for work.
  auto without = test_support::run_chokepoint(
      {"diagnose", "--pid", pid, "--children", "-d", "3s", "--no-stacks", "--json", "--no-probes"},
      60);
  ASSERT_EQ(without.exit_code, 0) << without.stderr_text;
  const auto k = nlohmann::json::parse(without.stdout_text);
  EXPECT_NE(k["verdict"], "lock") << k["time_split"].dump();
  EXPECT_LT(k["time_split"]["lock"].get<double>(), j["time_split"]["lock"].get<double>() / 4);
}

TEST(DiagnoseProbes, MalformedProbeFlagsAreUsageErrors) {
  auto sleeper = Background::start("sleep", {"30"});
  ASSERT_TRUE(sleeper);
  const std::string pid = std::to_string(sleeper->pid());
  test_support::expect_cli_error(
      test_support::run_chokepoint({"diagnose", "--pid", pid, "--redis", "localhost"}), 2,
      "--redis");
  test_support::expect_cli_error(
      test_support::run_chokepoint({"diagnose", "--pid", pid, "--nginx-status", "ftp://x/"}), 2,
      "--nginx-status");
  test_support::expect_cli_error(
      test_support::run_chokepoint({"diagnose", "--pid", pid, "--haproxy-stats", "relative.sock"}),
      2, "--haproxy-stats");
}

}  // namespace
}  // namespace chokepoint
