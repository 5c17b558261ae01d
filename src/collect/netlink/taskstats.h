#pragma once
// Delay accounting over the taskstats generic-netlink interface (Documentation/accounting/
// taskstats.rst): the exact time a process's threads waited for a CPU, on block IO, on swap-in,
// in direct reclaim (freepages), on thrashing (refaults of recently evicted pages) and in memory
// compaction. /proc gives only the block-IO part (stat field 42); the memory delays are here.
//
// Needs CAP_NET_ADMIN. The kernel fills the counters only for tasks started while
// kernel.task_delayacct was 1 (off by default since 5.14). Counters are cumulative; the caller
// takes deltas.
//
// Thread-safety: one thread at a time per Taskstats object. Move-only.

#include <cstddef>
#include <cstdint>
#include <span>

#include "util/result.h"
#include "util/scoped_fd.h"

namespace chokepoint::collect::netlink {

// Cumulative delays of one task or thread group, in ns, with the number of delays behind each.
// A field the kernel did not send (an older struct taskstats version) stays 0.
struct TaskDelays {
  std::uint16_t version = 0;  // struct taskstats version the kernel sent
  std::uint64_t cpu_delay_ns = 0, cpu_count = 0;
  std::uint64_t blkio_delay_ns = 0, blkio_count = 0;
  std::uint64_t swapin_delay_ns = 0, swapin_count = 0;
  std::uint64_t freepages_delay_ns = 0, freepages_count = 0;  // direct reclaim
  std::uint64_t thrashing_delay_ns = 0, thrashing_count = 0;
  std::uint64_t compact_delay_ns = 0, compact_count = 0;
  // Memory stalls: swap-in + direct reclaim + thrashing + compaction.
  std::uint64_t memory_delay_ns() const {
    return swapin_delay_ns + freepages_delay_ns + thrashing_delay_ns + compact_delay_ns;
  }
};

// Parses one netlink message that answers TASKSTATS_CMD_GET (nlmsghdr, genlmsghdr, then a
// TASKSTATS_TYPE_AGGR_PID/AGGR_TGID nest holding TASKSTATS_TYPE_STATS). Exposed for tests and
// the fuzzer; never reads past `message`.
util::Result<TaskDelays> parse_taskstats_message(std::span<const std::uint8_t> message);

class Taskstats {
 public:
  // Opens a generic-netlink socket and resolves the TASKSTATS family. Errors carry hints (the
  // family is missing when the kernel lacks CONFIG_TASKSTATS).
  static util::Result<Taskstats> open();

  // Delays summed over a thread group (its live threads plus the ones that exited).
  util::Result<TaskDelays> thread_group(int tgid);
  // Delays of one thread.
  util::Result<TaskDelays> thread(int tid);

 private:
  Taskstats(util::ScopedFd fd, std::uint16_t family) : fd_(std::move(fd)), family_(family) {}
  util::Result<TaskDelays> query(std::uint16_t attr, std::uint32_t id);
  util::ScopedFd fd_;
  std::uint16_t family_ = 0;
  std::uint32_t seq_ = 0;
};

}  // namespace chokepoint::collect::netlink
