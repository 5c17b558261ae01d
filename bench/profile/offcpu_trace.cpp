// chokepoint-bench-offcpu PID SECONDS [MIN_BLOCK_US]
// Traces PID's off-CPU time for SECONDS and prints one summary line (what was summed in the
// kernel and what was dropped), for bench/profile/offcpu_overhead.sh. Exit 1 with the error and
// its hint when tracing cannot start. With OFFCPU_BENCH_TOP=N it also symbolizes and prints the N
// heaviest stacks as folded lines (OFFCPU_BENCH_WAKERS=1: with the waker appended).
// OFFCPU_BENCH_BUDGET=N sets the blocks per CPU per second traced in full (0: every block).

#include <cstdio>
#include <cstdlib>
#include <string>

#include <algorithm>

#include "collect/bpf/offcpu_profile.h"
#include "collect/bpf/offcpu_tracer.h"
#include "symbolize/symbolizer.h"

int main(int argc, char** argv) {
  using namespace chokepoint::collect::bpf;
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s PID SECONDS [MIN_BLOCK_US]\n", argv[0]);
    return 2;
  }
  OffCpuOptions o;
  o.tgids = {std::atoi(argv[1])};
  o.duration_ns = static_cast<std::uint64_t>(std::atof(argv[2]) * 1e9);
  if (argc > 3) o.min_block_ns = static_cast<std::uint64_t>(std::atof(argv[3]) * 1e3);
  // Knobs for measuring what each part costs (bench only).
  if (const char* f = std::getenv("OFFCPU_BENCH_OFF")) {
    std::string off(f);
    o.kernel_stacks = off.find("kernel") == std::string::npos;
    o.user_stacks = off.find("user") == std::string::npos;
    o.leaf_callers = off.find("leaf") == std::string::npos;
    o.waker_stacks = off.find("waker") == std::string::npos;
    o.cache_stacks = off.find("nocache") == std::string::npos;
    o.cache_block_kernel_stacks = off.find("kcache") != std::string::npos;
    o.interrupt_waker_stacks = off.find("irq") == std::string::npos;
  }
  // OFFCPU_BENCH_BUDGET=N: blocks per CPU per second traced in full (0: every block).
  if (const char* b = std::getenv("OFFCPU_BENCH_BUDGET")) {
    o.full_blocks_per_cpu_per_s = static_cast<std::uint32_t>(std::strtoul(b, nullptr, 10));
  }
  auto tracer = OffCpuTracer::create(o);
  if (!tracer) {
    std::fprintf(stderr, "error: %s\nhint: %s\n", tracer.error().message.c_str(),
                 tracer.error().hint.c_str());
    return 1;
  }
  auto r = (*tracer)->run();
  if (!r) {
    std::fprintf(stderr, "error: %s\nhint: %s\n", r.error().message.c_str(),
                 r.error().hint.c_str());
    return 1;
  }
  std::uint64_t ns = 0, blocks = 0, woken = 0, leaf = 0;
  for (const auto& rec : r->records) {
    ns += rec.total_ns;
    blocks += rec.count;
    woken += rec.woken ? rec.count : 0;
    leaf += rec.leaf_caller_added ? 1 : 0;
  }
  std::printf(
      "offcpu %s: %.2f s, %zu distinct stacks, %llu blocks (%llu with a waker), %.3f s blocked, "
      "%llu stacks with a recovered leaf caller; drops: stack collisions %llu, stack failures "
      "%llu, counts full %llu, start full %llu; stack cache hits %llu, misses %llu; interrupt "
      "wakeups %llu; blocks traced %llu, sampled out %llu\n",
      r->attach_kind.c_str(), r->duration_s, r->records.size(),
      static_cast<unsigned long long>(blocks), static_cast<unsigned long long>(woken),
      static_cast<double>(ns) / 1e9, static_cast<unsigned long long>(leaf),
      static_cast<unsigned long long>(r->drops.stack_collisions),
      static_cast<unsigned long long>(r->drops.stack_failures),
      static_cast<unsigned long long>(r->drops.counts_full),
      static_cast<unsigned long long>(r->drops.start_full),
      static_cast<unsigned long long>(r->drops.cache_hits),
      static_cast<unsigned long long>(r->drops.cache_misses),
      static_cast<unsigned long long>(r->drops.interrupt_wakeups),
      static_cast<unsigned long long>(r->drops.blocks_traced),
      static_cast<unsigned long long>(r->drops.blocks_sampled_out));
  for (const auto& n : r->notes) std::printf("note: %s\n", n.c_str());
  if (const char* top = std::getenv("OFFCPU_BENCH_TOP")) {
    auto sym = chokepoint::symbolize::Symbolizer::create();
    if (!sym) {
      std::fprintf(stderr, "error: %s\n", sym.error().message.c_str());
      return 1;
    }
    OffCpuProfileOptions po;
    po.thread_frames = true;
    if (std::getenv("OFFCPU_BENCH_WAKERS")) po.wakers = WakerLayout::kAppended;
    auto p = to_profile(*r, **sym, po);
    std::sort(p.stacks.begin(), p.stacks.end(),
              [](const auto& a, const auto& b) { return a.value > b.value; });
    std::printf("%s\n", p.title.c_str());
    for (std::size_t i = 0; i < p.stacks.size() && i < std::size_t(std::atoi(top)); ++i) {
      std::string line;
      for (const auto& f : p.stacks[i].frames) {
        line += (line.empty() ? "" : ";") + f.name +
                (f.line > 0 ? " (" + f.file + ":" + std::to_string(f.line) + ")" : "");
      }
      std::printf("%s %llu\n", line.c_str(), static_cast<unsigned long long>(p.stacks[i].value));
    }
    for (const auto& n : p.notes) std::printf("profile note: %s\n", n.c_str());
  }
  return 0;
}
