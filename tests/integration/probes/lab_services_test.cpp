// The lab's service scenarios (issue 14, lab/services.h): the seed's database and cache remedies
// as real fixes, each with its verdict. A real PostgreSQL 15 or Redis, the lab in front of it,
// wrk or `chokepoint load` driving the lab, and `chokepoint diagnose` with the probe: the
// verdict must name the database's own bottleneck, and move when the lab's fix flag is on.
// Timing-sensitive measurements of real programs: label verdict (release build only).
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "service_process.h"
#include "support/background.h"
#include "support/cli.h"
#include "support/http.h"
#include "support/lab_process.h"

namespace chokepoint::probes_test {
namespace {

using test_support::Background;
using test_support::LabProcess;

nlohmann::json diagnose(const std::vector<std::string>& args) {
  auto r = test_support::run_chokepoint(args, 60);
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.stdout_text;
  return j;
}

std::string summary(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("verdict")) return "(no report)";
  std::string s = "verdict " + j["verdict"].get<std::string>() + "; split " +
                  j["time_split"].dump() + "; bottlenecks:";
  for (const auto& b : j["bottlenecks"]) {
    s += " " + b["resource"].get<std::string>() + "/" + b["kind"].get<std::string>() + "=" +
         std::to_string(b["share"].get<double>()).substr(0, 4);
  }
  return s;
}

// Every finding and evidence line of the report, for searching.
std::string all_text(const nlohmann::json& j) {
  std::string out;
  for (const auto& b : j.value("bottlenecks", nlohmann::json::array())) {
    for (const auto& e : b.value("evidence", nlohmann::json::array())) out += e.dump() + "\n";
  }
  for (const auto& s : j.value("services", nlohmann::json::array())) out += s.dump() + "\n";
  return out;
}

// The lab (one scenario, its fix flags) in front of a cluster, under load for `load_s`.
struct Rig {
  std::optional<LabProcess> lab;
  std::optional<Background> load;
};

Rig start_rig(const test_support::PostgresServer& pg, const std::string& scenario,
              const std::vector<std::string>& fix, const std::vector<std::string>& load_args) {
  Rig rig;
  std::vector<std::string> args = {"--scenario", scenario, "--port", "0", "--db", pg.conninfo()};
  args.insert(args.end(), fix.begin(), fix.end());
  // Creating the tables (200,000 rows for db-missing-index) comes before the ready line.
  auto lab = LabProcess::start(args, std::chrono::seconds(60));
  EXPECT_TRUE(lab) << lab.error().message;
  if (!lab) return rig;
  rig.lab.emplace(std::move(*lab));
  // wrk spreads its requests over random keys (bench/lab/keys_random.lua), as the shards need.
  const bool wrk = load_args.front() == "wrk";
  const std::string url =
      "http://127.0.0.1:" + std::to_string(rig.lab->port()) + (wrk ? "/" : "/?k=1");
  std::vector<std::string> argv = load_args;
  argv.push_back(url);
  const std::string program = argv.front();
  argv.erase(argv.begin());
  auto load = Background::start(program, argv);
  EXPECT_TRUE(load) << load.error().message;
  if (load) rig.load.emplace(std::move(*load));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // warm: connections, plans
  return rig;
}

std::vector<std::string> diagnose_postgres(const test_support::PostgresServer& pg) {
  return {"diagnose",    "--pid", std::to_string(pg.pid()), "--children", "-d", "3s",
          "--no-stacks", "--json"};
}

const std::vector<std::string> kWrk = {
    "wrk",       "-t1", "-c16", "-d30s",
    "--timeout", "10s", "-s",   std::string(CHOKEPOINT_SOURCE_DIR) + "/bench/lab/keys_random.lua"};

// Every request updates one counter row and keeps its transaction open while it sums 20,000
// rows: the backends queue on the row lock (Lock:transactionid/tuple), which the kernel sees as
// idle latch sleeps. Sharding the counter (--lock sharded) moves the verdict to the CPU.
TEST(LabServices, HotRowIsARowLockAndShardingMovesIt) {
  test_support::PostgresServer pg;
  ASSERT_TRUE(pg.start("trust"));
  nlohmann::json hot;
  {
    Rig rig = start_rig(pg, "db-hot-row", {}, kWrk);
    ASSERT_TRUE(rig.lab && rig.load);
    hot = diagnose(diagnose_postgres(pg));
  }
  EXPECT_EQ(hot["verdict"], "lock") << summary(hot);
  ASSERT_FALSE(hot["bottlenecks"].empty()) << summary(hot);
  EXPECT_EQ(hot["bottlenecks"][0]["kind"], "row") << summary(hot);
  EXPECT_NE(all_text(hot).find("chokepoint_lab_counters"), std::string::npos) << all_text(hot);
  // This cluster has no pg_stat_statements: the services section says how to load it.
  EXPECT_NE(all_text(hot).find("shared_preload_libraries"), std::string::npos) << all_text(hot);

  nlohmann::json sharded;
  {
    Rig rig = start_rig(pg, "db-hot-row", {"--lock", "sharded", "--lock-shards", "64"}, kWrk);
    ASSERT_TRUE(rig.lab && rig.load);
    sharded = diagnose(diagnose_postgres(pg));
  }
  EXPECT_NE(sharded["verdict"], "lock") << summary(sharded);
  EXPECT_LT(sharded["time_split"]["lock"].get<double>(),
            hot["time_split"]["lock"].get<double>() / 2)
      << summary(hot) << "\n"
      << summary(sharded);
}

// 500 requests/s, each a lookup by an unindexed column of a 200,000-row table: sequential scans
// keep the backends on both cores (cpu inside the database), and the probe names the table. With
// the index (--db-index) the same rate costs next to nothing.
TEST(LabServices, MissingIndexIsCpuInTheDatabaseAndTheIndexMovesIt) {
  test_support::PostgresServer pg;
  ASSERT_TRUE(pg.start("trust", false, {"shared_preload_libraries=pg_stat_statements"}));
  ASSERT_EQ(
      pg.run_as_postgres(
          {"psql", "-q", "-h", pg.dir.path, "-c", "CREATE EXTENSION pg_stat_statements"}, 30'000),
      0);
  const std::vector<std::string> rate = {
      test_support::chokepoint_bin(), "load", "--rate", "500", "-c", "32", "--duration", "30s"};
  nlohmann::json scan;
  {
    Rig rig = start_rig(pg, "db-missing-index", {}, rate);
    ASSERT_TRUE(rig.lab && rig.load);
    scan = diagnose(diagnose_postgres(pg));
  }
  EXPECT_EQ(scan["verdict"], "cpu") << summary(scan);
  EXPECT_NE(all_text(scan).find("table public.chokepoint_lab_items"), std::string::npos)
      << all_text(scan);
  EXPECT_NE(all_text(scan).find("a missing index"), std::string::npos) << all_text(scan);
  // pg_stat_statements names the statement that takes the time.
  bool statement = false;
  for (const auto& e : scan["bottlenecks"][0]["evidence"]) {
    const std::string line = e.get<std::string>();
    if (line.find("statement taking") != std::string::npos &&
        line.find("FROM chokepoint_lab_items WHERE k = $1") != std::string::npos) {
      statement = true;
    }
  }
  EXPECT_TRUE(statement) << scan["bottlenecks"][0].dump(2);

  nlohmann::json indexed;
  {
    Rig rig = start_rig(pg, "db-missing-index", {"--db-index"}, rate);
    ASSERT_TRUE(rig.lab && rig.load);
    indexed = diagnose(diagnose_postgres(pg));
  }
  EXPECT_NE(indexed["verdict"], "cpu") << summary(indexed);
  EXPECT_EQ(all_text(indexed).find("a missing index"), std::string::npos) << all_text(indexed);
}

// A commit per request on a cluster with fsync on: the backends wait for their WAL flush (disk).
// Asynchronous commit (--commit async) takes the flush off the request path.
TEST(LabServices, CommitPerRequestIsDiskAndAsyncCommitMovesIt) {
  test_support::PostgresServer pg;
  ASSERT_TRUE(pg.start("trust", /*fsync=*/true));
  nlohmann::json per_request;
  {
    Rig rig = start_rig(pg, "db-commit", {}, kWrk);
    ASSERT_TRUE(rig.lab && rig.load);
    per_request = diagnose(diagnose_postgres(pg));
  }
  EXPECT_EQ(per_request["verdict"], "disk") << summary(per_request);
  nlohmann::json async;
  {
    Rig rig = start_rig(pg, "db-commit", {"--commit", "async"}, kWrk);
    ASSERT_TRUE(rig.lab && rig.load);
    async = diagnose(diagnose_postgres(pg));
  }
  EXPECT_NE(async["verdict"], "disk") << summary(async);
  EXPECT_LT(async["time_split"]["disk"].get<double>(),
            per_request["time_split"]["disk"].get<double>() / 2)
      << summary(per_request) << "\n"
      << summary(async);
}

// --commit batch (lab/group_commit.h): requests from many connections at once are committed in
// groups, each one INSERT of an array of keys. Every request is answered only once its row is in
// the table, keys with the array's special characters (" and \) arrive as sent, and nothing is
// lost or written twice.
TEST(LabServices, BatchCommitStoresEveryRequestOnce) {
  test_support::PostgresServer pg;
  ASSERT_TRUE(pg.start("trust"));
  auto lab = LabProcess::start(
      {"--scenario", "db-commit", "--commit", "batch", "--port", "0", "--db", pg.conninfo()},
      std::chrono::seconds(60));
  ASSERT_TRUE(lab) << lab.error().message;
  constexpr int kConnections = 16;
  constexpr int kEach = 8;
  std::vector<std::string> failures(kConnections);
  std::vector<std::thread> clients;
  for (int c = 0; c < kConnections; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kEach; ++i) {
        const std::string key = "k=\"" + std::to_string(c) + "\\" + std::to_string(i);
        auto r = test_support::http_get(lab->port(), "/?" + key, std::chrono::seconds(10));
        if (!r) {
          failures[c] = r.error().message;
        } else if (r->status != 200 || r->body != "db-commit committed key=" + key + " (batch)\n") {
          failures[c] = std::to_string(r->status) + " " + r->body;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  for (const auto& f : failures) EXPECT_EQ(f, "");
  // psql fails (exit 3 with ON_ERROR_STOP) unless every key is in the table exactly once.
  const std::string check = "DO $$ BEGIN IF (SELECT count(*) FROM chokepoint_lab_orders) <> " +
                            std::to_string(kConnections * kEach) +
                            " OR (SELECT count(DISTINCT key) FROM chokepoint_lab_orders WHERE key "
                            "LIKE 'k=\"%\\\\%') <> " +
                            std::to_string(kConnections * kEach) +
                            " THEN RAISE EXCEPTION 'rows'; END IF; END $$";
  EXPECT_EQ(pg.run_as_postgres(
                {"psql", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg.dir.path, "-c", check}, 30'000),
            0);
}

// The cpu scenario on a hot key at 1,000 requests/s of 2 ms of CPU each (as the verdict test's
// cpu_cache_on fix): two cores' worth without a cache. With a real cache server in front
// (--cache redis|memcached) the work is done once and the answers come from the cache, so the lab
// is no longer CPU-bound, and the cache's probe (--redis, --memcached) reports the hits.
void cache_takes_the_cpu_verdict_away(const std::string& kind,
                                      const std::vector<std::string>& server_args) {
  const std::uint16_t port = test_support::free_loopback_port();
  std::vector<std::string> argv = server_args;
  argv.push_back(std::to_string(port));
  auto server_process = Background::start(kind == "redis" ? "redis-server" : "memcached", argv);
  ASSERT_TRUE(server_process) << server_process.error().message;
  ASSERT_TRUE(test_support::wait_for_port(port, 10'000));
  const std::string server = "127.0.0.1:" + std::to_string(port);
  auto run = [&](const std::vector<std::string>& cache) {
    std::vector<std::string> args = {"--scenario", "cpu", "--work-us", "2000", "--port", "0"};
    args.insert(args.end(), cache.begin(), cache.end());
    auto lab = LabProcess::start(args);
    EXPECT_TRUE(lab) << lab.error().message;
    if (!lab) return nlohmann::json();
    auto load = Background::start(test_support::chokepoint_bin(),
                                  {"load", "--rate", "1000", "-c", "16", "--duration", "30s",
                                   "http://127.0.0.1:" + std::to_string(lab->port()) + "/?k=7"});
    EXPECT_TRUE(load) << load.error().message;
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    return diagnose({"diagnose", "--pid", std::to_string(lab->pid()), "-d", "3s", "--no-stacks",
                     "--json", "--" + kind, server});
  };
  const nlohmann::json bare = run({});
  EXPECT_EQ(bare["verdict"], "cpu") << summary(bare);
  const nlohmann::json cached = run({"--cache", kind, "--cache-server", server});
  EXPECT_NE(cached["verdict"], "cpu") << summary(cached);
  ASSERT_TRUE(cached.contains("services")) << cached.dump(2);
  bool hits = false;
  for (const auto& s : cached["services"]) {
    if (s["kind"] == kind && s["summary"].get<std::string>().find("hit") != std::string::npos)
      hits = true;
  }
  EXPECT_TRUE(hits) << cached["services"].dump(2);
}

TEST(LabServices, RedisInFrontOfTheCpuScenarioTakesTheCpuVerdictAway) {
  cache_takes_the_cpu_verdict_away(
      "redis", {"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--port"});
}

TEST(LabServices, MemcachedInFrontOfTheCpuScenarioTakesTheCpuVerdictAway) {
  // memcached refuses to run as root without -u.
  cache_takes_the_cpu_verdict_away("memcached", {"-u", "nobody", "-l", "127.0.0.1", "-p"});
}

TEST(LabServices, DbScenariosWithoutADatabaseAreUsageErrors) {
  auto r = test_support::run_to_exit({"--scenario", "db-commit", "--port", "0"},
                                     test_support::default_lab_binary(), std::chrono::seconds(10));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 2);
  EXPECT_NE(r->stderr_text.find("needs --db"), std::string::npos) << r->stderr_text;
  auto c = test_support::run_to_exit({"--scenario", "cpu", "--cache", "redis", "--port", "0"},
                                     test_support::default_lab_binary(), std::chrono::seconds(10));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->exit_code, 2);
  EXPECT_NE(c->stderr_text.find("--cache-server"), std::string::npos) << c->stderr_text;
  // A server that is not there: exit 1 with a hint, before the ready line.
  auto gone = test_support::run_to_exit(
      {"--scenario", "db-commit", "--port", "0", "--db", "host=/nonexistent port=5432"},
      test_support::default_lab_binary(), std::chrono::seconds(20));
  ASSERT_TRUE(gone) << gone.error().message;
  EXPECT_EQ(gone->exit_code, 1);
  EXPECT_NE(gone->stderr_text.find("hint:"), std::string::npos) << gone->stderr_text;
}

}  // namespace
}  // namespace chokepoint::probes_test
