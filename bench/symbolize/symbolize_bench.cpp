// Symbolization cost over this process's own code (the bench binary, libstdc++, libc, libdw,
// libbenchmark: about the mix of a C++ service): cold (attach, load symbols and line tables, first
// lookups) and warm (cached) lookups, and the headline "1M samples over 1,000 distinct addresses"
// from a fresh Symbolizer. Results and the command go to docs/symbolize.md ("Speed").
//
//   symbolize_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "symbolize/parsers.h"
#include "symbolize/symbolizer.h"

namespace sym = chokepoint::symbolize;

namespace {

constexpr std::size_t kDistinct = 1000;

std::string read_all(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// kDistinct addresses spread evenly over every executable file mapping of this process.
const std::vector<std::uint64_t>& user_addresses() {
  static const std::vector<std::uint64_t> addresses = [] {
    std::vector<sym::Mapping> code;
    std::uint64_t total = 0;
    for (const sym::Mapping& m : sym::parse_maps(read_all("/proc/self/maps")).mappings) {
      if (m.executable && m.file_backed()) {
        code.push_back(m);
        total += m.end - m.start;
      }
    }
    std::vector<std::uint64_t> out;
    for (const sym::Mapping& m : code) {
      const std::uint64_t n = std::max<std::uint64_t>(1, kDistinct * (m.end - m.start) / total);
      for (std::uint64_t i = 0; i < n && out.size() < kDistinct; ++i) {
        out.push_back(m.start + (m.end - m.start) * i / n);
      }
    }
    return out;
  }();
  return addresses;
}

const std::vector<std::uint64_t>& kernel_addresses() {
  static const std::vector<std::uint64_t> addresses = [] {
    const sym::KernelSymbols k = sym::parse_kallsyms(read_all("/proc/kallsyms"));
    std::vector<std::uint64_t> out;
    for (std::size_t i = 0; i < kDistinct && !k.symbols.empty(); ++i) {
      out.push_back(k.symbols[i * k.symbols.size() / kDistinct].address + 1);
    }
    return out;
  }();
  return addresses;
}

const int kPid = static_cast<int>(::getpid());

std::unique_ptr<sym::Symbolizer> make() {
  auto s = sym::Symbolizer::create();
  if (!s) std::abort();
  return std::move(s).value();
}

// A fresh Symbolizer: attach, then every distinct address once (symbols and line tables load).
void BM_UserCold(benchmark::State& state) {
  const auto& addresses = user_addresses();
  for (auto _ : state) {
    auto s = make();
    if (!s->attach(kPid)) std::abort();
    for (std::uint64_t a : addresses) benchmark::DoNotOptimize(s->user(kPid, a));
  }
  state.counters["distinct"] = static_cast<double>(addresses.size());
}
BENCHMARK(BM_UserCold)->Unit(benchmark::kMillisecond);

// Warm: every address already resolved once; the time of one lookup.
void BM_UserCached(benchmark::State& state) {
  const auto& addresses = user_addresses();
  auto s = make();
  for (std::uint64_t a : addresses) benchmark::DoNotOptimize(s->user(kPid, a));
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(s->user(kPid, addresses[i]));
    if (++i == addresses.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_UserCached);

// The headline: 1M user lookups over kDistinct addresses, from a fresh Symbolizer (cold included).
void BM_OneMillionUserLookups(benchmark::State& state) {
  const auto& addresses = user_addresses();
  std::uint64_t unresolved = 0;
  for (auto _ : state) {
    auto s = make();
    for (std::size_t i = 0; i < 1000000; ++i) {
      benchmark::DoNotOptimize(s->user(kPid, addresses[i % addresses.size()]));
    }
    unresolved = s->stats().unresolved;
    // Which evenly spread addresses have no name, and why (padding, PLT, stripped code).
    for (const std::string& note : s->notes()) std::fprintf(stderr, "note: %s\n", note.c_str());
  }
  state.counters["unresolved_share"] = static_cast<double>(unresolved) / 1e6;
}
BENCHMARK(BM_OneMillionUserLookups)->Unit(benchmark::kMillisecond)->Iterations(1);

// Loading /proc/kallsyms (lazily, on the first kernel lookup).
void BM_KallsymsLoad(benchmark::State& state) {
  const auto& addresses = kernel_addresses();
  if (addresses.empty()) {
    state.SkipWithError("/proc/kallsyms hides addresses (kptr_restrict)");
    return;
  }
  for (auto _ : state) {
    auto s = make();
    benchmark::DoNotOptimize(s->kernel(addresses.front()));
  }
}
BENCHMARK(BM_KallsymsLoad)->Unit(benchmark::kMillisecond);

void BM_KernelCached(benchmark::State& state) {
  const auto& addresses = kernel_addresses();
  if (addresses.empty()) {
    state.SkipWithError("/proc/kallsyms hides addresses (kptr_restrict)");
    return;
  }
  auto s = make();
  for (std::uint64_t a : addresses) benchmark::DoNotOptimize(s->kernel(a));
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(s->kernel(addresses[i]));
    if (++i == addresses.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_KernelCached);

}  // namespace

BENCHMARK_MAIN();
