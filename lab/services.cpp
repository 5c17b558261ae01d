#include "lab/services.h"

#include <hiredis/hiredis.h>
#include <libmemcached/memcached.h>
#include <libpq-fe.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "lab/cpu_work.h"
#include "lab/group_commit.h"
#include "lab/worker_pool.h"

namespace chokepoint::lab {
namespace {

// Connections made on first use and kept: acquire() takes an idle one or makes one, release()
// gives it back; a connection that failed is dropped instead (the next acquire() reconnects).
template <typename Conn>
class Pool {
 public:
  explicit Pool(std::function<util::Result<Conn>()> connect) : connect_(std::move(connect)) {}
  util::Result<Conn> acquire() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        Conn c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
    }
    return connect_();
  }
  void release(Conn c) {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(std::move(c));
  }

 private:
  std::function<util::Result<Conn>()> connect_;
  std::mutex mu_;
  std::vector<Conn> idle_;  // guarded by mu_
};

util::Error cache_error(const Options& o, const std::string& what) {
  return util::Error{"cannot use the " + std::string(cache_name(o.cache)) + " cache at " +
                         o.cache_server + ": " + what,
                     "start the server first (e.g. 'redis-server --port 6379' or 'memcached -p "
                     "11211') and pass its address with --cache-server HOST:PORT",
                     0};
}

// ---------------------------------------------------------------------------------------------
struct RedisFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
using RedisConn = std::unique_ptr<redisContext, RedisFree>;
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

class RedisCache : public RemoteCache {
 public:
  explicit RedisCache(const Options& o)
      : pool_([o]() -> util::Result<RedisConn> {
          const timeval timeout{1, 0};
          RedisConn c(redisConnectWithTimeout(o.cache_host.c_str(), o.cache_port, timeout));
          if (!c) return cache_error(o, "out of memory");
          if (c->err) return cache_error(o, c->errstr);
          redisSetTimeout(c.get(), timeout);
          return c;
        }) {}

  util::Result<void> check() {
    auto c = pool_.acquire();
    if (!c) return c.error();
    Reply r(static_cast<redisReply*>(redisCommand(c->get(), "PING")));
    if (!r || r->type == REDIS_REPLY_ERROR) {
      return util::Error{"the Redis server at the cache address does not answer PING",
                         "check --cache-server", 0};
    }
    pool_.release(std::move(*c));
    return {};
  }

  std::optional<std::string> get(const std::string& key) override {
    auto c = pool_.acquire();
    if (!c) return std::nullopt;
    Reply r(static_cast<redisReply*>(redisCommand(c->get(), "GET %b", key.data(), key.size())));
    if (!r) return std::nullopt;  // the connection broke: dropped with c
    std::optional<std::string> value;
    if (r->type == REDIS_REPLY_STRING) value.emplace(r->str, r->len);
    pool_.release(std::move(*c));
    return value;
  }

  void put(const std::string& key, const std::string& value) override {
    auto c = pool_.acquire();
    if (!c) return;
    Reply r(
        static_cast<redisReply*>(redisCommand(c->get(), "SET %b %b EX %d", key.data(), key.size(),
                                              value.data(), value.size(), kCacheTtlS)));
    if (r) pool_.release(std::move(*c));
  }

 private:
  Pool<RedisConn> pool_;
};

// ---------------------------------------------------------------------------------------------
struct MemcachedFree {
  void operator()(memcached_st* m) const { memcached_free(m); }
};
using MemcachedConn = std::unique_ptr<memcached_st, MemcachedFree>;

