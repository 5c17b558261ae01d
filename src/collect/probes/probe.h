#pragma once
// A service probe reads one service's own view of itself (its statistics, its wait events, its
// slow log) while diagnose watches the kernel's. Probes are built by a factory per service
// (redis_probe.h, memcached_probe.h, http_status_probe.h, haproxy_probe.h, postgres_probe.h)
// and driven by a ProbeRunner on a thread of its own during the window.
//
// Thread-safety: one thread calls read() at a time.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/service.h"
#include "util/result.h"

namespace chokepoint::collect::probes {

// What one read of a service returned (model/service.h: the recording keeps it as it is).
using Reading = model::ServiceReading;

class Probe {
 public:
  virtual ~Probe() = default;
  virtual model::ServiceKind kind() const = 0;
  virtual std::string endpoint() const = 0;
  // How it reads the service, for the sources line: "hiredis over TCP: INFO, SLOWLOG, LATENCY".
  virtual std::string how() const = 0;
  // How often to read: cumulative counters need no more than once a second (each read costs
  // the service something); sampled states (PostgreSQL's wait events) want 10 Hz.
  virtual std::int64_t interval_ns() const { return 1'000'000'000; }
  // One read; errors carry the hint for the person (a grant, a flag, the server being down).
  virtual util::Result<Reading> read() = 0;
};

// Folds the readings of one probe into a window's observation (model::ServiceAccumulator, which
// a replay of a recorded window uses too).
class ReadingAccumulator {
 public:
  ReadingAccumulator(model::ServiceKind kind, std::string endpoint, std::string how);
  void add(const Reading& r, std::int64_t at_ns) { acc_.add(r, at_ns); }
  void add_failure(const util::Error& e) { acc_.add_failure(e.message, e.hint); }
  model::ServiceObservation finish() const { return acc_.finish(); }

 private:
  model::ServiceAccumulator acc_;
};

// Drives probes on a thread of its own: each probe is read every Probe::interval_ns() (at least
// min_interval_ns). start() makes the first read of each itself before it returns, and finish()
// a last one, so the counters cover the window. finish()
// stops the thread and returns one observation per probe, in the order given. A probe that hangs is
// bounded by its own timeouts (every client sets one).
// With keep_polls, every poll is also kept, timestamped, until take_polls() hands it over (a
// recording writes them as its probe series): take them often (record does at every tick), or
// they pile up.
class ProbeRunner {
 public:
  explicit ProbeRunner(std::vector<std::unique_ptr<Probe>> probes,
                       std::int64_t min_interval_ns = 100'000'000, bool keep_polls = false);
  ~ProbeRunner();
  ProbeRunner(const ProbeRunner&) = delete;
  ProbeRunner& operator=(const ProbeRunner&) = delete;
  void start();
  std::vector<model::ServiceObservation> finish();
  // The probes, in the order given (ServicePoll::probe indexes them).
  const std::vector<model::ServiceProbe>& probes() const;
  // The polls made since the last call, oldest first (none without keep_polls). Any thread.
  std::vector<model::ServicePoll> take_polls();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The hint for a probe that could not connect or was refused: what the error says plus what to
// pass. Used by every client so the wording is one.
util::Error connect_error(model::ServiceKind kind, const std::string& endpoint,
                          const std::string& what, const std::string& flag_example);

}  // namespace chokepoint::collect::probes
