#pragma once
// The thread rows of one tick packed into one blob (recording schema 2, table thread_pack): the
// layout is documented in docs/recording.md ("thread_pack"). A thread that ran costs about a
// dozen bytes instead of a 40-byte SQLite row.
//
// Every number is a LEB128 varint; signed ones are zigzag-encoded first. Counter deltas are the
// modular (wrapping) difference from the thread's previous row, as thread_sample stored them.
// Decoding is defensive: a truncated or malformed blob is refused as a whole, never read past.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/samples.h"

namespace chokepoint::store {

// A wait as the recording keeps it: the WAIT columns of docs/recording.md, text references as
// ids of the text table (0: none).
struct WaitRow {
  std::int64_t state = 0;  // stat field 3 as a character code
  std::int64_t site = 0;   // model::SyscallWhere
  std::int64_t syscall_nr = 0;
  std::array<std::uint64_t, 6> args{};  // syscall_nr and args only when site is "in a syscall"
  std::int64_t fd_role = 0;
  std::int64_t fd_detail = 0;     // text id, 0: none
  std::int64_t net_wait = 0;      // bit 0 the process waits on the network, bit 1 frozen
  std::int64_t futex_caller = 0;  // text id, 0: none
};

// site value of a wait inside a syscall (model::SyscallWhere::kInSyscall).
inline constexpr std::int64_t kSiteInSyscall = 3;

// One thread's row: what thread_sample held.
struct PackedThread {
  std::int64_t thread = 0;                       // thread.id
  std::optional<std::int64_t> prev_poll_ago_ns;  // nullopt: read at every poll since its last row
  bool has_stat = false;
  // Deltas from the thread's previous row, modular. The four stat ones only with has_stat.
  std::uint64_t run_ns = 0, run_delay_ns = 0, utime_ns = 0, stime_ns = 0, majflt = 0, blkio_ns = 0;
  std::optional<WaitRow> wait;  // nullopt: the wait of its previous row (always without has_stat)
};

// Appends thread rows to a blob, in order.
class ThreadPacker {
 public:
  void add(const PackedThread& t);
  const std::string& bytes() const { return out_; }
  std::size_t count() const { return count_; }
  void clear();

 private:
  std::string out_;
  std::int64_t prev_thread_ = 0;
  std::size_t count_ = 0;
};

// The rows of a blob, in order; nullopt when it is truncated or malformed.
std::optional<std::vector<PackedThread>> unpack_threads(std::string_view blob);

// The exact mode's sums of a tick (model::ExactSample::waits), packed as schema 2 did: per entry
// pid and tid as zigzag differences from the entry before, kind, syscall_nr (zigzag), object, ns,
// count and the thread's start time (stat field 22 ticks, 0 unknown), in order. Values are
// absolute, so that every tick decodes alone.
std::string pack_exact_waits(const std::vector<model::ExactWait>& waits);
// nullopt when the blob is truncated or malformed; values are clamped to their ranges.
std::optional<std::vector<model::ExactWait>> unpack_exact_waits(std::string_view blob);

// Schema 3's exact sums (exact_sample.waits) and wait-for edges (exact_sample.edges): each tick's
// blob refers to the entries of the ticks before it, back to the last one that restarted (the
// first tick with the exact mode after a keyframe or a lost tick), so the packer and the
// unpacker each keep the entries they have met, by id. The blob is a flags varint (bit 0:
// restart: forget every entry met) and then the entries, each headed by a varint h:
// - h = 0: an entry not met since the restart, whole: its key (below) and its ns and count,
//   absolute; it takes the next id (0, 1, 2, ... in the order met);
// - h > 0: the entry with id prev + 1 + unzigzag(h - 1) (prev: the entry before's id, -1 at the
//   start of the blob), then its ns and count as z differences (modular) from its last value.
// The key of an exact sum: pid and tid (z, differences from the previous new entry's), kind,
// syscall_nr (z), object, start_time_ticks; of an edge: waker pid and tid, waker kind, wakee pid
// and tid (the pids and tids z, differences as the sums'), syscall_nr (z), object. A busy thread
// costs a byte for each key instead of ten or more.
// Row: model::ExactWait or model::WakeEdge.
//
// The packer also keeps every entry's latest value, across restarts, until drop_if forgets it: the
// recording writer writes them all at each keyframe (pack_all), so one table per kind serves both
// the deltas and the keyframes, and a row costs one hash lookup (the writer kept a std::map of
// every entry beside a dictionary of serialised keys: 23% of the recorder's CPU at 1,000 threads,
// perf). Not thread-safe.
template <typename Row>
class DeltaPacker {
 public:
  // The blob of a tick's changed entries, in the order given (sort_for_packing's makes it
  // smallest); with `restart` (or after forget) every entry is new. Remembers them as the latest.
  // The blob stays valid until the next pack or pack_all.
  const std::string& pack(const std::vector<Row>& rows, bool restart);
  // A keyframe's blob: `changed` remembered as the latest, then every entry kept (changed or
  // not), in sort_for_packing's order, restarted.
  const std::string& pack_all(const std::vector<Row>& changed);
  // Forgets the entries met since the restart (the tick they went in was lost): the next pack
  // restarts. The latest values are kept.
  void forget();
  // Forgets the latest value of every entry `gone` says yes to (threads that ended).
  template <typename Pred>
  void drop_if(Pred gone) {
    const std::size_t before = entries_.size();
    entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                  [&](const Entry& e) { return gone(e.row); }),
                   entries_.end());
    if (entries_.size() != before) index(slots_.size());
  }
  // The number of entries kept.
  std::size_t size() const { return entries_.size(); }

  // Sorts rows into their keys' order (the kernel's maps give them in hash order): a thread's
  // entries together, so that a reader looks the thread up once, and ids in a row, one byte each.
  // ExactWait: pid, tid, start time, kind, syscall, object; WakeEdge: waker pid, tid and kind,
  // wakee pid and tid, syscall, object.
  static void sort_for_packing(std::vector<Row>& rows);

 private:
  struct Entry {
    Row row;                  // its latest value
    std::uint64_t epoch = 0;  // met since the restart when it is epoch_
    std::int64_t id = 0;      // its id since then
  };
  // The entry of r's key, added (not met) when there is none.
  Entry& entry(const Row& r);
  // Rebuilds slots_ with `capacity` slots (a power of two, at least twice the entries).
  void index(std::size_t capacity);

  // The entries in a vector, found through an open-addressed table of their indexes + 1 (0: an
  // empty slot), linear probing, at most half full: a lookup reads a 4-byte slot and the entry,
  // where a node-based map read a bucket, a node and divided twice (the exact mode's 16,384 edges
  // at 1,000 threads outgrow the caches, so each of those reads was a miss).
  std::vector<Entry> entries_;
  std::vector<std::uint32_t> slots_;
  std::uint64_t epoch_ = 0;  // bumped at each restart
  std::int64_t next_id_ = 0;
  bool must_restart_ = true;
  std::string out_;
};

template <typename Row>
class DeltaUnpacker {
 public:
  // A tick's entries, in order; nullopt when the blob is truncated, malformed, or refers to an
  // entry not met. Values are clamped to their ranges.
  std::optional<std::vector<Row>> unpack(std::string_view blob);

 private:
  std::vector<Row> met_;  // by id, with their last values
};

extern template class DeltaPacker<model::ExactWait>;
extern template class DeltaPacker<model::WakeEdge>;
extern template class DeltaUnpacker<model::ExactWait>;
extern template class DeltaUnpacker<model::WakeEdge>;

}  // namespace chokepoint::store
