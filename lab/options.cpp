#include "lab/options.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <map>
#include <optional>
#include <string_view>
#include <utility>

namespace chokepoint::lab {
namespace {

const std::map<std::string, Scenario> kScenarios = {
    {"none", Scenario::kNone},
    {"cpu", Scenario::kCpu},
    {"serial", Scenario::kSerial},
    {"lock", Scenario::kLock},
    {"disk", Scenario::kDisk},
    {"log", Scenario::kLog},
    {"leak", Scenario::kLeak},
    {"paging", Scenario::kPaging},
    {"upstream", Scenario::kUpstream},
    {"bandwidth", Scenario::kBandwidth},
    {"backlog", Scenario::kBacklog},
    {"db-hot-row", Scenario::kDbHotRow},
    {"db-missing-index", Scenario::kDbMissingIndex},
    {"db-commit", Scenario::kDbCommit},
    {"conn-leak", Scenario::kConnLeak},
    {"conn-storm", Scenario::kConnStorm},
    {"proxy", Scenario::kProxy},
    {"fsync", Scenario::kFsync},
    {"pipeline", Scenario::kPipeline},
};

util::Error usage(std::string message, std::string hint = "run 'chokepoint-lab --help' for usage") {
  return util::Error{std::move(message), std::move(hint), 0};
}

// An option whose value is one of `names`: --help shows `choices` ("a|b|c"), and a value that is
// none of them is a usage error that lists them (CLI11's own CheckedTransformer shows its map,
// "{a->0,b->1} OR {0,1}", in both places).
template <typename T>
CLI::Option* add_choice(CLI::App& app, const std::string& flag, T& value,
                        const std::map<std::string, T>& names, const std::string& choices,
                        const std::string& help) {
  return app
      .add_option_function<std::string>(
          flag,
          [&value, names](const std::string& text) {
            value = names.at(text);  // the check below has let only names through
          },
          help)
      ->check(CLI::Validator(
          [names, choices](std::string& text) -> std::string {
            return names.count(text) ? "" : "'" + text + "' is not one of " + choices;
          },
          ""))
      ->type_name(choices);
}

// "HOST:PORT" split at its last colon; nullopt when either part is missing or the port is not
// 1 to 65535.
std::optional<std::pair<std::string, std::uint16_t>> parse_host_port(const std::string& text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  const std::string_view port_text = std::string_view(text).substr(colon + 1);
  int port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc{} || ptr != port_text.data() + port_text.size() ||
      port < 1 || port > 65535) {
    return std::nullopt;
  }
  return std::pair<std::string, std::uint16_t>(text.substr(0, colon),
                                               static_cast<std::uint16_t>(port));
}

}  // namespace

const char* scenario_name(Scenario s) {
  for (const auto& [name, value] : kScenarios) {
    if (value == s) return name.c_str();
  }
  return "?";
}

const char* model_name(Model m) {
  return m == Model::kThreads ? "threads" : "epoll";
}

const char* cache_name(CacheMode c) {
  switch (c) {
    case CacheMode::kOff:
      return "off";
    case CacheMode::kOn:
      return "on";
    case CacheMode::kRedis:
      return "redis";
    case CacheMode::kMemcached:
      return "memcached";
  }
  return "?";
}

bool is_db_scenario(Scenario s) {
  return s == Scenario::kDbHotRow || s == Scenario::kDbMissingIndex || s == Scenario::kDbCommit;
}

std::vector<std::string> scenario_names() {
  std::vector<std::string> names(kScenarios.size());
  for (const auto& [name, value] : kScenarios) names[static_cast<std::size_t>(value)] = name;
  return names;
}

