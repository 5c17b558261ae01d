#pragma once
// Latency percentiles per interval (a second of the load generator's timeline), across the
// generator's threads, as HdrHistogram's interval recorders keep them: each thread records into
// its own Histogram of the current interval and hands it over when its clock enters the next;
// the hand-overs of all threads for one interval are merged exactly (bucket counts add), and the
// interval is reduced to its percentiles as soon as every thread has moved past it. So memory is
// a few histograms however long the run (one per thread, and one per interval some thread has not
// yet left), and the cost is one merge and one lock per thread and interval, none per request.
//
// Thread-safety: IntervalMerger is shared by the threads (its methods lock); each
// IntervalRecorder belongs to one thread.

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "loadgen/histogram.h"

namespace chokepoint::loadgen {

// One interval reduced: percentiles in microseconds of the two histograms the recorders keep
// (corrected latency, from the intended send time; service time, from the actual send), over the
// complete responses that ended in the interval. All 0 when count is 0.
struct IntervalPercentiles {
  std::uint64_t count = 0;
  std::int64_t p50_us = 0;
  std::int64_t p90_us = 0;
  std::int64_t p99_us = 0;
  std::int64_t p999_us = 0;
  std::int64_t max_us = 0;
  std::int64_t service_p50_us = 0;
  std::int64_t service_p99_us = 0;
};

class IntervalMerger {
 public:
  explicit IntervalMerger(int writers);

  // Writer `writer` hands over what it recorded in `interval` (corrected latency and service
  // time of the same responses) and is done with it and every interval before it. Intervals every
  // writer is done with are reduced and their histograms freed.
  void hand_over(int writer, std::size_t interval, const Histogram& latency,
                 const Histogram& service);
  // Writer `writer` is done with every interval before `interval` and has nothing to hand over.
  void advance(int writer, std::size_t interval);

  // Every interval reduced, in order, from 0 to the last one any writer handed over (intervals
  // with no response have count 0). Call after the writers have stopped (each having handed over
  // its last interval): what a writer never handed over is not in it.
  std::vector<IntervalPercentiles> finish();

 private:
  struct Pending {
    Histogram latency;
    Histogram service;
  };
  // REQUIRES: mu_ held. Reduces and frees the pending intervals below every writer's position.
  void settle(std::size_t below);

  std::mutex mu_;
  std::vector<std::size_t> position_;       // per writer: the first interval it may still hand over
  std::map<std::size_t, Pending> pending_;  // intervals some writer may still add to
  std::vector<IntervalPercentiles> done_;
};

// One thread's side: the histograms of its current interval. Intervals only move forward: a value
// for an interval before the current one is counted in the current one.
class IntervalRecorder {
 public:
  IntervalRecorder(IntervalMerger& merger, int writer) : merger_(merger), writer_(writer) {}

  // The thread's clock is in `interval`: hands over the current interval when `interval` is later
  // (also when the thread has nothing to record, so that an idle thread does not hold the others'
  // intervals back). An earlier `interval` is ignored.
  void move_to(std::size_t interval);
  // The interval values are recorded in now.
  std::size_t current() const { return current_; }
  // Records one complete response in the current interval.
  void record_us(std::int64_t latency_us, std::int64_t service_us) {
    latency_.record_us(latency_us);
    service_.record_us(service_us);
  }
  // The thread has stopped: hands over the current interval and lets the merger reduce past it.
  void finish();

 private:
  IntervalMerger& merger_;
  int writer_;
  std::size_t current_ = 0;
  bool finished_ = false;
  Histogram latency_;
  Histogram service_;
};

}  // namespace chokepoint::loadgen
