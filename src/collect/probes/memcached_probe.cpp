#include "collect/probes/memcached_probe.h"

#include <fmt/format.h>
#include <libmemcached/memcached.h>

#include <map>
#include <vector>

#include "collect/probes/redis_probe.h"
#include "collect/probes/stats_text.h"
#include "util/shared_library.h"

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

// libmemcached's functions this probe calls, opened when a probe is first made, not at exec
// (util/shared_library.h).
struct MemcachedApi {
  decltype(&::memcached_create) create;
  decltype(&::memcached_free) free;
  decltype(&::memcached_behavior_set) behavior_set;
  decltype(&::memcached_server_add) server_add;
  decltype(&::memcached_server_add_unix_socket) server_add_unix_socket;
  decltype(&::memcached_stat_execute) stat_execute;
  decltype(&::memcached_last_error_message) last_error_message;
  decltype(&::memcached_strerror) strerror;
};

// Opened once per process; the same error every time when it cannot be.
const util::Result<MemcachedApi>& load_memcached() {
  static const util::Result<MemcachedApi> kApi = util::SharedLibrary::load<MemcachedApi>(
      CHOKEPOINT_LIBMEMCACHED_SONAME, "the Memcached probe",
      "install libmemcached11 (apt install libmemcached11), or leave out --memcached; the "
      "kernel-level verdict does not depend on it",
      [](const util::SharedLibrary& lib, MemcachedApi& a) {
        return std::vector<util::Result<void>>{
            lib.bind(a.create, "memcached_create"),
            lib.bind(a.free, "memcached_free"),
            lib.bind(a.behavior_set, "memcached_behavior_set"),
            lib.bind(a.server_add, "memcached_server_add"),
            lib.bind(a.server_add_unix_socket, "memcached_server_add_unix_socket"),
            lib.bind(a.stat_execute, "memcached_stat_execute"),
            lib.bind(a.last_error_message, "memcached_last_error_message"),
            lib.bind(a.strerror, "memcached_strerror")};
      });
  return kApi;
}

struct MemcachedFree {
  void operator()(memcached_st* m) const { load_memcached()->free(m); }
};

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
    if (!api_) return;
    const MemcachedApi& mc = *api_;
    memc_.reset(mc.create(nullptr));
    if (!memc_) return;
    const auto ms = static_cast<std::uint64_t>(std::max<std::int64_t>(1, timeout_ns / 1'000'000));
    mc.behavior_set(memc_.get(), MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, ms);
    mc.behavior_set(memc_.get(), MEMCACHED_BEHAVIOR_POLL_TIMEOUT, ms);
    mc.behavior_set(memc_.get(), MEMCACHED_BEHAVIOR_RCV_TIMEOUT, ms * 1000);
    mc.behavior_set(memc_.get(), MEMCACHED_BEHAVIOR_SND_TIMEOUT, ms * 1000);
    if (hp_.path.empty()) {
      mc.server_add(memc_.get(), hp_.host.c_str(), static_cast<in_port_t>(hp_.port));
    } else {
      mc.server_add_unix_socket(memc_.get(), hp_.path.c_str());
    }
  }
  model::ServiceKind kind() const override { return model::ServiceKind::kMemcached; }
  std::string endpoint() const override { return address_; }
  std::string how() const override { return "libmemcached: stats"; }

  util::Result<Reading> read() override {
    if (!api_) return api_.error();
    if (!memc_) return util::Error{"memcached probe: out of memory", ""};
    const MemcachedApi& mc = *api_;
    std::map<std::string, std::string> fields;
    const memcached_return_t rc = mc.stat_execute(memc_.get(), nullptr, collect_stat, &fields);
    if (rc != MEMCACHED_SUCCESS || fields.empty()) {
      return connect_error(model::ServiceKind::kMemcached, address_,
                           mc.last_error_message(memc_.get()) ? mc.last_error_message(memc_.get())
                                                              : mc.strerror(memc_.get(), rc),
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
  const util::Result<MemcachedApi>& api_ = load_memcached();
  std::unique_ptr<memcached_st, MemcachedFree> memc_;
};

}  // namespace

util::Result<std::unique_ptr<Probe>> make_memcached_probe(const std::string& address,
                                                          std::int64_t timeout_ns) {
  auto hp = parse_host_port(address, "--memcached");
  if (!hp) return hp.error();
  return std::unique_ptr<Probe>(new MemcachedProbe(std::move(*hp), address, timeout_ns));
}

}  // namespace chokepoint::collect::probes
