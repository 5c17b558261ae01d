// Fuzzes read_records (collect/perf/records.h). Input: u16 start offset, u8 max_stack, then the
// ring's bytes (the ring is the largest power of two that fits; head = start + the rest's size).
// Beyond "no crash, no sanitizer report", it checks what a caller relies on: the reader always
// reaches head, every delivered sample fits the ring, and the counters agree with the deliveries.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "collect/perf/records.h"

using namespace chokepoint::collect::perf;

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  std::uint16_t start = 0;
  std::memcpy(&start, data, 2);
  const std::uint32_t max_stack = data[2];
  data += 3;
  size -= 3;
  std::uint64_t ring_size = 1;
  while (ring_size * 2 <= size) ring_size *= 2;
  if (size == 0) ring_size = 8;
  // Lay the bytes into the ring from `start`, as the kernel would have written them.
  std::vector<std::uint8_t> ring(ring_size, 0);
  const std::uint64_t used = std::min<std::uint64_t>(size, ring_size);
  for (std::uint64_t i = 0; i < used; ++i) ring[(start + i) % ring_size] = data[i];
  // IP|TID|TIME|CALLCHAIN|CPU|PERIOD (0x1a7), IP|TID|TIME|CALLCHAIN (0x27), and the DWARF mode's
  // IP|TID|TIME|PERIOD|CALLCHAIN|REGS_USER|STACK_USER (0x3127, 17 registers): the same bytes read
  // with three layouts.
  const std::uint64_t sample_type = 0x1a7;
  const std::uint64_t dwarf_type = 0x3127;
  const std::uint64_t regs_mask = 0x1ffull | (0xffull << 16);
  std::uint64_t delivered = 0;
  RecordSink sink;
  sink.sample = [&](const Sample& s) {
    ++delivered;
    check(s.kernel_ips.size() + s.user_ips.size() + s.foreign_ips <= ring_size / 8);
    check(s.user_regs.size() == 0 || s.user_regs.size() == 17);
    check(s.user_stack.size() <= s.user_stack_requested_bytes);
    check(s.user_stack.size() <= ring_size);
    // Every byte of the copy is readable (ASan catches a span past its record).
    std::uint64_t sum = 0;
    for (auto b : s.user_stack) sum += b;
    check(sum <= 255 * s.user_stack.size());
  };
  sink.comm = [&](const Comm& c) { check(c.comm.size() < ring_size); };
  std::vector<std::uint8_t> scratch;
  RecordStats stats;
  for (std::uint64_t type : {sample_type, std::uint64_t{0x27}, dwarf_type}) {
    delivered = 0;
    stats = {};
    const std::uint64_t tail =
        read_records(RingView{ring.data(), ring_size}, start, start + used, type, max_stack,
                     scratch, sink, stats, type == dwarf_type ? regs_mask : 0);
    check(tail == start + used);
    check(stats.samples == delivered);
    check(stats.truncated <= stats.samples && stats.empty_stacks <= stats.samples);
  }
  return 0;
}