util::Result<ParsedOptions> parse_options(int argc, char** argv) {
  ParsedOptions parsed;
  Options& o = parsed.options;
  CLI::App app{
      "chokepoint-lab: an HTTP/1.1 server whose bottleneck you choose with --scenario; each "
      "scenario's fix flag makes that bottleneck go away.",
      "chokepoint-lab"};
  app.footer(
      "Examples:\n"
      "  chokepoint-lab --scenario disk --port 8080                  # an fsync per request\n"
      "  chokepoint-lab --scenario disk --commit batch --port 8080   # the fix: group commit\n"
      "  chokepoint-lab --role upstream --delay-ms 10 --port 9001\n"
      "  chokepoint-lab --scenario upstream --upstream 127.0.0.1:9001 --port 8080\n"
      "See lab/README.md for every scenario and its fix.");

  std::string role = "lab";
  app.add_option("--role", role, "lab (default) or upstream (answers / after --delay-ms)")
      ->check(CLI::IsMember({"lab", "upstream"}).description(""))
      ->type_name("lab|upstream");
  std::string scenario_choices;
  for (const auto& name : scenario_names()) {
    scenario_choices += (scenario_choices.empty() ? "" : "|") + name;
  }
  add_choice(app, "--scenario", o.scenario, kScenarios, scenario_choices,
             "the bottleneck to create");
  std::map<std::string, Model> models = {{"threads", Model::kThreads}, {"epoll", Model::kEpoll}};
  add_choice(app, "--model", o.model, models, "threads|epoll",
             "threads (thread per connection + work pool) or epoll");
  app.add_option("--port", o.port, "TCP port; 0 picks a free one");
  app.add_option("--bind", o.bind_address, "IPv4 address to listen on");
  auto* workers = app.add_option("--workers", o.workers,
                                 "threads: work pool size; epoll: event loops (default: CPUs, "
                                 "lock: 8)")
                      ->check(CLI::Range(1, 1024));
  app.add_option("--blocking-workers", o.blocking_workers,
                 "pool for blocking steps: fsync, upstream calls")
      ->check(CLI::Range(1, 1024));
  auto* backlog = app.add_option("--backlog", o.backlog, "listen backlog (backlog scenario: 1)")
                      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--data-dir", o.data_dir, "where disk/log/paging write (default: temp dir)");
  auto* work = app.add_option("--work-us", o.work_us, "CPU work per request in µs (lock: 500)")
                   ->check(CLI::Range(1, 10'000'000));
  std::map<std::string, CacheMode> caches = {{"off", CacheMode::kOff},
                                             {"on", CacheMode::kOn},
                                             {"redis", CacheMode::kRedis},
                                             {"memcached", CacheMode::kMemcached}};
  add_choice(app, "--cache", o.cache, caches, "off|on|redis|memcached",
             "cpu, upstream, proxy: keep answers per query key, in this process (on) or in a cache "
             "server (redis, memcached: --cache-server)");
  app.add_option("--cache-server", o.cache_server,
                 "--cache redis|memcached: the server's HOST:PORT");
  app.add_option("--db", o.db,
                 "db-*: PostgreSQL connection string (libpq), e.g. 'host=/tmp port=5432 "
                 "dbname=postgres user=postgres'");
  app.add_flag("--db-index", o.db_index, "db-missing-index: create the index (the fix)");
  app.add_option("--db-work-rows", o.db_work_rows,
                 "db-hot-row: rows summed in the transaction while it holds the row")
      ->check(CLI::Range(0, 100'000'000));
  app.add_option("--serial-workers", o.serial_workers, "serial: executor threads (fix: > 1)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--pipeline-workers", o.pipeline_workers,
                 "pipeline: stage threads that run the work (fix: > 1)")
      ->check(CLI::Range(1, 1024));
  std::map<std::string, HandoffMode> handoffs = {{"semaphore", HandoffMode::kSemaphore},
                                                 {"condvar", HandoffMode::kCondvar},
                                                 {"join", HandoffMode::kJoin}};
  add_choice(app, "--handoff", o.handoff, handoffs, "semaphore|condvar|join",
             "pipeline: the requester waits for its reply on a semaphore or a condvar, or starts "
             "a thread per request for the work and joins it (join: no stage threads)");
  std::map<std::string, StageWork> stage_works = {{"cpu", StageWork::kCpu},
                                                  {"fsync", StageWork::kFsync}};
  add_choice(app, "--stage-work", o.stage_work, stage_works, "cpu|fsync",
             "pipeline: the stage's work per job: CPU work, or one record written and "
             "fdatasync'ed (--record-bytes) to stage.dat in the data directory");
  std::map<std::string, LockMode> locks = {{"global", LockMode::kGlobal},
                                           {"sharded", LockMode::kSharded}};
  add_choice(app, "--lock", o.lock_mode, locks, "global|sharded", "lock: global or sharded");
  std::map<std::string, LockType> lock_types = {{"mutex", LockType::kMutex},
                                                {"rwlock", LockType::kRwlock}};
  add_choice(app, "--lock-type", o.lock_type, lock_types, "mutex|rwlock",
             "lock: mutex, or rwlock (read the entry shared, update it exclusive)");
  app.add_option("--lock-shards", o.lock_shards, "lock --lock sharded: shard count")
      ->check(CLI::Range(1, 4096));
  std::map<std::string, CommitMode> commits = {{"per-request", CommitMode::kPerRequest},
                                               {"batch", CommitMode::kBatch},
                                               {"async", CommitMode::kAsync}};
  add_choice(app, "--commit", o.commit, commits, "per-request|batch|async",
             "disk: per-request, batch or async");
  app.add_option("--record-bytes", o.record_bytes, "disk: bytes per record")
      ->check(CLI::Range(16, 1 << 20));
  std::map<std::string, LogMode> logs = {
      {"sync", LogMode::kSync}, {"async", LogMode::kAsync}, {"off", LogMode::kOff}};
  add_choice(app, "--log", o.log, logs, "sync|async|off", "log: sync, async or off");
  app.add_flag("--bounded", o.bounded, "leak, paging: bound the memory used (the fix)");
  app.add_option("--leak-bytes", o.leak_bytes, "leak: bytes retained per request")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 30));
  app.add_option("--leak-cap-bytes", o.leak_cap_bytes, "leak: stop retaining beyond this")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40));
  app.add_option("--leak-lru-entries", o.leak_lru_entries, "leak --bounded: LRU capacity")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 30));
  app.add_option("--memory-limit", o.memory_limit_bytes, "paging: memory cgroup limit in bytes")
      ->check(CLI::Range(std::int64_t{4} << 20, std::int64_t{1} << 40));
  app.add_option("--working-set-bytes", o.working_set_bytes,
                 "paging: file size read at random (default 4x --memory-limit)")
      ->check(CLI::Range(std::int64_t{1} << 20, std::int64_t{1} << 40));
  app.add_option("--page-reads", o.page_reads, "paging: random 4 KiB reads per request")
      ->check(CLI::Range(1, 4096));
  app.add_option("--upstream", o.upstream, "upstream: HOST:PORT of a --role upstream instance");
  app.add_option("--upstream-calls", o.upstream_calls, "upstream: sequential calls per request")
      ->check(CLI::Range(1, 64));
  app.add_option("--upstream-pool", o.upstream_pool,
                 "proxy: kept-alive connections to the upstream; more requests wait for one")
      ->check(CLI::Range(1, 1024));
  app.add_flag("--upstream-batch", o.upstream_batch, "upstream: one call fetching all K");
  app.add_flag("--upstream-concurrent", o.upstream_concurrent,
               "upstream: the K calls in parallel on K connections");
  app.add_option("--upstream-timeout-ms", o.upstream_timeout_ms, "upstream: per call timeout")
      ->check(CLI::Range(1, 600'000));
  app.add_option("--delay-ms", o.delay_ms, "--role upstream: delay before answering")
      ->check(CLI::Range(0, 600'000));
  app.add_option("--response-bytes", o.response_bytes, "bandwidth: response body size")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 30));
  app.add_flag("--close-on-eof", o.close_on_eof,
               "conn-leak: close connections the client closed (the fix)");
  app.add_flag("--keep-alive", o.keep_alive,
               "conn-storm: one kept-alive upstream connection per thread (the fix)");
  auto* accept_delay =
      app.add_option("--accept-delay-ms", o.accept_delay_ms, "sleep between accepts (backlog: 20)")
          ->check(CLI::Range(0, 60'000));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    parsed.help_text = app.help();
    return parsed;
  } catch (const CLI::ParseError& e) {
    return usage(e.what());
  }

  o.role = role == "upstream" ? Role::kUpstream : Role::kLab;
  in_addr addr{};
  if (inet_pton(AF_INET, o.bind_address.c_str(), &addr) != 1) {
    return usage("--bind '" + o.bind_address + "' is not an IPv4 address",
                 "pass a dotted-quad address, e.g. --bind 127.0.0.1 or --bind 0.0.0.0");
  }
  o.workers_given = workers->count() > 0;
  if (!o.workers_given) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    o.workers = o.scenario == Scenario::kLock ? 8 : static_cast<int>(cpus > 0 ? cpus : 1);
  }
  if (backlog->count() == 0 && o.scenario == Scenario::kBacklog) o.backlog = 1;
  if (accept_delay->count() == 0 && o.scenario == Scenario::kBacklog) o.accept_delay_ms = 20;
  if (work->count() == 0 && o.scenario == Scenario::kLock) o.work_us = 500;
  if (o.working_set_bytes == 0) o.working_set_bytes = 4 * o.memory_limit_bytes;

  if (o.role == Role::kLab &&
      (o.scenario == Scenario::kUpstream || o.scenario == Scenario::kConnStorm ||
       o.scenario == Scenario::kProxy)) {
    if (o.upstream.empty()) {
      return usage(
          "--scenario " + std::string(scenario_name(o.scenario)) + " needs --upstream HOST:PORT",
          "start 'chokepoint-lab --role upstream --delay-ms 10 --port 0' first and pass "
          "its address, e.g. --upstream 127.0.0.1:9001");
    }
    auto hp = parse_host_port(o.upstream);
    if (!hp) {
      return usage("--upstream '" + o.upstream + "' is not HOST:PORT",
                   "pass an IPv4 address and port, e.g. --upstream 127.0.0.1:9001");
    }
    o.upstream_host = hp->first;
    o.upstream_port = hp->second;
  }
  if (o.cache == CacheMode::kRedis || o.cache == CacheMode::kMemcached) {
    auto hp = parse_host_port(o.cache_server);
    if (!hp) {
      return usage("--cache " + std::string(cache_name(o.cache)) +
                       " needs --cache-server HOST:PORT" +
                       (o.cache_server.empty() ? "" : " ('" + o.cache_server + "' is not one)"),
                   "pass the cache server's address, e.g. --cache-server 127.0.0.1:6379");
    }
    o.cache_host = hp->first;
    o.cache_port = hp->second;
  } else if (!o.cache_server.empty()) {
    return usage("--cache-server applies to --cache redis|memcached",
                 "add --cache redis or --cache memcached, or drop --cache-server");
  }
  if (is_db_scenario(o.scenario) && o.db.empty()) {
    return usage("--scenario " + std::string(scenario_name(o.scenario)) +
                     " needs --db CONNINFO (PostgreSQL)",
                 "start PostgreSQL and pass its connection string, e.g. --db 'host=/tmp "
                 "port=5432 dbname=postgres user=postgres'");
  }
  if (o.role == Role::kLab && o.scenario == Scenario::kProxy) {
    if (o.model == Model::kThreads) {
      return usage("--scenario proxy is one epoll event loop; --model threads does not apply",
                   "drop --model threads");
    }
    if (o.cache == CacheMode::kRedis || o.cache == CacheMode::kMemcached) {
      return usage("--scenario proxy keeps its cache in the loop: --cache off|on",
                   "pass --cache on (a cache server would block the event loop)");
    }
  }
  if (o.upstream_batch && o.upstream_concurrent) {
    return usage("--upstream-batch and --upstream-concurrent are alternative fixes",
                 "pass one of them");
  }
  return parsed;
}

}  // namespace chokepoint::lab
