#include "collect/probes/memcached_probe.h"

#include <fmt/format.h>
#include <libmemcached/memcached.h>

#include <map>

#include "collect/probes/redis_probe.h"
#include "collect/probes/stats_text.h"
#include "util/owned.h"

namespace chokepoint::collect::probes {
namespace {

constexpr const char* kCounters[] = {"get_hits",
                                     "get_misses",
                                     "evictions",
                                     "conn_yields",
                                     "listen_disabled_num",
                                     "rejected_connections",
                                     "cmd_get",
                                     "cmd_set",
                                     "total_connections",
                                     "bytes_read",
                                     "bytes_written"};
constexpr const char* kGauges[] = {"curr_connections", "bytes", "limit_maxbytes", "curr_items",
                                   "threads"};
constexpr const char* kSettings[] = {"version"};

memcached_return_t collect_stat(const memcached_instance_st*, const char* key, size_t key_length,
                                const char* value, size_t value_length, void* context) {
  auto* fields = static_cast<std::map<std::string, std::string>*>(context);
  if (fields->size() < kMaxFields) {
    fields->insert_or_assign(std::string(key, key_length), std::string(value, value_length));
  }
  return MEMCACHED_SUCCESS;
}

class MemcachedProbe final : public Probe {
 public:
  MemcachedProbe(HostPort hp, std::string address, std::int64_t timeout_ns)
      : hp_(std::move(hp)), address_(std::move(address)) {
    memc_.reset(memcached_create(nullptr));
    if (!memc_) return;
    const auto ms = static_cast<std::uint64_t>(std::max<std::int64_t>(1, timeout_ns / 1'000'000));
    memcached_behavior_set(memc_.get(), MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, ms);
    memcached_behavior_set(memc_.get(), MEMCACHED_BEHAVIOR_POLL_TIMEOUT, ms);
    memcached_behavior_set(memc_.get(), MEMCACHED_BEHAVIOR_RCV_TIMEOUT, ms * 1000);
    memcached_behavior_set(memc_.get(), MEMCACHED_BEHAVIOR_SND_TIMEOUT, ms * 1000);
    if (hp_.path.empty()) {
      memcached_server_add(memc_.get(), hp_.host.c_str(), static_cast<in_port_t>(hp_.port));
    } else {
      memcached_server_add_unix_socket(memc_.get(), hp_.path.c_str());
    }
  }
  model::ServiceKind kind() const override { return model::ServiceKind::kMemcached; }
  std::string endpoint() const override { return address_; }
  std::string how() const override { return "libmemcached: stats"; }

  util::Result<Reading> read() override {
    if (!memc_) return util::Error{"memcached probe: out of memory", ""};
    std::map<std::string, std::string> fields;
    const memcached_return_t rc =
        memcached_stat_execute(memc_.get(), nullptr, collect_stat, &fields);
    if (rc != MEMCACHED_SUCCESS || fields.empty()) {
      return connect_error(model::ServiceKind::kMemcached, address_,
                           memcached_last_error_message(memc_.get())
                               ? memcached_last_error_message(memc_.get())
                               : memcached_strerror(memc_.get(), rc),
                           "--memcached HOST:PORT");
    }
    Reading r;
    for (const char* name : kCounters) {
      auto it = fields.find(name);
      if (it == fields.end()) continue;
      if (auto v = parse_count(it->second)) r.counters[name] = static_cast<double>(*v);
    }
    for (const char* name : kGauges) {
      auto it = fields.find(name);
      if (it == fields.end()) continue;
      if (auto v = parse_count(it->second)) r.gauges[name] = static_cast<double>(*v);
    }
    for (const char* name : kSettings) {
      auto it = fields.find(name);
      if (it != fields.end()) r.settings[name] = it->second;
    }
    return r;
  }

 private:
  HostPort hp_;
  std::string address_;
  util::Owned<memcached_st, memcached_free> memc_;
};

}  // namespace

util::Result<std::unique_ptr<Probe>> make_memcached_probe(const std::string& address,
                                                          std::int64_t timeout_ns) {
  auto hp = parse_host_port(address, "--memcached");
  if (!hp) return hp.error();
  return std::unique_ptr<Probe>(new MemcachedProbe(std::move(*hp), address, timeout_ns));
}

}  // namespace chokepoint::collect::probes
