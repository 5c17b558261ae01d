#include "collect/probes/probe.h"

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

#include "util/clock.h"

namespace chokepoint::collect::probes {
ReadingAccumulator::ReadingAccumulator(model::ServiceKind kind, std::string endpoint,
                                       std::string how)
    : acc_(model::ServiceProbe{kind, std::move(endpoint), std::move(how)}) {}

struct ProbeRunner::Impl {
  std::vector<std::unique_ptr<Probe>> probes;
  std::vector<model::ServiceProbe> infos;
  std::vector<model::ServiceAccumulator> acc;
  bool keep_polls = false;
  std::vector<model::ServicePoll> polls;  // REQUIRES: mu held
  std::vector<std::int64_t> next_ns;      // when each probe is read next
  std::int64_t min_interval_ns = 0;
  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;  // REQUIRES: mu held

  void read(std::size_t i) {
    auto r = probes[i]->read();
    model::ServicePoll poll;
    poll.at_ns = util::monotonic_ns();
    poll.probe = static_cast<std::uint32_t>(i);
    poll.ok = static_cast<bool>(r);
    if (r) {
      poll.reading = std::move(*r);
    } else {
      poll.error = r.error().message;
      poll.hint = r.error().hint;
    }
    acc[i].add(poll);
    if (keep_polls) {
      std::lock_guard lock(mu);
      polls.push_back(std::move(poll));
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

ProbeRunner::ProbeRunner(std::vector<std::unique_ptr<Probe>> probes, std::int64_t min_interval_ns,
                         bool keep_polls)
    : impl_(std::make_unique<Impl>()) {
  impl_->min_interval_ns = min_interval_ns;
  impl_->keep_polls = keep_polls;
  for (auto& p : probes) {
    impl_->infos.push_back({p->kind(), p->endpoint(), p->how()});
    impl_->acc.emplace_back(impl_->infos.back());
    impl_->probes.push_back(std::move(p));
  }
}

const std::vector<model::ServiceProbe>& ProbeRunner::probes() const {
  return impl_->infos;
}

std::vector<model::ServicePoll> ProbeRunner::take_polls() {
  std::lock_guard lock(impl_->mu);
  return std::exchange(impl_->polls, {});
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
