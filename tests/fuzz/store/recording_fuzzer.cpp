// Opens the input as a recording and replays it (its ticks, stacks and probe series): any bytes
// must give an error or an observation, never a crash, a hang or unbounded memory.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>

#include "model/builder.h"
#include "store/recording.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // SQLite reads files: one per fuzzing process, rewritten for every input.
  static const std::string path = [] {
    std::string p = "/tmp/chokepoint_store_fuzz_" + std::to_string(::getpid());
    std::atexit([] {
      const std::string q = "/tmp/chokepoint_store_fuzz_" + std::to_string(::getpid());
      for (const char* suffix : {"", "-wal", "-shm"}) ::unlink((q + suffix).c_str());
    });
    return p;
  }();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  if (size > 0) std::fwrite(data, 1, size, f);
  std::fclose(f);
  ::unlink((path + "-wal").c_str());
  ::unlink((path + "-shm").c_str());
  auto reader = chokepoint::store::RecordingReader::open(path);
  if (reader) {
    const auto range = reader->time_range();
    chokepoint::model::ObservationBuilder builder(reader->info(), range ? range->first : 0,
                                                  range ? range->second : 0);
    std::size_t ticks = 0;
    (void)reader->read_ticks(std::numeric_limits<std::int64_t>::max(),
                             [&](chokepoint::model::Tick&& t) {
                               builder.add(t);
                               return ++ticks < 100'000;
                             });
    (void)builder.finish();
    // Schema 3's stacks over time, read back as replay and report read them.
    for (auto kind :
         {chokepoint::store::StackKind::kOnCpu, chokepoint::store::StackKind::kOffCpu}) {
      (void)reader->stack_slices(kind, std::numeric_limits<std::int64_t>::min(),
                                 std::numeric_limits<std::int64_t>::max());
    }
    // Schema 5's probe series, folded as replay folds a window's.
    auto polls = reader->probe_polls(std::numeric_limits<std::int64_t>::min(),
                                     std::numeric_limits<std::int64_t>::max());
    if (polls) {
      (void)chokepoint::model::fold_service_polls(reader->probes(), *polls,
                                                  std::numeric_limits<std::int64_t>::min(),
                                                  std::numeric_limits<std::int64_t>::max());
    }
  }
  return 0;
}
