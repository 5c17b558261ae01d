// Cost of writing a profile's outputs: folded text, the flame graph SVG, and speedscope JSON
// (built and serialised), for a synthetic profile of 1M samples over N distinct stacks. Run at
// 5k and 50k stacks side by side: the ratio of the two times shows how the cost grows with the
// number of distinct stacks (10x more stacks should cost about 10x, not 100x). Results and the
// command go to docs/benchmarks.md ("## render: profile outputs").
//
//   render_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>

#include "profile/profile.h"
#include "render/flamegraph_folded.h"
#include "render/flamegraph_svg.h"
#include "render/speedscope.h"

namespace profile = chokepoint::profile;
namespace render = chokepoint::render;

namespace {

constexpr std::uint64_t kSamples = 1'000'000;

// A call tree shaped like a server's: a common trunk (process, start_thread, the event loop,
// dispatch), then a branching middle where stack i picks a callee per level from the digits of
// i in base 6, then a tail of 0 to 14 frames (helpers, libc, a few kernel frames). Every stack
// is distinct; names look like C++ symbols of realistic length. Values are uneven (1 to 39)
// and scaled so they sum to kSamples.
profile::Profile synthetic_profile(int distinct_stacks) {
  profile::Profile p;
  p.title = "synthetic (pid 1), on-CPU, 99 Hz, 60.0 s";
  p.frequency_hz = 99;
  p.duration_s = 60;
  std::mt19937_64 rng(42);
  const std::vector<profile::Frame> trunk = {
      {"synthetic (1)", profile::FrameKind::kProcess, "", "", 0, ""},
      {"start_thread", profile::FrameKind::kUser, "/usr/lib/x86_64-linux-gnu/libc.so.6", "", 0, ""},
      {"server::EventLoop::run()", profile::FrameKind::kUser, "/opt/app/server", "src/loop.cpp",
       120, ""},
      {"server::Dispatcher::dispatch(server::Request&)", profile::FrameKind::kUser,
       "/opt/app/server", "src/dispatch.cpp", 77, ""},
  };
  std::vector<std::uint64_t> raw(static_cast<std::size_t>(distinct_stacks));
  std::uint64_t raw_total = 0;
  for (auto& v : raw) raw_total += (v = 1 + rng() % 39);
  std::uint64_t assigned = 0;
  for (int i = 0; i < distinct_stacks; ++i) {
    profile::Stack s;
    s.frames = trunk;
    int rest = i;
    for (int level = 0; level < 7; ++level) {
      const int digit = rest % 6;
      rest /= 6;
      s.frames.push_back({"app::module" + std::to_string(level) + "::Handler" +
                              std::to_string(digit) + "::process(std::string_view, Context&)",
                          profile::FrameKind::kUser, "/opt/app/server",
                          "src/module" + std::to_string(level) + ".cpp", 10 + digit, ""});
    }
    const int tail = static_cast<int>(rng() % 15);
    for (int t = 0; t < tail; ++t) {
      const bool kernel = t >= tail - 3;
      s.frames.push_back({(kernel ? "__x64_sys_call_" : "helper_") + std::to_string(rng() % 50),
                          kernel ? profile::FrameKind::kKernel : profile::FrameKind::kUser,
                          kernel ? "[kernel]" : "/opt/app/server", "", 0, ""});
    }
    s.value = raw[static_cast<std::size_t>(i)] * kSamples / raw_total;
    s.count = s.value;
    assigned += s.value;
    p.stacks.push_back(std::move(s));
  }
  p.stacks.back().value += kSamples - assigned;  // exactly kSamples in all
  return p;
}

const profile::Profile& cached(int stacks) {
  static profile::Profile small = synthetic_profile(5'000);
  static profile::Profile large = synthetic_profile(50'000);
  return stacks == 5'000 ? small : large;
}

void set_counters(benchmark::State& state, std::size_t bytes) {
  state.counters["stacks"] = static_cast<double>(state.range(0));
  state.counters["output_MB"] = static_cast<double>(bytes) / 1e6;
}

void BM_Folded(benchmark::State& state) {
  const profile::Profile& p = cached(static_cast<int>(state.range(0)));
  std::size_t bytes = 0;
  for (auto _ : state) {
    std::string out = render::folded(p);
    bytes = out.size();
    benchmark::DoNotOptimize(out);
  }
  set_counters(state, bytes);
}

void BM_FlamegraphSvg(benchmark::State& state) {
  const profile::Profile& p = cached(static_cast<int>(state.range(0)));
  std::size_t bytes = 0;
  render::SvgStats stats;
  for (auto _ : state) {
    std::string out = render::flamegraph_svg(p, {}, &stats);
    bytes = out.size();
    benchmark::DoNotOptimize(out);
  }
  set_counters(state, bytes);
  state.counters["frames_drawn"] = static_cast<double>(stats.frames_drawn);
  state.counters["frames_elided"] = static_cast<double>(stats.frames_elided);
}

void BM_SpeedscopeJson(benchmark::State& state) {
  const profile::Profile& p = cached(static_cast<int>(state.range(0)));
  std::size_t bytes = 0;
  for (auto _ : state) {
    std::string out = render::speedscope(p).dump();
    bytes = out.size();
    benchmark::DoNotOptimize(out);
  }
  set_counters(state, bytes);
}

}  // namespace

BENCHMARK(BM_Folded)->Arg(5'000)->Arg(50'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FlamegraphSvg)->Arg(5'000)->Arg(50'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SpeedscopeJson)->Arg(5'000)->Arg(50'000)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
