#include "collect/probes/redis_probe.h"

#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include "collect/probes/stats_text.h"
#include "util/owned.h"

namespace chokepoint::collect::probes {
namespace {

using Context = util::Owned<redisContext, redisFree>;
using Reply = util::Owned<redisReply, freeReplyObject>;

constexpr const char* kClientName = "chokepoint-probe";

timeval to_timeval(std::int64_t ns) {
  return timeval{static_cast<time_t>(ns / 1'000'000'000),
                 static_cast<suseconds_t>(ns % 1'000'000'000 / 1000)};
}

// INFO fields read as counters (cumulative) and gauges (instantaneous).
constexpr const char* kCounters[] = {"total_commands_processed",
                                     "keyspace_hits",
                                     "keyspace_misses",
                                     "evicted_keys",
                                     "expired_keys",
                                     "rejected_connections",
                                     "total_connections_received",
                                     "aof_delayed_fsync",
                                     "total_net_input_bytes",
                                     "total_net_output_bytes",
                                     "sync_full",
                                     "total_error_replies"};
constexpr const char* kGauges[] = {"connected_clients",
                                   "blocked_clients",
                                   "used_memory",
                                   "maxmemory",
                                   "mem_fragmentation_ratio",
                                   "instantaneous_ops_per_sec",
                                   "latest_fork_usec",
                                   "rdb_bgsave_in_progress",
                                   "aof_rewrite_in_progress",
                                   "client_recent_max_output_buffer",
                                   "used_cpu_sys",
                                   "used_cpu_user"};
constexpr const char* kSettings[] = {"redis_version", "maxmemory_policy", "aof_enabled", "role",
                                     "io_threads_active"};

class RedisProbe final : public Probe {
 public:
  RedisProbe(HostPort hp, std::string address, std::int64_t timeout_ns)
      : hp_(std::move(hp)), address_(std::move(address)), timeout_ns_(timeout_ns) {}
  model::ServiceKind kind() const override { return model::ServiceKind::kRedis; }
  std::string endpoint() const override { return address_; }
  std::string how() const override {
    return hp_.path.empty() ? "hiredis over TCP: INFO, SLOWLOG, LATENCY"
                            : "hiredis over the Unix socket: INFO, SLOWLOG, LATENCY";
  }

  util::Result<Reading> read() override {
    if (!ctx_) {
      auto c = connect();
      if (!c) return c.error();
    }
    // The default sections and commandstats, not "everything": latencystats and the modules
    // cost the server's one command thread more. Before Redis 7 INFO takes one section.
    Reply info(static_cast<redisReply*>(redisCommand(ctx_.get(), "INFO default commandstats")));
    if (info && info->type == REDIS_REPLY_ERROR) {
      info.reset(static_cast<redisReply*>(redisCommand(ctx_.get(), "INFO all")));
    }
    if (!info) return drop("INFO failed");
    if (info->type == REDIS_REPLY_ERROR) {
      const std::string msg(info->str, info->len);
      return util::Error{fmt::format("redis probe: INFO at {} was refused: {}", address_, msg),
                         msg.find("NOAUTH") != std::string::npos
                             ? "the server wants a password; the probe does not send one yet: "
                               "allow INFO for the default user, or leave --redis out"
                             : ""};
    }
    if (info->type != REDIS_REPLY_STRING) {
      return drop("INFO returned no text");
    }
    const RedisInfo parsed = parse_redis_info(std::string_view(info->str, info->len));
    Reading r;
    r.new_counters_were_zero = true;
    for (const char* name : kCounters) {
      if (auto v = parsed.count(name)) r.counters[name] = static_cast<double>(*v);
    }
    for (const char* name : kGauges) {
      if (auto v = parsed.number(name)) r.gauges[name] = *v;
    }
    for (const char* name : kSettings) {
      if (auto v = parsed.text(name)) r.settings[name] = *v;
    }
    for (const auto& [cmd, s] : parsed.commands) {
      // The probe's own commands are not the service's work.
      if (cmd == "info" || cmd == "slowlog" || cmd == "latency" || cmd == "client|setname" ||
          cmd == "client") {
        continue;
      }
      r.counters["cmd:" + cmd + ":calls"] = static_cast<double>(s.calls);
      r.counters["cmd:" + cmd + ":usec"] = static_cast<double>(s.usec);
    }
    read_slowlog(r);
    read_latency(r);
    return r;
  }

 private:
  util::Result<void> connect() {
    const timeval tv = to_timeval(timeout_ns_);
    Context c(hp_.path.empty() ? redisConnectWithTimeout(hp_.host.c_str(), hp_.port, tv)
                               : redisConnectUnixWithTimeout(hp_.path.c_str(), tv));
    if (!c) return util::Error{"redis probe: out of memory", ""};
    if (c->err) {
      return connect_error(model::ServiceKind::kRedis, address_, c->errstr, "--redis HOST:PORT");
    }
    redisSetTimeout(c.get(), tv);
    // Named, so that the probe's own commands can be told apart in the slow log.
    Reply name(static_cast<redisReply*>(redisCommand(c.get(), "CLIENT SETNAME %s", kClientName)));
    ctx_ = std::move(c);
    return {};
  }

  // A failed command leaves the connection unusable: reconnect on the next read.
  util::Error drop(const char* what) {
    std::string why = ctx_ && ctx_->err ? ctx_->errstr : "";
    ctx_.reset();
    return connect_error(model::ServiceKind::kRedis, address_,
                         why.empty() ? what : fmt::format("{}: {}", what, why),
                         "--redis HOST:PORT");
  }

  // SLOWLOG GET 10: [id, unix time, duration µs, [args], client, name]. Only entries newer than
  // the last one seen are new.
  void read_slowlog(Reading& r) {
    Reply reply(static_cast<redisReply*>(redisCommand(ctx_.get(), "SLOWLOG GET 10")));
    if (!reply || reply->type != REDIS_REPLY_ARRAY) return;
    long long newest = last_slow_id_;
    for (std::size_t i = 0; i < reply->elements; ++i) {
      const redisReply* e = reply->element[i];
      if (e->type != REDIS_REPLY_ARRAY || e->elements < 4) continue;
      const redisReply* id = e->element[0];
      const redisReply* us = e->element[2];
      const redisReply* args = e->element[3];
      if (id->type != REDIS_REPLY_INTEGER || us->type != REDIS_REPLY_INTEGER) continue;
      newest = std::max(newest, id->integer);
      if (id->integer <= last_slow_id_) continue;
      // [5] is the client's name (Redis 4+): the probe's own INFO is not the service's.
      if (e->elements >= 6 && e->element[5]->type == REDIS_REPLY_STRING &&
          std::string_view(e->element[5]->str, e->element[5]->len) == kClientName) {
        continue;
      }
      std::string cmd;
      if (args->type == REDIS_REPLY_ARRAY) {
        for (std::size_t a = 0; a < args->elements && a < 4; ++a) {
          const redisReply* arg = args->element[a];
          if (arg->type != REDIS_REPLY_STRING) continue;
          if (!cmd.empty()) cmd += ' ';
          cmd.append(arg->str, std::min<std::size_t>(arg->len, 64));
        }
      }
      r.slow.push_back(fmt::format("{:.1f} ms {}", static_cast<double>(us->integer) / 1000.0, cmd));
    }
    last_slow_id_ = newest;
  }

  // LATENCY LATEST: [event, unix time, latest ms, max ms] for events over the monitor threshold
  // (latency-monitor-threshold, 0 = off).
  void read_latency(Reading& r) {
    Reply reply(static_cast<redisReply*>(redisCommand(ctx_.get(), "LATENCY LATEST")));
    if (!reply || reply->type != REDIS_REPLY_ARRAY) return;
    for (std::size_t i = 0; i < reply->elements; ++i) {
      const redisReply* e = reply->element[i];
      if (e->type != REDIS_REPLY_ARRAY || e->elements < 4) continue;
      const redisReply* name = e->element[0];
      const redisReply* max_ms = e->element[3];
      if (name->type != REDIS_REPLY_STRING || max_ms->type != REDIS_REPLY_INTEGER) continue;
      r.gauges["latency_max_ms:" + std::string(name->str, std::min<std::size_t>(name->len, 64))] =
          static_cast<double>(max_ms->integer);
    }
  }

  HostPort hp_;
  std::string address_;
  std::int64_t timeout_ns_;
  Context ctx_;
  long long last_slow_id_ = -1;
};

}  // namespace

util::Result<HostPort> parse_host_port(const std::string& address, const std::string& flag) {
  HostPort hp;
  if (!address.empty() && address.front() == '/') {
    hp.path = address;
    return hp;
  }
  std::string host, port;
  if (!address.empty() && address.front() == '[') {
    const auto close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      return util::Error{fmt::format("{} {:?} is not [IPV6]:PORT", flag, address),
                         fmt::format("pass e.g. {} [::1]:6379", flag)};
    }
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    const auto colon = address.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      return util::Error{fmt::format("{} {:?} has no host and port", flag, address),
                         fmt::format("pass e.g. {} 127.0.0.1:6379, or a Unix socket path", flag)};
    }
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  auto p = parse_count(port);
  if (!p || *p == 0 || *p > 65535) {
    return util::Error{
        fmt::format("{}: the port of {:?} is not a number from 1 to 65535", flag, address),
        fmt::format("pass e.g. {} 127.0.0.1:6379", flag)};
  }
  hp.host = host;
  hp.port = static_cast<int>(*p);
  return hp;
}

util::Result<std::unique_ptr<Probe>> make_redis_probe(const std::string& address,
                                                      std::int64_t timeout_ns) {
  auto hp = parse_host_port(address, "--redis");
  if (!hp) return hp.error();
  return std::unique_ptr<Probe>(new RedisProbe(std::move(*hp), address, timeout_ns));
}

}  // namespace chokepoint::collect::probes
