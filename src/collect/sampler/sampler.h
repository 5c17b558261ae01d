#pragma once
// The diagnosis sampler: watches a target's threads for a window and returns the time split of
// every thread plus the process and system evidence (model::Observation).
//
// Cost follows the threads that ran: every tick reads each thread's schedstat with one pread; only
// a thread whose counters moved (it ran, or waited for a core) has its stat and syscall read again
// and its wait re-classified. A thread that did not run is still in the wait it was last seen in.
//
// Thread-safety: one thread drives a Sampler. stop may be set from another thread or a signal
// handler to end the window early.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "collect/sampler/target.h"
#include "model/observation.h"
#include "util/result.h"

namespace chokepoint::collect::sampler {

struct SamplerOptions {
  TargetSpec target;
  std::int64_t duration_ns = 5'000'000'000;
  std::int64_t interval_ns = 100'000'000;
  // A budget for the sampler's own cost: at most this many thread reads a second (about 2 µs
  // each, 15-20 µs for a thread that ran). Past it, threads take turns.
  std::int64_t max_thread_samples_per_s = 2000;
  std::string proc_root = "/proc";
  const std::atomic<bool>* stop = nullptr;  // optional: ends the window early when set
};

class Sampler {
 public:
  // Validates the target (it exists now). Errors carry hints.
  static util::Result<std::unique_ptr<Sampler>> create(SamplerOptions options);
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  // Samples for the window and returns what it saw. When every target process exits early, the
  // observation so far is returned with target_exited set.
  util::Result<model::Observation> run();

 private:
  struct Impl;
  explicit Sampler(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace chokepoint::collect::sampler
