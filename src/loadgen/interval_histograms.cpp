#include "loadgen/interval_histograms.h"

#include <algorithm>
#include <limits>

namespace chokepoint::loadgen {

namespace {

IntervalPercentiles percentiles_of(const Histogram& latency, const Histogram& service) {
  IntervalPercentiles p;
  p.count = latency.count();
  if (p.count == 0) return p;
  p.p50_us = latency.percentile_us(50);
  p.p90_us = latency.percentile_us(90);
  p.p99_us = latency.percentile_us(99);
  p.p999_us = latency.percentile_us(99.9);
  p.max_us = latency.max_us();
  p.service_p50_us = service.percentile_us(50);
  p.service_p99_us = service.percentile_us(99);
  return p;
}

}  // namespace

IntervalMerger::IntervalMerger(int writers)
    : position_(static_cast<std::size_t>(std::max(writers, 0)), 0) {}

void IntervalMerger::hand_over(int writer, std::size_t interval, const Histogram& latency,
                               const Histogram& service) {
  const std::lock_guard lock(mu_);
  Pending& p = pending_[interval];
  p.latency.merge(latency);
  p.service.merge(service);
  auto& at = position_[static_cast<std::size_t>(writer)];
  at = std::max(at, interval + 1);
  settle(*std::min_element(position_.begin(), position_.end()));
}

void IntervalMerger::advance(int writer, std::size_t interval) {
  const std::lock_guard lock(mu_);
  auto& at = position_[static_cast<std::size_t>(writer)];
  if (interval <= at) return;
  at = interval;
  settle(*std::min_element(position_.begin(), position_.end()));
}

void IntervalMerger::settle(std::size_t below) {
  while (!pending_.empty() && pending_.begin()->first < below) {
    const auto it = pending_.begin();
    if (done_.size() <= it->first) done_.resize(it->first + 1);
    done_[it->first] = percentiles_of(it->second.latency, it->second.service);
    pending_.erase(it);
  }
}

std::vector<IntervalPercentiles> IntervalMerger::finish() {
  const std::lock_guard lock(mu_);
  settle(std::numeric_limits<std::size_t>::max());
  return done_;
}

void IntervalRecorder::move_to(std::size_t interval) {
  if (interval <= current_) return;
  if (latency_.count() > 0) {
    merger_.hand_over(writer_, current_, latency_, service_);
    latency_.reset();
    service_.reset();
  }
  merger_.advance(writer_, interval);
  current_ = interval;
}

void IntervalRecorder::finish() {
  if (finished_) return;
  finished_ = true;
  // Hand over the current interval's values, and leave every later one to the other writers.
  if (latency_.count() > 0) {
    merger_.hand_over(writer_, current_, latency_, service_);
    latency_.reset();
    service_.reset();
  }
  merger_.advance(writer_, std::numeric_limits<std::size_t>::max());
}

}  // namespace chokepoint::loadgen
