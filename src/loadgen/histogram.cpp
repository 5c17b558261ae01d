#include "loadgen/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace chokepoint::loadgen {

// Layout (as in HdrHistogram with unit magnitude 0): bucket 0 holds values [0, 2048) at
// resolution 1; bucket b >= 1 holds [1024 << b, 2048 << b) at resolution 1 << b, stored as its
// upper half (1024 sub-buckets), because its lower half is already covered by bucket b - 1.
namespace {
constexpr int kSubBucketCount = 1 << Histogram::kSubBucketBits;  // 2048
constexpr int kSubBucketHalf = kSubBucketCount / 2;              // 1024
constexpr int kSubBucketHalfBits = Histogram::kSubBucketBits - 1;

int bucket_of(std::uint64_t v) {
  // Position of the highest set bit above the sub-bucket range; 0 for v < 2048.
  const int msb = 63 - std::countl_zero(v | (kSubBucketCount - 1));
  return msb - Histogram::kSubBucketBits + 1;
}

std::size_t counts_length() {
  const int buckets = bucket_of(static_cast<std::uint64_t>(Histogram::kHighestUs)) + 1;
  return static_cast<std::size_t>(buckets + 1) * kSubBucketHalf;
}
}  // namespace

Histogram::Histogram() : counts_(counts_length(), 0) {}

std::size_t Histogram::index_of(std::int64_t value_us) {
  const auto v = static_cast<std::uint64_t>(value_us);
  const int bucket = bucket_of(v);
  const auto sub = static_cast<std::size_t>(v >> bucket);  // in [1024, 2048) for bucket >= 1
  return (static_cast<std::size_t>(bucket + 1) << kSubBucketHalfBits) + (sub - kSubBucketHalf);
}

std::int64_t Histogram::lowest_equivalent(std::size_t index) {
  const std::size_t bucket_plus_one = index >> kSubBucketHalfBits;
  const std::size_t sub = (index & (kSubBucketHalf - 1)) + kSubBucketHalf;
  if (bucket_plus_one == 0) return static_cast<std::int64_t>(sub - kSubBucketHalf);
  return static_cast<std::int64_t>(sub << (bucket_plus_one - 1));
}

std::int64_t Histogram::highest_equivalent(std::size_t index) {
  const std::size_t bucket_plus_one = index >> kSubBucketHalfBits;
  const int shift = bucket_plus_one == 0 ? 0 : static_cast<int>(bucket_plus_one - 1);
  return lowest_equivalent(index) + (std::int64_t{1} << shift) - 1;
}

std::int64_t Histogram::bucket_width_us(std::int64_t value_us) {
  return std::int64_t{1} << bucket_of(
             static_cast<std::uint64_t>(std::max<std::int64_t>(value_us, 0)));
}

void Histogram::record_us(std::int64_t value_us) {
  if (value_us < kLowestUs) value_us = kLowestUs;
  if (value_us > kHighestUs) {
    value_us = kHighestUs;
    ++saturated_;
  }
  ++counts_[index_of(value_us)];
  if (total_ == 0 || value_us < min_us_) min_us_ = value_us;
  if (total_ == 0 || value_us > max_us_) max_us_ = value_us;
  ++total_;
  sum_us_ += static_cast<double>(value_us);
}

void Histogram::merge(const Histogram& other) {
  if (other.total_ == 0) return;
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  if (total_ == 0 || other.min_us_ < min_us_) min_us_ = other.min_us_;
  if (total_ == 0 || other.max_us_ > max_us_) max_us_ = other.max_us_;
  total_ += other.total_;
  saturated_ += other.saturated_;
  sum_us_ += other.sum_us_;
}

void Histogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_ = saturated_ = 0;
  min_us_ = max_us_ = 0;
  sum_us_ = 0;
}

std::int64_t Histogram::percentile_us(double p) const {
  if (total_ == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  // The rank of the value at percentile p among the sorted values, 1-based: ceil(p/100 * n).
  auto rank = static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(total_)));
  rank = std::clamp<std::uint64_t>(rank, 1, total_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(highest_equivalent(i), max_us_);
  }
  return max_us_;
}

}  // namespace chokepoint::loadgen
