#pragma once
// The thread rows of one tick packed into one blob (recording schema 2, table thread_pack): the
// layout is documented in docs/recording.md ("thread_pack"). A thread that ran costs about a
// dozen bytes instead of a 40-byte SQLite row.
//
// Every number is a LEB128 varint; signed ones are zigzag-encoded first. Counter deltas are the
// modular (wrapping) difference from the thread's previous row, as thread_sample stored them.
// Decoding is defensive: a truncated or malformed blob is refused as a whole, never read past.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
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

// The exact mode's sums of a tick (model::ExactSample::waits), packed: per entry pid and tid as
// zigzag differences from the entry before, kind, syscall_nr (zigzag), object, ns, count and the
// thread's start time (stat field 22 ticks, 0 unknown), in order. Values are absolute, so that
// every tick decodes alone.
std::string pack_exact_waits(const std::vector<model::ExactWait>& waits);
// nullopt when the blob is truncated or malformed; values are clamped to their ranges.
std::optional<std::vector<model::ExactWait>> unpack_exact_waits(std::string_view blob);

// The wait-for edges of a tick (model::ExactSample::edges), packed (schema 3; schema 2 kept them
// in the tick's exact_sample document): per edge the waker's pid and tid, the kind, the wakee's
// pid and tid as zigzag differences from the edge before, syscall_nr (zigzag), object, ns and
// count, in order. Values are absolute, so that every tick decodes alone.
std::string pack_wake_edges(const std::vector<model::WakeEdge>& edges);
// nullopt when the blob is truncated or malformed; values are clamped to their ranges.
std::optional<std::vector<model::WakeEdge>> unpack_wake_edges(std::string_view blob);

}  // namespace chokepoint::store
