#pragma once
// What a service said about itself during a diagnosis window (PostgreSQL, Redis, memcached,
// nginx, HAProxy), as the probes in collect/probes read it: its own counters at the start and the
// end of the window, gauges summarised over the samples, and the slow operations it logged. Plain
// data; analysis/rules/services.cpp turns it into evidence and fixes.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "model/account.h"
#include "model/time_split.h"

namespace chokepoint::model {

enum class ServiceKind : std::uint8_t { kPostgres, kRedis, kMemcached, kNginx, kHaproxy };

// "postgres", "redis", "memcached", "nginx", "haproxy".
const char* service_kind_name(ServiceKind kind);

// A gauge over the window's samples.
struct GaugeStats {
  double min = 0;
  double max = 0;
  double mean = 0;
  double last = 0;
};

struct ServiceObservation {
  ServiceKind kind = ServiceKind::kRedis;
  std::string endpoint;          // "127.0.0.1:6379", "/var/run/postgresql port 5432", a URL
  std::string how;               // how the probe reached it, for the sources line
  std::int64_t duration_ns = 0;  // between the first and the last good sample
  int samples_ok = 0;
  int samples_failed = 0;
  std::string error;  // the last failure, empty when none
  std::string hint;   // what to do about it
  // Cumulative counters by the service's own names, at the first and the last good sample
  // ("evicted_keys", "listen_disabled_num", "backend:app:econ"). Rates come from these.
  std::map<std::string, double> counters_first;
  std::map<std::string, double> counters_last;
  // Gauges by the service's own names ("used_memory", "queue:app", "waiting").
  std::map<std::string, GaugeStats> gauges;
  // Settings and facts that do not change in a window ("maxmemory_policy", "synchronous_commit").
  std::map<std::string, std::string> settings;
  // PostgreSQL: per backend pid, how many samples saw it in each state, by
  // "wait_event_type:wait_event" ("Lock:transactionid", "Client:ClientRead", "IO:WALSync",
  // "active" for on a CPU, "idle").
  std::map<int, std::map<std::string, int>> backend_waits;
  int activity_samples = 0;  // pg_stat_activity samples taken
  // Slow operations the service logged during the window, newest first, each one line
  // ("12.1 ms KEYS *", "lock: pid 4242 blocked by 4240 for 2.0 s: UPDATE counters ...").
  std::vector<std::string> slow;

  double rate_per_s(const std::string& counter) const;  // 0 when unknown or reset
  double delta(const std::string& counter) const;       // last - first, never negative
};

// What one read of a service returned (collect/probes reads it; the recording keeps it as a
// probe_sample row, docs/recording.md).
struct ServiceReading {
  std::map<std::string, double> counters;  // cumulative, by the service's names
  std::map<std::string, double> gauges;    // instantaneous
  std::map<std::string, std::string> settings;
  // PostgreSQL: the state of each backend now ("Lock:transactionid", "active", "idle").
  std::map<int, std::string> backend_states;
  std::vector<std::string> slow;  // slow operations logged since the last read, newest first
  // A counter missing from earlier reads was 0 then (Redis lists a command once it ran, HAProxy
  // a backend once it exists) rather than unknown (PostgreSQL's top tables change membership).
  bool new_counters_were_zero = false;
};

// A probe of a service: what it reads and how (one per probe of a run, in the runner's order).
struct ServiceProbe {
  ServiceKind kind = ServiceKind::kRedis;
  std::string endpoint;
  std::string how;
};

// One poll of one probe, timestamped: what it read, or why it could not.
struct ServicePoll {
  std::int64_t at_ns = 0;   // CLOCK_MONOTONIC, when the read returned
  std::uint32_t probe = 0;  // index in the run's probes
  bool ok = false;
  ServiceReading reading;   // when ok
  std::string error, hint;  // when not
};

// Folds the polls of one probe into a window's observation: counters at the first and last good
// poll, gauges summarised, settings and backend states counted, the newest slow operations.
// The live diagnose (collect/probes' ProbeRunner) and a replay of any window of a recording fold
// the same polls with it.
class ServiceAccumulator {
 public:
  explicit ServiceAccumulator(const ServiceProbe& probe);
  void add(const ServiceReading& r, std::int64_t at_ns);
  void add_failure(const std::string& error, const std::string& hint);
  void add(const ServicePoll& p);
  ServiceObservation finish() const;

 private:
  ServiceObservation obs_;
  std::int64_t first_ns_ = -1;
  std::int64_t last_ns_ = -1;
  std::map<std::string, double> gauge_sums_;
  std::map<std::string, int> gauge_counts_;
};

// One observation per probe from the polls made in [from_ns, to_ns] (all of them: a probe with
// no poll there is an observation with no samples), in the probes' order. Polls naming a probe
// out of range are left out.
std::vector<ServiceObservation> fold_service_polls(const std::vector<ServiceProbe>& probes,
                                                   const std::vector<ServicePoll>& polls,
                                                   std::int64_t from_ns, std::int64_t to_ns);

// Which of the 8 states a PostgreSQL backend state counts as (wait_event_type:wait_event, the
// PostgreSQL 15 docs' table 28.4): "Lock:*" and "BufferPin:*" -> lock, "IO:*" and "LWLock:WAL*"
// -> disk, other "LWLock:*" -> lock, "active" (no wait event) -> on_cpu, "Client:*" and "idle*"
// -> idle, "Timeout:*" -> sleep; nullopt for background waits (Activity, IPC, Extension).
std::optional<Resource> postgres_wait_resource(const std::string& state);

// A PostgreSQL backend waiting on a row lock sleeps on its latch in epoll_wait, exactly like one
// waiting for its client: the kernel's split counts both as idle. For every backend the probe
// sampled, moves the share of its samples spent in lock, disk and sleep waits out of the
// thread's idle time into those states (never more than the idle time there is), with the wait
// event as the evidence detail ("postgres Lock:transactionid"). on_cpu and cpu_wait stay the
// kernel's exact counts. Returns the ns moved.
std::int64_t apply_service_waits(std::vector<ThreadAccount>& threads,
                                 const std::vector<ServiceObservation>& services);

}  // namespace chokepoint::model
