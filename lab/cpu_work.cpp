#include "lab/cpu_work.h"

#include <algorithm>
#include <array>

#include "util/clock.h"

namespace chokepoint::lab {

std::uint64_t lab_cpu_hash_rounds(std::uint64_t seed, std::uint64_t rounds) {
  std::uint64_t x = seed;
  for (std::uint64_t i = 0; i < rounds; ++i) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    x ^= x >> 31;
  }
  // Keeps the loop from being folded away even when the caller discards the value.
  asm volatile("" : "+r"(x));
  return x;
}

std::uint64_t lab_cpu_checksum(const std::uint64_t* words, std::size_t count,
                               std::uint64_t passes) {
  std::uint64_t a = 1, b = 0;
  for (std::uint64_t p = 0; p < passes; ++p) {
    for (std::size_t i = 0; i < count; ++i) {
      a = (a + (words[i] ^ b)) % 0xFFFFFFFBULL;
      b = (b + a) % 0xFFFFFFFBULL;
    }
    asm volatile("" : "+r"(a), "+r"(b));
  }
  return (b << 32) | a;
}

namespace {

void fill_words(std::array<std::uint64_t, kChecksumWords>& words, std::uint64_t seed) {
  std::uint64_t x = seed;
  for (auto& w : words) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w = x;
  }
}

// Best of several timed runs in ns: the least disturbed by other load on a shared machine.
template <typename F>
std::int64_t best_ns(F&& f) {
  std::int64_t best = INT64_MAX;
  for (int i = 0; i < 7; ++i) {
    std::int64_t t0 = util::monotonic_ns();
    f();
    best = std::min(best, util::monotonic_ns() - t0);
  }
  return std::max<std::int64_t>(best, 1);
}

}  // namespace

CpuWork CpuWork::calibrate(std::int64_t work_us) {
  constexpr std::uint64_t kProbeRounds = 200'000;
  constexpr std::uint64_t kProbePasses = 100;
  std::array<std::uint64_t, kChecksumWords> words{};
  fill_words(words, 42);
  std::int64_t hash_ns = best_ns([&] { lab_cpu_hash_rounds(7, kProbeRounds); });
  std::int64_t sum_ns =
      best_ns([&] { lab_cpu_checksum(words.data(), words.size(), kProbePasses); });
  double work_ns = static_cast<double>(work_us) * 1000.0;
  CpuWork w;
  w.hash_rounds = std::max<std::uint64_t>(
      1, static_cast<std::uint64_t>(work_ns * kHashShare * kProbeRounds / hash_ns));
  w.checksum_passes = std::max<std::uint64_t>(
      1, static_cast<std::uint64_t>(work_ns * (1.0 - kHashShare) * kProbePasses / sum_ns));
  return w;
}

CpuResult run_cpu_work(const CpuWork& work, std::uint64_t key) {
  CpuResult r;
  r.hash = lab_cpu_hash_rounds(key, work.hash_rounds);
  std::array<std::uint64_t, kChecksumWords> words;
  fill_words(words, r.hash | 1);
  r.checksum = lab_cpu_checksum(words.data(), words.size(), work.checksum_passes);
  return r;
}

std::uint64_t key_hash(const char* data, std::size_t size) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < size; ++i) {
    h ^= static_cast<unsigned char>(data[i]);
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::uint64_t key_hash(const std::string& key) {
  return key_hash(key.data(), key.size());
}

}  // namespace chokepoint::lab
