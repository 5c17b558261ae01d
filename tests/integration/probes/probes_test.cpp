// The service probes against the real servers, each started by its test on loopback or a Unix
// socket in a temporary directory: the numbers a probe reports must move with what the test did
// to the server, and a server that is down or goes away gives an error with a hint.
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "analysis/services.h"
#include "collect/probes/memcached_probe.h"
#include "collect/probes/postgres_probe.h"
#include "collect/probes/proxy_probes.h"
#include "collect/probes/redis_probe.h"
#include "integration/probes/service_process.h"
#include "support/http.h"

namespace chokepoint::collect::probes {
namespace {

// The finding of `report` whose message contains `needle`, or nullptr.
const analysis::ServiceFinding* finding(const analysis::ServiceReport& report,
                                        const std::string& needle) {
  for (const auto& f : report.findings) {
    if (f.message.find(needle) != std::string::npos) return &f;
  }
  return nullptr;
}

std::string all_findings(const analysis::ServiceReport& report) {
  std::string out = report.summary + "\n";
  for (const auto& f : report.findings) out += "  " + f.message + "\n";
  return out;
}

using test_support::Background;
using test_support::TempDir;

std::vector<std::unique_ptr<Probe>> one(util::Result<std::unique_ptr<Probe>> p) {
  std::vector<std::unique_ptr<Probe>> v;
  if (p) v.push_back(std::move(*p));
  return v;
}

struct Redis {
  TempDir dir{"chokepoint-redis"};
  std::uint16_t port = test_support::free_loopback_port();
  std::optional<Background> server;
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  void start() {
    auto bg = Background::start(
        "redis-server",
        {"--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", dir.path, "--latency-monitor-threshold", "1", "--slowlog-log-slower-than",
         "10000", "--protected-mode", "no", "--enable-debug-command", "local"});
    ASSERT_TRUE(bg) << bg.error().message;
    server.emplace(std::move(*bg));
    ASSERT_TRUE(test_support::wait_for_port(port, 5000)) << "redis-server did not start";
  }
  int cli(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"redis-cli", "-p", std::to_string(port)};
    argv.insert(argv.end(), args.begin(), args.end());
    return test_support::run_command(argv, 10'000);
  }
};

TEST(RedisProbe, CountsCommandsEvictionsAndTheSlowLog) {
  Redis redis;
  ASSERT_NO_FATAL_FAILURE(redis.start());
  ASSERT_EQ(redis.cli({"CONFIG", "SET", "maxmemory", "8mb"}), 0);
  ASSERT_EQ(redis.cli({"CONFIG", "SET", "maxmemory-policy", "allkeys-lru"}), 0);
  ProbeRunner runner(one(make_redis_probe(redis.address())), 100'000'000);
  runner.start();
  // 20,000 SETs of 1 KiB values into 8 MiB: many must be evicted; one 50 ms command is slow.
  ASSERT_EQ(test_support::run_command({"redis-benchmark", "-p", std::to_string(redis.port), "-n",
                                       "20000", "-r", "100000", "-d", "1024", "-t", "set", "-q"},
                                      60'000),
            0);
  ASSERT_EQ(redis.cli({"DEBUG", "SLEEP", "0.05"}), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto obs = runner.finish();
  ASSERT_EQ(obs.size(), 1u);
  const auto& o = obs[0];
  EXPECT_EQ(o.samples_failed, 0) << o.error;
  EXPECT_GE(o.samples_ok, 2);  // at start, once a second, and at the end
  EXPECT_GE(o.delta("total_commands_processed"), 20000);
  EXPECT_GE(o.delta("cmd:set:calls"), 20000);
  EXPECT_GT(o.delta("evicted_keys"), 5000);
  EXPECT_EQ(o.settings.at("maxmemory_policy"), "allkeys-lru");
  EXPECT_EQ(o.gauges.at("maxmemory").last, 8.0 * 1024 * 1024);
  ASSERT_FALSE(o.slow.empty());
  EXPECT_NE(o.slow.front().find("DEBUG"), std::string::npos) << o.slow.front();
  ASSERT_TRUE(o.gauges.count("latency_max_ms:command")) << "LATENCY LATEST had no command event";
  EXPECT_GE(o.gauges.at("latency_max_ms:command").max, 40);

  // What the rules make of it: evictions are a memory finding with the policy named, and the
  // slow log names the command.
  const auto report = analysis::assess_services(obs).at(0);
  EXPECT_TRUE(report.problem.empty()) << report.problem;
  const auto* ev = finding(report, "evicting");
  ASSERT_NE(ev, nullptr) << all_findings(report);
  EXPECT_EQ(ev->resource, model::Resource::kMemory);
  EXPECT_TRUE(ev->warning);
  EXPECT_NE(ev->message.find("allkeys-lru"), std::string::npos);
  EXPECT_NE(finding(report, "slow log: "), nullptr) << all_findings(report);
  EXPECT_NE(report.summary.find("commands/s"), std::string::npos);
}

TEST(RedisProbe, AServerThatGoesAwayIsAnErrorWithAHintAndComesBack) {
  Redis redis;
  ASSERT_NO_FATAL_FAILURE(redis.start());
  auto probe = make_redis_probe(redis.address());
  ASSERT_TRUE(probe);
  ASSERT_TRUE((*probe)->read());
  redis.server.reset();  // killed and reaped
  auto down = (*probe)->read();
  ASSERT_FALSE(down);
  EXPECT_NE(down.error().message.find("redis probe"), std::string::npos);
  EXPECT_NE(down.error().hint.find("--redis"), std::string::npos);
  ASSERT_NO_FATAL_FAILURE(redis.start());
  auto again = (*probe)->read();
  EXPECT_TRUE(again) << (again ? "" : again.error().message);
}

TEST(RedisProbe, MalformedAddressesAreUsageErrors) {
  for (const char* bad : {"localhost", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:70000",
                          "127.0.0.1:0x10", "[::1]6379", ":6379"}) {
    auto p = make_redis_probe(bad);
    ASSERT_FALSE(p) << bad;
    EXPECT_FALSE(p.error().hint.empty()) << bad;
  }
  EXPECT_TRUE(make_redis_probe("[::1]:6379"));
  EXPECT_TRUE(make_redis_probe("/run/redis/redis.sock"));
}

TEST(MemcachedProbe, CountsHitsMissesAndEvictions) {
  const std::uint16_t port = test_support::free_loopback_port();
  // -m 4: four MiB of items, so 2,000 sets of 10 KiB must evict.
  auto server = Background::start("memcached", {"-l", "127.0.0.1", "-p", std::to_string(port), "-U",
                                                "0", "-m", "4", "-u", "nobody"});
  ASSERT_TRUE(server) << server.error().message;
  ASSERT_TRUE(test_support::wait_for_port(port, 5000));
  ProbeRunner runner(one(make_memcached_probe("127.0.0.1:" + std::to_string(port))), 100'000'000);
  runner.start();
  // The text protocol by hand from the test: 2,000 sets of 10 KiB, then 100 gets of a key that
  // is there and 100 of one that is not.
  const std::string value(10 * 1024, 'x');
  std::string script;
  for (int i = 0; i < 2000; ++i) {
    script += "set k" + std::to_string(i) + " 0 0 " + std::to_string(value.size()) +
              " noreply\r\n" + value + "\r\n";
  }
  for (int i = 0; i < 100; ++i) script += "get k1999\r\nget nothere\r\n";
  script += "quit\r\n";
  ASSERT_TRUE(test_support::send_and_drain(port, script, 30'000));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto obs = runner.finish();
  ASSERT_EQ(obs.size(), 1u);
  EXPECT_EQ(obs[0].samples_failed, 0) << obs[0].error;
  EXPECT_EQ(obs[0].delta("get_hits"), 100);
  EXPECT_EQ(obs[0].delta("get_misses"), 100);
  EXPECT_GT(obs[0].delta("evictions"), 100);
  EXPECT_EQ(obs[0].gauges.at("limit_maxbytes").last, 4.0 * 1024 * 1024);

  const auto report = analysis::assess_services(obs).at(0);
  const auto* ev = finding(report, "evicting");
  ASSERT_NE(ev, nullptr) << all_findings(report);
  EXPECT_EQ(ev->resource, model::Resource::kMemory);
  // 100 hits and 100 misses: a 50% hit ratio, worth a finding at this rate.
  EXPECT_NE(report.summary.find("hit ratio 50%"), std::string::npos) << report.summary;
}

TEST(MemcachedProbe, NothingListeningIsAnErrorWithAHint) {
  auto probe =
      make_memcached_probe("127.0.0.1:" + std::to_string(test_support::free_loopback_port()));
  ASSERT_TRUE(probe);
  auto r = (*probe)->read();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().hint.find("--memcached"), std::string::npos);
}

// nginx on a free loopback port, with stub_status at /nginx_status, started in `dir`.
std::optional<Background> start_nginx(const std::string& d, std::uint16_t port) {
  std::ofstream(d + "/nginx.conf")
      << "daemon off;\nworker_processes 1;\npid " << d << "/nginx.pid;\nerror_log " << d
      << "/error.log;\nevents { worker_connections 1024; }\nhttp {\n  access_log off;\n"
      << "  client_body_temp_path " << d << "/body;\n  proxy_temp_path " << d
      << "/proxy;\n  fastcgi_temp_path " << d << "/fcgi;\n  uwsgi_temp_path " << d
      << "/uwsgi;\n  scgi_temp_path " << d << "/scgi;\n"
      << "  server {\n    listen 127.0.0.1:" << port << ";\n"
      << "    location = /nginx_status { stub_status; }\n"
      << "    location / { return 200 \"hello\\n\"; }\n  }\n}\n";
  const std::string bin = test_support::find_program({"/usr/sbin/nginx", "/usr/bin/nginx"});
  if (bin.empty()) {
    ADD_FAILURE() << "nginx is not installed (scripts/setup installs nginx-light)";
    return std::nullopt;
  }
  auto bg = Background::start(bin, {"-p", d, "-c", d + "/nginx.conf"});
  if (!bg || !test_support::wait_for_port(port, 5000)) {
    ADD_FAILURE() << "nginx did not start: " << test_support::read_file(d + "/error.log");
    return std::nullopt;
  }
  return std::move(*bg);
}

TEST(NginxProbe, CountsRequestsFromStubStatus) {
  TempDir dir("chokepoint-nginx");
  const std::uint16_t port = test_support::free_loopback_port();
  auto nginx = start_nginx(dir.path, port);
  ASSERT_TRUE(nginx);
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/nginx_status";
  ProbeRunner runner(one(make_nginx_probe(url)), 100'000'000);
  runner.start();
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(test_support::http_get(port, "/"));
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  auto obs = runner.finish();
  ASSERT_EQ(obs.size(), 1u);
  EXPECT_EQ(obs[0].samples_failed, 0) << obs[0].error;
  // The 50 GETs plus the probe's own reads of the status page after the first.
  EXPECT_GE(obs[0].delta("requests"), 50);
  EXPECT_LE(obs[0].delta("requests"), 50 + obs[0].samples_ok);
  EXPECT_GE(obs[0].gauges.at("active").max, 1);

  // A page that is not stub_status is an error that says where to point.
  auto wrong = make_nginx_probe("http://127.0.0.1:" + std::to_string(port) + "/");
  ASSERT_TRUE(wrong);
  auto r = (*wrong)->read();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().hint.find("stub_status"), std::string::npos);
}

TEST(HaproxyProbe, SeesTheBackendQueueWhenItsServerIsFull) {
  TempDir dir("chokepoint-haproxy");
  const std::string d = dir.path;
  const std::uint16_t nginx_port = test_support::free_loopback_port();
  auto nginx = start_nginx(d, nginx_port);
  ASSERT_TRUE(nginx);
  const std::string socket_path = d + "/haproxy.sock";
  const std::uint16_t haproxy_port = test_support::free_loopback_port();
  // maxconn 1 on the only server: 16 concurrent clients queue in the backend.
  std::ofstream(d + "/haproxy.cfg")
      << "global\n  stats socket " << socket_path << " mode 600 level user\n"
      << "defaults\n  mode http\n  timeout connect 2s\n  timeout client 10s\n"
      << "  timeout server 10s\n  timeout queue 10s\n"
      << "frontend web\n  bind 127.0.0.1:" << haproxy_port << "\n  default_backend app\n"
      << "backend app\n  server web1 127.0.0.1:" << nginx_port << " maxconn 1\n";
  auto hp = Background::start("haproxy", {"-db", "-f", d + "/haproxy.cfg"});
  ASSERT_TRUE(hp) << hp.error().message;
  ASSERT_TRUE(test_support::wait_for_port(haproxy_port, 5000)) << "haproxy did not start";
  ASSERT_TRUE(test_support::wait_for_path(socket_path, 5000));

  ProbeRunner runner(one(make_haproxy_probe(socket_path)), 50'000'000);
  runner.start();
  ASSERT_EQ(test_support::run_command({"wrk", "-t2", "-c32", "-d2s",
                                       "http://127.0.0.1:" + std::to_string(haproxy_port) + "/"},
                                      30'000),
            0);
  auto obs = runner.finish();
  ASSERT_EQ(obs.size(), 1u);
  const auto& o = obs[0];
  EXPECT_EQ(o.samples_failed, 0) << o.error;
  EXPECT_GT(o.delta("backend:app:stot"), 1000);
  EXPECT_GT(o.delta("frontend:web:stot"), 0);
  EXPECT_GT(o.delta("frontend:web:req_tot"), 1000);
  ASSERT_TRUE(o.gauges.count("backend:app:qcur"));
  EXPECT_GE(o.gauges.at("server:app/web1:slim").last, 1);
  // With 32 clients and one connection to the server, requests waited in the queue.
  EXPECT_GE(o.gauges.at("backend:app:qcur").max, 1);
  // No health checks are configured: HAProxy says so rather than UP.
  EXPECT_EQ(o.settings.at("server:app/web1:status"), "no check");

  // The queue points at the upstream tier, by the backend's name.
  const auto report = analysis::assess_services(obs).at(0);
  const auto* q = finding(report, "backend app: up to");
  ASSERT_NE(q, nullptr) << all_findings(report);
  EXPECT_EQ(q->resource, model::Resource::kNetwork);
  EXPECT_TRUE(q->warning);
  EXPECT_NE(q->message.find("1 of 1 servers at their maxconn"), std::string::npos) << q->message;
  EXPECT_NE(q->fix.find("backend app"), std::string::npos);
}

TEST(HaproxyProbe, AMissingSocketIsAnErrorWithAHint) {
  auto probe = make_haproxy_probe("/nonexistent/haproxy.sock");
  ASSERT_TRUE(probe);
  auto r = (*probe)->read();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().hint.find("--haproxy-stats"), std::string::npos);
  EXPECT_FALSE(make_haproxy_probe("haproxy.sock"));
}

struct Session {
  PGconn* conn = nullptr;
  explicit Session(const std::string& conninfo) : conn(PQconnectdb(conninfo.c_str())) {}
  ~Session() { PQfinish(conn); }
  bool ok() const { return PQstatus(conn) == CONNECTION_OK; }
  bool exec(const std::string& sql) {
    PGresult* r = PQexec(conn, sql.c_str());
    const bool good = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    return good;
  }
};

TEST(PostgresProbe, SeesARowLockWaitAndWhoBlocksIt) {
  test_support::PostgresServer pg;
  ASSERT_TRUE(pg.start());
  Session setup(pg.conninfo());
  ASSERT_TRUE(setup.ok()) << PQerrorMessage(setup.conn);
  ASSERT_TRUE(setup.exec("CREATE TABLE counters (id int PRIMARY KEY, n bigint)"));
  ASSERT_TRUE(setup.exec("INSERT INTO counters VALUES (1, 0)"));
  // The holder takes the row and sits on it; the waiter's UPDATE of the same row blocks.
  Session holder(pg.conninfo());
  ASSERT_TRUE(holder.exec("BEGIN"));
  ASSERT_TRUE(holder.exec("UPDATE counters SET n = n + 1 WHERE id = 1"));
  const int holder_pid = PQbackendPID(holder.conn);
  Session waiter(pg.conninfo());
  const int waiter_pid = PQbackendPID(waiter.conn);
  ASSERT_EQ(PQsendQuery(waiter.conn, "UPDATE counters SET n = n + 1 WHERE id = 1"), 1);
  // The UPDATE is sent, not yet queued: wait (bounded) until the server shows it on the lock.
  bool queued = false;
  for (int i = 0; i < 200 && !queued; ++i) {
    PGresult* r = PQexec(setup.conn, ("SELECT 1 FROM pg_stat_activity WHERE pid = " +
                                      std::to_string(waiter_pid) + " AND wait_event_type = 'Lock'")
                                         .c_str());
    queued = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    PQclear(r);
    if (!queued) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(queued) << "the waiter's UPDATE never queued on the row lock within 10 s";

  auto pd = conninfo_from_postmaster_pid(pg.data(), "postgres");
  ASSERT_TRUE(pd) << pd.error().message;
  // Reads driven here rather than by a ProbeRunner, so that a slow, loaded machine still gets
  // twenty of them while the lock is held.
  auto probe = make_postgres_probe(*pd, "postmaster.pid");
  ReadingAccumulator acc(probe->kind(), probe->endpoint(), probe->how());
  for (int i = 0; i < 20; ++i) {
    auto r = probe->read();
    if (r) {
      acc.add(*r, i * 100'000'000LL);
    } else {
      acc.add_failure(r.error());
    }
  }
  ASSERT_TRUE(holder.exec("COMMIT"));
  while (PGresult* r = PQgetResult(waiter.conn)) PQclear(r);
  const auto o = acc.finish();
  EXPECT_EQ(o.samples_failed, 0) << o.error << " / " << o.hint;
  ASSERT_TRUE(o.backend_waits.count(waiter_pid));
  const auto& w = o.backend_waits.at(waiter_pid);
  ASSERT_TRUE(w.count("Lock:transactionid")) << "waiter states: " << w.size();
  EXPECT_EQ(w.at("Lock:transactionid"), 20);
  // The holder is idle in its transaction, waiting for its client.
  ASSERT_TRUE(o.backend_waits.count(holder_pid));
  EXPECT_TRUE(o.backend_waits.at(holder_pid).count("Client:ClientRead"));
  ASSERT_FALSE(o.slow.empty());
  const std::string chain =
      "pid " + std::to_string(waiter_pid) + " waits for {" + std::to_string(holder_pid) + "}";
  EXPECT_NE(o.slow.back().find(chain), std::string::npos) << o.slow.back();
  EXPECT_EQ(o.settings.at("synchronous_commit"), "on");
  EXPECT_EQ(o.settings.at("max_connections"), "100");
  EXPECT_GE(o.counters_last.count("xact_commit"), 1u);

  // In the database's own split the waiter's time is lock, and the chain names both pids.
  const auto report = analysis::assess_services({o}).at(0);
  const auto* lock = finding(report, "Lock:transactionid");
  ASSERT_NE(lock, nullptr) << all_findings(report);
  EXPECT_EQ(lock->resource, model::Resource::kLock);
  EXPECT_NE(lock->message.find("100% of the busy backends' time"), std::string::npos)
      << lock->message;
  EXPECT_NE(finding(report, "lock chain: " + chain), nullptr) << all_findings(report);
}

TEST(PostgresProbe, AServerThatIsNotThereIsAnErrorWithAHint) {
  TempDir dir("chokepoint-pg-none");
  auto probe = make_postgres_probe("host=" + dir.path + " port=5432 user=postgres");
  auto r = probe->read();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("cannot connect"), std::string::npos);
  EXPECT_NE(r.error().hint.find("--pg"), std::string::npos);
  auto missing = conninfo_from_postmaster_pid(dir.path, "postgres");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().hint.find("--pg"), std::string::npos);
}

}  // namespace
}  // namespace chokepoint::collect::probes