class MemcachedCache : public RemoteCache {
 public:
  explicit MemcachedCache(const Options& o)
      : pool_([o]() -> util::Result<MemcachedConn> {
          MemcachedConn m(memcached_create(nullptr));
          if (!m) return cache_error(o, "out of memory");
          memcached_behavior_set(m.get(), MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
          memcached_behavior_set(m.get(), MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, 1000);
          memcached_behavior_set(m.get(), MEMCACHED_BEHAVIOR_POLL_TIMEOUT, 1000);
          if (memcached_server_add(m.get(), o.cache_host.c_str(), o.cache_port) !=
              MEMCACHED_SUCCESS) {
            return cache_error(o, "libmemcached refused the address");
          }
          return m;
        }) {}

  util::Result<void> check(const Options& o) {
    auto c = pool_.acquire();
    if (!c) return c.error();
    const std::string key = "chokepoint-lab:ping";
    const memcached_return_t rc = memcached_set(c->get(), key.data(), key.size(), "1", 1, 10, 0);
    if (rc != MEMCACHED_SUCCESS) return cache_error(o, memcached_strerror(c->get(), rc));
    pool_.release(std::move(*c));
    return {};
  }

  std::optional<std::string> get(const std::string& key) override {
    auto c = pool_.acquire();
    if (!c) return std::nullopt;
    std::size_t size = 0;
    std::uint32_t flags = 0;
    memcached_return_t rc = MEMCACHED_SUCCESS;
    char* value = memcached_get(c->get(), key.data(), key.size(), &size, &flags, &rc);
    std::optional<std::string> out;
    if (value) {
      out.emplace(value, size);
      std::free(value);  // NOLINT(cppcoreguidelines-no-malloc): libmemcached's allocation
    }
    if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_NOTFOUND) pool_.release(std::move(*c));
    return out;
  }

  void put(const std::string& key, const std::string& value) override {
    auto c = pool_.acquire();
    if (!c) return;
    const memcached_return_t rc =
        memcached_set(c->get(), key.data(), key.size(), value.data(), value.size(), kCacheTtlS, 0);
    if (rc == MEMCACHED_SUCCESS) pool_.release(std::move(*c));
  }

 private:
  Pool<MemcachedConn> pool_;
};

// ---------------------------------------------------------------------------------------------
struct PgFree {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using PgConn = std::unique_ptr<PGconn, PgFree>;
struct PgClear {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgClear>;

util::Error db_error(const std::string& what) {
  return util::Error{"PostgreSQL: " + what,
                     "check --db (a libpq connection string, e.g. 'host=/tmp port=5432 "
                     "dbname=postgres user=postgres'), that the server runs, and that the user "
                     "may create tables",
                     0};
}

// One statement with its parameters as text; the result when it succeeded.
util::Result<PgResult> exec(PGconn* c, const std::string& sql,
                            const std::vector<std::string>& params = {}) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.c_str());
  PgResult r(PQexecParams(c, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                          nullptr, nullptr, 0));
  const ExecStatusType status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    std::string message = PQerrorMessage(c);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    return db_error(message);
  }
  return r;
}

util::Result<PgConn> pg_connect(const std::string& conninfo, bool async_commit) {
  PgConn c(PQconnectdb(conninfo.c_str()));
  if (!c) return db_error("out of memory");
  if (PQstatus(c.get()) != CONNECTION_OK) {
    std::string message = PQerrorMessage(c.get());
    while (!message.empty() && message.back() == '\n') message.pop_back();
    return db_error("cannot connect: " + message);
  }
  // NOTICEs ("relation ... already exists, skipping") would go to stderr: they are expected.
  PQsetNoticeProcessor(
      c.get(), [](void*, const char*) {}, nullptr);
  if (auto r = exec(c.get(), "SET application_name = 'chokepoint-lab'"); !r) return r.error();
  if (async_commit) {
    // The fix's loss window: a crash can lose the last wal_writer_delay (200 ms) of commits, never
    // corrupt the database (PostgreSQL docs, "Asynchronous Commit").
    if (auto r = exec(c.get(), "SET synchronous_commit = off"); !r) return r.error();
  }
  return c;
}

Response failed(const util::Error& e) {
  Response r;
  r.status = 500;
  r.body = e.message + "\n";
  return r;
}

class DbHandler : public Handler {
 public:
  explicit DbHandler(const Options& o)
      : o_(o), shards_(o.lock_mode == LockMode::kSharded ? o.lock_shards : 1), pool_([o]() {
          return pg_connect(o.db,
                            o.scenario == Scenario::kDbCommit && o.commit == CommitMode::kAsync);
        }) {}

