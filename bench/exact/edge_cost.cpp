// Attaches the exact mode's eBPF programs (src/bpf/stateacct.bpf.c) to one process, with or
// without the wait-for edge count, and reads the sums (and edges) every 100 ms as the sampler does,
// for SECONDS, accounting BUDGET blocks per CPU per second in full (default: the library's). For
// `bench/exact/exact_bench.py BUILD edges`, which measures the target's throughput each way, and
// `... programs`, which measures the programs' cost at each of PROGRAM_BUDGETS.
//
// Usage: chokepoint-bench-edges PID SECONDS on|off [BUDGET]
#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "collect/bpf/state_accounting.h"

int main(int argc, char** argv) {
  using chokepoint::collect::bpf::StateAccounting;
  using chokepoint::collect::bpf::StateAccountingOptions;
  const std::string mode = argc == 4 || argc == 5 ? argv[3] : "";
  if (mode != "on" && mode != "off") {
    fmt::print(stderr, "usage: chokepoint-bench-edges PID SECONDS on|off [BUDGET]\n");
    return 2;
  }
  const int pid = std::atoi(argv[1]);
  const int seconds = std::atoi(argv[2]);
  StateAccountingOptions options;
  options.wake_edges = mode == "on";
  if (argc == 5) options.budget_per_cpu_s = static_cast<std::uint32_t>(std::atoi(argv[4]));
  auto tracer = StateAccounting::create(options);
  if (!tracer) {
    fmt::print(stderr, "error: {}\nhint: {}\n", tracer.error().message, tracer.error().hint);
    return 1;
  }
  if (auto ok = (*tracer)->set_targets({pid}); !ok) {
    fmt::print(stderr, "error: {}\n", ok.error().message);
    return 1;
  }
  std::size_t sums = 0, edges = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    sums = (*tracer)->read().size();
    edges = (*tracer)->read_edges().size();
  }
  const auto st = (*tracer)->stats();
  fmt::print("switches {} thinned_out {} lost {} sums {} edges {} threshold_ns_max {}\n",
             st.switches, st.thinned_out, st.lost, sums, edges, st.thin_below_ns_max);
  return 0;
}
