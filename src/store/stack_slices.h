#pragma once
// Stacks over time in a recording (schema 3): `chokepoint record` samples the target's on-CPU
// stacks (perf) and off-CPU stacks with their blocked time (eBPF) and keeps them, symbolized when
// each slice ends, as folded counts per time slice. Three tables (docs/recording.md):
//
//   stack(id INTEGER PRIMARY KEY, folded TEXT)   one distinct stack, "frame;frame;...", outermost
//                                                frame first, written once and shared by slices
//   stack_slice(id INTEGER PRIMARY KEY, kind, from_ns, to_ns, frequency_hz, lost)
//                                                kind 0 on-CPU (values: samples at frequency_hz),
//                                                1 off-CPU (values: nanoseconds blocked)
//   stack_count(slice, stack, value)             a stack's weight in a slice
//
// Rotation drops the slices that ended before the oldest tick kept, and the stacks no slice
// uses any more. A recording made before schema 3 has none of the tables: it reads as one with
// no slices.
//
// Thread-safety: as RecordingWriter and RecordingReader, one thread each.

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "util/result.h"

namespace chokepoint::store {

enum class StackKind { kOnCpu = 0, kOffCpu = 1 };

struct FoldedCount {
  std::string frames;  // folded: "frame;frame;frame", outermost first
  std::uint64_t value = 0;
};

struct StackSlice {
  StackKind kind = StackKind::kOnCpu;
  std::int64_t from_ns = 0;  // CLOCK_MONOTONIC, as the ticks' at_ns
  std::int64_t to_ns = 0;
  double frequency_hz = 0;  // on-CPU: samples per second per CPU; 0 off-CPU
  std::uint64_t lost = 0;   // samples or blocks the kernel could not keep in this slice
  std::vector<FoldedCount> stacks;
};

// The CREATE TABLE statements of the three tables.
std::string stack_schema_sql();

// The writer's side: remembers which stacks the file holds, so each is written once.
class StackTableWriter {
 public:
  // Writes one slice; the caller holds the transaction. Returns an SQLite code (SQLITE_OK).
  int write(sqlite3* db, const StackSlice& slice);
  // The transaction write() ran in was rolled back: forget the stacks it added.
  void rolled_back();
  // The transaction committed.
  void committed() { tx_new_.clear(); }
  // Deletes the slices that ended at or before tick `tick_id`'s time, and the stacks left unused;
  // the caller holds the transaction. Returns an SQLite code.
  int delete_before_tick(sqlite3* db, std::int64_t tick_id);

 private:
  std::unordered_map<std::string, std::int64_t> ids_;
  std::vector<std::string> tx_new_;
  std::int64_t next_id_ = 1;
};

// The slices of `kind` that overlap (from_ns, to_ns) (sharing more than an end), oldest first; none
// for a recording without the tables. Values are clamped (a hostile file): a slice with to_ns <
// from_ns is skipped. Errors: the tables are damaged.
util::Result<std::vector<StackSlice>> read_stack_slices(sqlite3* db, const std::string& path,
                                                        StackKind kind, std::int64_t from_ns,
                                                        std::int64_t to_ns);

}  // namespace chokepoint::store
