#pragma once
// A log-linear latency histogram in the style of HdrHistogram: values from 1 us to 1 h are kept
// with 3 significant decimal digits (relative error below 1/1024), in a fixed array of counters,
// so memory stays constant however many values are recorded.
//
// Values are integer microseconds. A value below 1 us is counted as 1 us; a value above 1 h is
// counted as 1 h and also counted in saturated(). min(), max() and mean are exact.
//
// Thread-safety: none. The load generator keeps one histogram per thread and merges them at the
// end (merge() is exact: bucket counts add).

#include <cstdint>
#include <vector>

namespace chokepoint::loadgen {

class Histogram {
 public:
  static constexpr std::int64_t kLowestUs = 1;
  static constexpr std::int64_t kHighestUs = 3'600'000'000;  // 1 h
  // 2048 sub-buckets per power of two: 3 significant digits (2 * 10^3 rounded up to 2^11).
  static constexpr int kSubBucketBits = 11;

  Histogram();

  void record_us(std::int64_t value_us);
  void merge(const Histogram& other);
  void reset();

  std::uint64_t count() const { return total_; }
  std::uint64_t saturated() const { return saturated_; }
  std::int64_t min_us() const { return total_ == 0 ? 0 : min_us_; }
  std::int64_t max_us() const { return total_ == 0 ? 0 : max_us_; }
  double mean_us() const { return total_ == 0 ? 0.0 : sum_us_ / static_cast<double>(total_); }

  // The value at percentile p (0 < p <= 100): the smallest recorded value v such that at least
  // p% of the values are <= v, reported as the highest value equivalent to v at this histogram's
  // precision and never above max_us(). 0 when empty.
  std::int64_t percentile_us(double p) const;

  // Width of the bucket that holds value_us: the histogram cannot tell apart values closer than
  // this. Tests use it as the stated precision.
  static std::int64_t bucket_width_us(std::int64_t value_us);

  // Bytes used by the counters (constant).
  std::size_t memory_bytes() const { return counts_.size() * sizeof(counts_[0]); }

 private:
  static std::size_t index_of(std::int64_t value_us);
  static std::int64_t lowest_equivalent(std::size_t index);
  static std::int64_t highest_equivalent(std::size_t index);

  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  std::uint64_t saturated_ = 0;
  std::int64_t min_us_ = 0;
  std::int64_t max_us_ = 0;
  double sum_us_ = 0;
};

}  // namespace chokepoint::loadgen
