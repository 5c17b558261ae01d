#pragma once
// The lab's CPU work: two named, never-inlined kernels that a profiler must find in a known ratio.
//
// A request's work is `hash_rounds` rounds of lab_cpu_hash_rounds followed by `checksum_passes`
// passes of lab_cpu_checksum over a 4 KiB buffer. The counts are fixed once at startup by
// calibrate(), so each request does the same number of iterations (not "work for N µs"): about
// 70% of the time in lab_cpu_hash_rounds and 30% in lab_cpu_checksum, whatever the load.
// All functions are pure and thread-safe.

#include <cstddef>
#include <cstdint>
#include <string>

namespace chokepoint::lab {

inline constexpr double kHashShare = 0.70;          // the rest, 0.30, is lab_cpu_checksum
inline constexpr std::size_t kChecksumWords = 512;  // 4 KiB: stays in L1

// A serial chain of 64-bit mix rounds (splitmix64's finalizer), seeded by `seed`.
__attribute__((noinline)) std::uint64_t lab_cpu_hash_rounds(std::uint64_t seed,
                                                            std::uint64_t rounds);
// Fletcher-style checksum over `words`, `passes` times, each pass feeding the next.
__attribute__((noinline)) std::uint64_t lab_cpu_checksum(const std::uint64_t* words,
                                                         std::size_t count, std::uint64_t passes);

struct CpuWork {
  std::uint64_t hash_rounds = 0;
  std::uint64_t checksum_passes = 0;

  // Measures both kernels on this machine (about 20 ms) and returns counts that take about
  // `work_us` per request, split kHashShare / (1 - kHashShare).
  static CpuWork calibrate(std::int64_t work_us);
};

struct CpuResult {
  std::uint64_t hash = 0;
  std::uint64_t checksum = 0;
};

// One request's work for `key` (deterministic: the same key gives the same result).
CpuResult run_cpu_work(const CpuWork& work, std::uint64_t key_hash);

// FNV-1a of a query key: the seed of the work and the shard index.
std::uint64_t key_hash(const std::string& key);
std::uint64_t key_hash(const char* data, std::size_t size);

}  // namespace chokepoint::lab