  ~DbHandler() override { group_.reset(); }

  // Creates the tables and the rows each scenario needs, and the index or not.
  util::Result<void> setup() {
    auto c = pool_.acquire();
    if (!c) return c.error();
    PGconn* conn = c->get();
    switch (o_.scenario) {
      case Scenario::kDbHotRow: {
        if (auto r = exec(conn,
                          "CREATE TABLE IF NOT EXISTS chokepoint_lab_counters "
                          "(id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0)");
            !r)
          return r.error();
        if (auto r = exec(conn,
                          "INSERT INTO chokepoint_lab_counters SELECT g, 0 FROM "
                          "generate_series(0, $1::int - 1) g ON CONFLICT DO NOTHING",
                          {std::to_string(shards_)});
            !r)
          return r.error();
        break;
      }
      case Scenario::kDbMissingIndex: {
        if (auto r = exec(conn,
                          "CREATE TABLE IF NOT EXISTS chokepoint_lab_items "
                          "(id int PRIMARY KEY, k int NOT NULL, payload text NOT NULL)");
            !r)
          return r.error();
        auto n = exec(conn, "SELECT count(*) FROM chokepoint_lab_items");
        if (!n) return n.error();
        if (std::atoi(PQgetvalue(n->get(), 0, 0)) != kDbItemRows) {
          if (auto r = exec(conn, "TRUNCATE chokepoint_lab_items"); !r) return r.error();
          if (auto r = exec(conn,
                            "INSERT INTO chokepoint_lab_items SELECT g, g % ($1::int / 2), "
                            "md5(g::text) FROM generate_series(1, $1::int) g",
                            {std::to_string(kDbItemRows)});
              !r)
            return r.error();
        }
        const char* index_sql = o_.db_index
                                    ? "CREATE INDEX IF NOT EXISTS chokepoint_lab_items_k ON "
                                      "chokepoint_lab_items (k)"
                                    : "DROP INDEX IF EXISTS chokepoint_lab_items_k";
        if (auto r = exec(conn, index_sql); !r) return r.error();
        if (auto r = exec(conn, "ANALYZE chokepoint_lab_items"); !r) return r.error();
        break;
      }
      case Scenario::kDbCommit: {
        if (auto r = exec(conn,
                          "CREATE TABLE IF NOT EXISTS chokepoint_lab_orders (id bigserial "
                          "PRIMARY KEY, key text NOT NULL, at timestamptz NOT NULL DEFAULT now())");
            !r)
          return r.error();
        if (auto r = exec(conn, "TRUNCATE chokepoint_lab_orders"); !r) return r.error();
        if (o_.commit == CommitMode::kBatch) {
          auto own = pg_connect(o_.db, false);
          if (!own) return own.error();
          committer_conn_ = std::move(*own);
          group_ = std::make_unique<GroupCommit>(
              "lab-committer",
              [this](const std::vector<std::string>& keys) { return insert_orders(keys); });
        }
        break;
      }
      default:
        return db_error("not a db-* scenario");
    }
    pool_.release(std::move(*c));
    return {};
  }

  Response handle(std::string_view query) override {
    const std::string key(query);
    if (o_.scenario == Scenario::kDbCommit && o_.commit == CommitMode::kBatch) {
      if (!group_->submit(key)) return failed(db_error("the group commit failed"));
      Response r;
      r.body = "db-commit committed key=" + key + " (batch)\n";
      return r;
    }
    auto c = pool_.acquire();
    if (!c) return failed(c.error());
    auto body = run(c->get(), key);
    if (!body) {
      // A broken connection is dropped with c; one that only saw an SQL error goes back.
      if (PQstatus(c->get()) == CONNECTION_OK) pool_.release(std::move(*c));
      return failed(body.error());
    }
    pool_.release(std::move(*c));
    Response r;
    r.body = std::move(*body);
    return r;
  }
  bool blocking() const override { return true; }

