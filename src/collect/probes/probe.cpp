#include "collect/probes/probe.h"

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "util/clock.h"

namespace chokepoint::collect::probes {
namespace {
// Slow-log lines kept per probe and window: the newest.
constexpr std::size_t kMaxSlow = 20;
}  // namespace

ReadingAccumulator::ReadingAccumulator(model::ServiceKind kind, std::string endpoint,
                                       std::string how) {
  obs_.kind = kind;
  obs_.endpoint = std::move(endpoint);
  obs_.how = std::move(how);
}

void ReadingAccumulator::add(const Reading& r, std::int64_t at_ns) {
  ++obs_.samples_ok;
  if (first_ns_ < 0) {
    first_ns_ = at_ns;
    obs_.counters_first = r.counters;
  }
  // A counter first seen later starts from 0 or from its first value, as the probe says.
  for (const auto& [name, v] : r.counters) {
    obs_.counters_first.emplace(name, r.new_counters_were_zero ? 0.0 : v);
  }
  last_ns_ = at_ns;
  for (const auto& [name, v] : r.counters) obs_.counters_last[name] = v;
  for (const auto& [name, v] : r.gauges) {
    auto [it, added] = obs_.gauges.try_emplace(name);
    auto& g = it->second;
    if (added) {
      g.min = g.max = v;
    } else {
      g.min = std::min(g.min, v);
      g.max = std::max(g.max, v);
    }
    g.last = v;
    gauge_sums_[name] += v;
    ++gauge_counts_[name];
  }
  for (const auto& [name, v] : r.settings) obs_.settings[name] = v;
  if (!r.backend_states.empty() || !r.counters.empty()) {
    if (!r.backend_states.empty()) ++obs_.activity_samples;
    for (const auto& [pid, state] : r.backend_states) ++obs_.backend_waits[pid][state];
  }
  // r.slow is newest first: put the oldest at the front first, so the newest ends up there.
  for (auto it = r.slow.rbegin(); it != r.slow.rend(); ++it) {
    if (std::find(obs_.slow.begin(), obs_.slow.end(), *it) != obs_.slow.end()) continue;
    obs_.slow.insert(obs_.slow.begin(), *it);
  }
  if (obs_.slow.size() > kMaxSlow) obs_.slow.resize(kMaxSlow);
}

void ReadingAccumulator::add_failure(const util::Error& e) {
  ++obs_.samples_failed;
  obs_.error = e.message;
  obs_.hint = e.hint;
}

model::ServiceObservation ReadingAccumulator::finish() const {
  model::ServiceObservation out = obs_;
  out.duration_ns = (first_ns_ >= 0 && last_ns_ > first_ns_) ? last_ns_ - first_ns_ : 0;
  for (auto& [name, g] : out.gauges) {
    auto n = gauge_counts_.find(name);
    auto s = gauge_sums_.find(name);
    if (n != gauge_counts_.end() && n->second > 0) g.mean = s->second / n->second;
  }
  return out;
}

struct ProbeRunner::Impl {
  std::vector<std::unique_ptr<Probe>> probes;
  std::vector<ReadingAccumulator> acc;
  std::vector<std::int64_t> next_ns;  // when each probe is read next
  std::int64_t min_interval_ns = 0;
  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;  // REQUIRES: mu held

  void read(std::size_t i) {
    auto r = probes[i]->read();
    const std::int64_t now = util::monotonic_ns();
    if (r) {
      acc[i].add(*r, now);
    } else {
      acc[i].add_failure(r.error());
    }
  }
  std::int64_t interval(std::size_t i) const {
    return std::max(min_interval_ns, probes[i]->interval_ns());
  }

  // The first reads were made by start().
  void loop() {
    for (;;) {
      const std::int64_t due = *std::min_element(next_ns.begin(), next_ns.end());
      {
        std::unique_lock lock(mu);
        const auto wait_ns = std::max<std::int64_t>(0, due - util::monotonic_ns());
        if (cv.wait_for(lock, std::chrono::nanoseconds(wait_ns), [&] { return stop; })) break;
      }
      const std::int64_t now = util::monotonic_ns();
      for (std::size_t i = 0; i < probes.size(); ++i) {
        if (next_ns[i] > now) continue;
        read(i);
        next_ns[i] = std::max(next_ns[i] + interval(i), now);
      }
    }
    // One last read, so the window's counters end where the window ends.
    for (std::size_t i = 0; i < probes.size(); ++i) read(i);
  }
};

ProbeRunner::ProbeRunner(std::vector<std::unique_ptr<Probe>> probes, std::int64_t min_interval_ns)
    : impl_(std::make_unique<Impl>()) {
  impl_->min_interval_ns = min_interval_ns;
  for (auto& p : probes) {
    impl_->acc.emplace_back(p->kind(), p->endpoint(), p->how());
    impl_->probes.push_back(std::move(p));
  }
}

ProbeRunner::~ProbeRunner() {
  if (impl_->thread.joinable()) finish();
}

void ProbeRunner::start() {
  if (impl_->probes.empty() || impl_->thread.joinable()) return;
  // The first reads on the caller's thread: the window's counters start when start() returns.
  const std::int64_t now = util::monotonic_ns();
  for (std::size_t i = 0; i < impl_->probes.size(); ++i) {
    impl_->read(i);
    impl_->next_ns.push_back(now + impl_->interval(i));
  }
  impl_->thread = std::thread([this] { impl_->loop(); });
}

std::vector<model::ServiceObservation> ProbeRunner::finish() {
  if (impl_->thread.joinable()) {
    {
      std::lock_guard lock(impl_->mu);
      impl_->stop = true;
    }
    impl_->cv.notify_all();
    impl_->thread.join();
  }
  std::vector<model::ServiceObservation> out;
  for (const auto& a : impl_->acc) out.push_back(a.finish());
  return out;
}

util::Error connect_error(model::ServiceKind kind, const std::string& endpoint,
                          const std::string& what, const std::string& flag_example) {
  return util::Error{
      fmt::format("{} probe: cannot read {} at {}: {}", model::service_kind_name(kind),
                  model::service_kind_name(kind), endpoint, what),
      fmt::format("check that it is up and reachable from here, or point at it with {}; the "
                  "kernel-level verdict does not depend on it",
                  flag_example)};
}

}  // namespace chokepoint::collect::probes
