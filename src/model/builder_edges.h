#pragma once
// Internal to src/model/builder*.cpp: a wait-for edge's identity and its sums as the builder keeps
// them (model/builder_state.h's Builder holds them in a flat array found through an
// open-addressing index; builder_edges.cpp). Not for use outside the builder.

#include <cstddef>
#include <cstdint>
#include <tuple>

#include "model/samples.h"

namespace chokepoint::model::builder_internal {

// A wait-for edge's identity, hashed flat (a replay meets every edge of every tick).
struct EdgeKey {
  int waker_pid = 0, waker_tid = 0;
  WakerKind waker_kind = WakerKind::kThread;
  int wakee_pid = 0, wakee_tid = 0;
  long syscall_nr = -1;
  std::uint64_t object = 0;

  explicit EdgeKey(const WakeEdge& e)
      : waker_pid(e.waker_pid),
        waker_tid(e.waker_tid),
        waker_kind(e.waker_kind),
        wakee_pid(e.wakee_pid),
        wakee_tid(e.wakee_tid),
        syscall_nr(e.syscall_nr),
        object(e.object) {}
  auto tie() const {
    return std::tie(waker_pid, waker_tid, waker_kind, wakee_pid, wakee_tid, syscall_nr, object);
  }
  bool operator==(const EdgeKey& o) const { return tie() == o.tie(); }
};

struct EdgeKeyHash {
  std::size_t operator()(const EdgeKey& k) const {
    // Multiply-xorshift mixing of the fields, as two 64-bit words and the object.
    const auto u = [](int v) { return static_cast<std::uint64_t>(static_cast<std::uint32_t>(v)); };
    std::uint64_t h = (u(k.waker_tid) << 32 | u(k.wakee_tid)) * 0x9e3779b97f4a7c15ULL;
    h ^= ((u(k.waker_pid) << 32 | u(k.wakee_pid)) + static_cast<std::uint64_t>(k.waker_kind)) *
         0xc2b2ae3d27d4eb4fULL;
    h ^= (k.object + static_cast<std::uint64_t>(k.syscall_nr)) * 0x165667b19e3779f9ULL;
    return static_cast<std::size_t>(h ^ (h >> 29));
  }
};

// An edge's cumulative sums at or before the window's start (0 when it was not seen then) and the
// last ones.
struct EdgeSums {
  std::uint64_t base_ns = 0, base_count = 0, last_ns = 0, last_count = 0;
};

struct EdgeEntry {
  EdgeKey key;
  EdgeSums sums;
};

}  // namespace chokepoint::model::builder_internal