 private:
  util::Result<std::string> run(PGconn* conn, const std::string& key) {
    const std::uint64_t h = key_hash(key);
    switch (o_.scenario) {
      case Scenario::kDbHotRow: {
        // The counter row is locked from the UPDATE to the COMMIT, and the transaction goes on
        // working in between (here a computation in the database, as a report or a pricing step
        // would): every other request for the same row waits on its lock meanwhile.
        const std::string shard = std::to_string(h % static_cast<std::uint64_t>(shards_));
        if (auto r = exec(conn, "BEGIN"); !r) return r.error();
        auto n = exec(conn,
                      "UPDATE chokepoint_lab_counters SET n = n + 1 WHERE id = $1::int "
                      "RETURNING n",
                      {shard});
        if (!n) {
          (void)exec(conn, "ROLLBACK");
          return n.error();
        }
        const std::string count = PQntuples(n->get()) > 0 ? PQgetvalue(n->get(), 0, 0) : "0";
        auto work = exec(conn, "SELECT sum(g) FROM generate_series(1, $1::int) g",
                         {std::to_string(o_.db_work_rows)});
        if (!work) {
          (void)exec(conn, "ROLLBACK");
          return work.error();
        }
        if (auto r = exec(conn, "COMMIT"); !r) return r.error();
        return "db-hot-row key=" + key + " shard=" + shard + " count=" + count + "\n";
      }
      case Scenario::kDbMissingIndex: {
        const std::string k = std::to_string(h % (kDbItemRows / 2));
        auto r = exec(conn,
                      "SELECT count(*), coalesce(max(payload), '') FROM chokepoint_lab_items "
                      "WHERE k = $1::int",
                      {k});
        if (!r) return r.error();
        return "db-missing-index key=" + key + " k=" + k + " rows=" + PQgetvalue(r->get(), 0, 0) +
               "\n";
      }
      case Scenario::kDbCommit: {
        auto r = exec(conn, "INSERT INTO chokepoint_lab_orders (key) VALUES ($1)", {key});
        if (!r) return r.error();
        return "db-commit committed key=" + key + "\n";
      }
      default:
        return db_error("not a db-* scenario");
    }
  }

  // --commit batch: one group of orders as one statement, so one transaction (autocommit): one
  // round trip and one WAL flush for the whole group.
  bool insert_orders(const std::vector<std::string>& keys) {
    // One array parameter: {"k1","k2",...} with each key quoted and escaped.
    std::string array = "{";
    for (const auto& k : keys) {
      if (array.size() > 1) array += ',';
      array += '"';
      for (char ch : k) {
        if (ch == '"' || ch == '\\') array += '\\';
        array += ch;
      }
      array += '"';
    }
    array += '}';
    return static_cast<bool>(exec(committer_conn_.get(),
                                  "INSERT INTO chokepoint_lab_orders (key) "
                                  "SELECT unnest($1::text[])",
                                  {array}));
  }

  Options o_;
  int shards_;
  Pool<PgConn> pool_;
  PgConn committer_conn_;               // db-commit --commit batch: the committer's own connection
  std::unique_ptr<GroupCommit> group_;  // db-commit --commit batch; uses committer_conn_
};

}  // namespace

util::Result<std::unique_ptr<RemoteCache>> connect_cache(const Options& options) {
  if (options.cache == CacheMode::kRedis) {
    auto cache = std::make_unique<RedisCache>(options);
    if (auto ok = cache->check(); !ok) return ok.error();
    return std::unique_ptr<RemoteCache>(std::move(cache));
  }
  if (options.cache == CacheMode::kMemcached) {
    auto cache = std::make_unique<MemcachedCache>(options);
    if (auto ok = cache->check(options); !ok) return ok.error();
    return std::unique_ptr<RemoteCache>(std::move(cache));
  }
  return util::Error{"no cache server was asked for", "pass --cache redis|memcached", 0};
}

util::Result<std::unique_ptr<Handler>> make_db_handler(const Options& options) {
  auto handler = std::make_unique<DbHandler>(options);
  if (auto ok = handler->setup(); !ok) return ok.error();
  return std::unique_ptr<Handler>(std::move(handler));
}

}  // namespace chokepoint::lab
