// Address space for perf ring buffers, reserved in blocks, so that many rings are unmapped in few
// munmap calls.
//
// Why: unmapping a ring flushes the TLB of every CPU the process ran on (an IPI each, waited
// for). One munmap per ring made tearing down a 5,000-thread profile 7% of a diagnose's CPU, and
// under saturation each IPI waits for a busy CPU. Rings mapped side by side into one reserved
// block go with one munmap of the block: the kernel gathers the unmapped pages and flushes once
// per batch.
#pragma once

#include <cstddef>
#include <vector>

namespace chokepoint::collect::perf {

class RingArena {
 public:
  // ring_bytes: one ring's mapping (its metadata page and data pages), a multiple of the page.
  explicit RingArena(std::size_t ring_bytes, std::size_t rings_per_block = 256);
  RingArena(const RingArena&) = delete;
  RingArena& operator=(const RingArena&) = delete;
  // Unmaps every block, and with them every ring still mapped.
  ~RingArena();

  // Maps the perf event `fd`'s ring into a free slot. nullptr and errno on failure (the event
  // refused the mapping, or no address space could be reserved).
  void* map(int fd);
  // Gives back the slot of a ring that map() returned (a thread that exited): its pages are
  // replaced by an inaccessible reservation, and the slot is reused. For one ring at a time; the
  // whole arena goes at destruction.
  void release(void* ring);

  std::size_t ring_bytes() const { return ring_bytes_; }
  std::size_t blocks() const { return blocks_.size(); }

 private:
  bool reserve_block();

  std::size_t ring_bytes_;
  std::size_t rings_per_block_;
  std::vector<void*> blocks_;
  std::vector<void*> free_;  // reserved slots, last freed first
};

}  // namespace chokepoint::collect::perf
