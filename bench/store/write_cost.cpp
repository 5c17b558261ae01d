// The recording writer's CPU per tick, without the sampler: the ticks of a real recording (read
// back with store/'s reader, so they are what the sampler gave, less what the file does not keep)
// written again through RecordingWriter, REPEATS times to files of their own, and the writer's
// thread CPU time (CLOCK_THREAD_CPUTIME_ID: user and system, SQLite's writes included) per tick.
// Prints the median over the repeats, and what a tick held; with OUTPUT, keeps the last file, so
// that two builds' files can be replayed and compared.
// Usage: chokepoint-bench-write RECORDING [REPEATS] [OUTPUT]
#include <fmt/format.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "store/recording.h"

namespace {

std::int64_t thread_cpu_ns() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4) {
    std::fprintf(stderr, "usage: %s RECORDING [REPEATS] [OUTPUT]\n", argv[0]);
    return 2;
  }
  auto source = chokepoint::store::read_all(argv[1]);
  if (!source || source->ticks.empty()) {
    std::fprintf(stderr, "error: %s: %s\n", argv[1],
                 source ? "no ticks" : source.error().message.c_str());
    return 1;
  }
  const int repeats = argc >= 3 ? std::max(1, std::atoi(argv[2])) : 5;
  const std::string out = argc == 4 ? argv[3] : fmt::format("{}.bench-write-{}", argv[1], getpid());
  std::size_t threads = 0, waits = 0, edges = 0;
  for (const auto& t : source->ticks) {
    threads += t.threads.size();
    if (t.exact) {
      waits += t.exact->waits.size();
      edges += t.exact->edges.size();
    }
  }
  const auto n = static_cast<double>(source->ticks.size());
  fmt::print("{} ticks; a tick: {:.0f} thread samples, {:.0f} exact sums, {:.0f} edges\n",
             source->ticks.size(), threads / n, waits / n, edges / n);
  std::vector<double> us_per_tick;
  for (int r = 0; r < repeats; ++r) {
    chokepoint::store::WriterOptions opt;
    opt.chokepoint_version = "bench";
    auto writer = chokepoint::store::RecordingWriter::create(out, opt);
    if (!writer) {
      std::fprintf(stderr, "error: %s\n", writer.error().message.c_str());
      return 1;
    }
    (*writer)->begin(source->info);
    std::vector<chokepoint::model::Tick> ticks = source->ticks;  // copied outside the timing
    const std::int64_t start = thread_cpu_ns();
    for (auto& t : ticks) (*writer)->add(std::move(t));
    us_per_tick.push_back(static_cast<double>(thread_cpu_ns() - start) / 1e3 / n);
    if ((*writer)->ticks_lost() > 0) {
      std::fprintf(stderr, "error: %llu ticks lost\n",
                   static_cast<unsigned long long>((*writer)->ticks_lost()));
      return 1;
    }
    writer->reset();
    if (r + 1 < repeats || argc < 4) {
      for (const char* suffix : {"", "-wal", "-shm"}) ::unlink((out + suffix).c_str());
    }
  }
  std::vector<double> sorted = us_per_tick;
  std::sort(sorted.begin(), sorted.end());
  fmt::print("writer CPU per tick: median {:.1f} us (runs:", sorted[sorted.size() / 2]);
  for (double v : us_per_tick) fmt::print(" {:.1f}", v);
  fmt::print(")\n");
  return 0;
}
