#include "collect/perf/ring_arena.h"

#include <sys/mman.h>

#include <cerrno>

namespace chokepoint::collect::perf {

namespace {

// Address space only: no memory is committed until a ring is mapped over a slot.
void* reserve(void* at, std::size_t bytes) {
  const int fixed = at != nullptr ? MAP_FIXED : 0;
  void* p = mmap(at, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | fixed, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

}  // namespace

RingArena::RingArena(std::size_t ring_bytes, std::size_t rings_per_block)
    : ring_bytes_(ring_bytes), rings_per_block_(rings_per_block == 0 ? 1 : rings_per_block) {}

RingArena::~RingArena() {
  for (void* block : blocks_) munmap(block, ring_bytes_ * rings_per_block_);
}

bool RingArena::reserve_block() {
  void* block = reserve(nullptr, ring_bytes_ * rings_per_block_);
  if (block == nullptr) return false;
  blocks_.push_back(block);
  // Handed out from the block's start, so that rings opened together sit together.
  for (std::size_t i = rings_per_block_; i-- > 0;) {
    free_.push_back(static_cast<char*>(block) + i * ring_bytes_);
  }
  return true;
}

void* RingArena::map(int fd) {
  if (free_.empty() && !reserve_block()) return nullptr;
  void* slot = free_.back();
  // MAP_FIXED replaces the slot's reservation atomically; on failure the reservation stays.
  void* ring = mmap(slot, ring_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
  if (ring == MAP_FAILED) return nullptr;
  free_.pop_back();
  return ring;
}

void RingArena::release(void* ring) {
  if (ring == nullptr) return;
  // Replacing the mapping drops the ring (and the event, once its fd is closed) and keeps the
  // address space ours. Should that fail (no memory for the new mapping), unmap the slot instead
  // and do not reuse it: the block's munmap covers the hole harmlessly.
  if (reserve(ring, ring_bytes_) == nullptr) {
    munmap(ring, ring_bytes_);
    return;
  }
  free_.push_back(ring);
}

}  // namespace chokepoint::collect::perf
