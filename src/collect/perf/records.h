#pragma once
// Decoding of the perf_event ring buffer: the records the kernel writes into the mmap'ed data area
// of a sampling event (perf_event_open(2), "MMAP layout"; include/uapi/linux/perf_event.h).
//
// Pure functions over bytes, no system calls: the sampler (perf_sampler.h) hands in the data area
// and the head/tail it read, tests hand in crafted bytes. Nothing here trusts the bytes: a record
// whose size or callchain length runs past its end is counted as malformed and skipped, never
// read past.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace chokepoint::collect::perf {

// The callchain context markers (enum perf_callchain_context): every value at or above
// kContextMax is a marker that says whose frames follow, not an address.
inline constexpr std::uint64_t kContextHv = static_cast<std::uint64_t>(-32);
inline constexpr std::uint64_t kContextKernel = static_cast<std::uint64_t>(-128);
inline constexpr std::uint64_t kContextUser = static_cast<std::uint64_t>(-512);
inline constexpr std::uint64_t kContextGuest = static_cast<std::uint64_t>(-2048);
inline constexpr std::uint64_t kContextGuestKernel = static_cast<std::uint64_t>(-2176);
inline constexpr std::uint64_t kContextGuestUser = static_cast<std::uint64_t>(-2560);
inline constexpr std::uint64_t kContextMax = static_cast<std::uint64_t>(-4095);

// One PERF_RECORD_SAMPLE, with the fields the profiler asks for.
struct Sample {
  std::uint64_t ip = 0;       // PERF_SAMPLE_IP; 0 when not requested
  std::uint32_t pid = 0;      // PERF_SAMPLE_TID: the process (tgid)
  std::uint32_t tid = 0;      // ... and the thread
  std::uint64_t time_ns = 0;  // PERF_SAMPLE_TIME: the event's clock (perf_clock, ns)
  std::uint64_t period = 0;   // PERF_SAMPLE_PERIOD: events (cpu-clock: ns) since the last sample
  // PERF_SAMPLE_CALLCHAIN split at its context markers, innermost (leaf) frame first.
  std::vector<std::uint64_t> kernel_ips;
  std::vector<std::uint64_t> user_ips;
  // The chain held max_stack addresses: the kernel stopped there, outer frames are missing.
  bool truncated = false;
  // Guest or hypervisor frames the chain carried and we dropped (we do not profile guests).
  std::uint32_t foreign_ips = 0;
  // PERF_SAMPLE_REGS_USER: the thread's user-space registers when the sample was taken (at kernel
  // entry when it interrupted kernel code). regs_abi is PERF_SAMPLE_REGS_ABI_*: 0 (none: a
  // kernel thread, no registers follow), 1 (32-bit) or 2 (64-bit). user_regs holds one value per
  // bit of the event's sample_regs_user mask, in ascending bit order.
  std::uint64_t regs_abi = 0;
  std::vector<std::uint64_t> user_regs;
  // PERF_SAMPLE_STACK_USER: the dyn_size bytes copied from the user stack pointer upwards (empty
  // when the kernel could copy nothing). Points into the record being decoded: valid only during
  // the sink call, like the Sample itself.
  std::span<const std::uint8_t> user_stack;
  std::uint64_t user_stack_requested_bytes = 0;  // the size field: what the event asked for
};

// PERF_RECORD_COMM: a thread's name, at exec (misc has PERF_RECORD_MISC_COMM_EXEC) or prctl.
struct Comm {
  std::uint32_t pid = 0;
  std::uint32_t tid = 0;
  std::string comm;
  bool exec = false;
};

// What one pass over a ring buffer found, besides the samples.
struct RecordStats {
  std::uint64_t samples = 0;
  std::uint64_t lost = 0;  // sum of PERF_RECORD_LOST.lost: samples the kernel dropped
  std::uint64_t lost_records = 0;
  std::uint64_t truncated = 0;     // samples whose callchain hit max_stack
  std::uint64_t empty_stacks = 0;  // samples with no address in the chain and no user stack copy
  std::uint64_t throttled = 0;     // PERF_RECORD_THROTTLE: the kernel slowed sampling down
  std::uint64_t malformed = 0;     // records that did not fit their own size, skipped
  std::uint64_t other = 0;         // record types we do not use (mmap, exit, ...)

  RecordStats& operator+=(const RecordStats& o);
};

// The sample_type bits (PERF_SAMPLE_*) the decoder understands. PERF_SAMPLE_READ may never be set
// (its layout depends on read_format). Fields after PERF_SAMPLE_STACK_USER are not read, so later
// bits may be set; with PERF_SAMPLE_REGS_USER or PERF_SAMPLE_STACK_USER, the fields before them
// that are not decoded (PERF_SAMPLE_RAW, PERF_SAMPLE_BRANCH_STACK) may not be.
bool sample_type_supported(std::uint64_t sample_type);

// Decodes one PERF_RECORD_SAMPLE body: `record` starts at its perf_event_header and is
// header.size bytes long. `max_stack` is the callchain limit the event was opened with
// (attr.sample_max_stack, else kernel.perf_event_max_stack). Returns false when the bytes do not
// hold what sample_type promises (the sample is then malformed). `regs_user_mask` is the event's
// attr.sample_regs_user: how many registers PERF_SAMPLE_REGS_USER carries (its popcount).
// out.user_stack points into `record`.
bool parse_sample(std::span<const std::uint8_t> record, std::uint64_t sample_type,
                  std::uint32_t max_stack, Sample& out, std::uint64_t regs_user_mask = 0);

// Decodes a PERF_RECORD_COMM body (attr.sample_id_all off). False when malformed.
bool parse_comm(std::span<const std::uint8_t> record, Comm& out);

struct RecordSink {
  std::function<void(const Sample&)> sample;
  std::function<void(const Comm&)> comm;  // may be empty
};

// The ring buffer's data area as mapped: `data` is data_size bytes, a power of two; positions
// (head, tail) are free-running byte counters, taken modulo data_size.
struct RingView {
  const std::uint8_t* data = nullptr;
  std::uint64_t size = 0;
};

// Decodes every record between tail and head, in order, reassembling records that wrap around the
// end of the data area in `scratch`. Returns the new tail (== head, unless a record header is
// cut short or claims a size that runs past head: then the rest is dropped, counted as one
// malformed record, and the returned tail is head anyway, so the reader never stalls).
std::uint64_t read_records(RingView ring, std::uint64_t tail, std::uint64_t head,
                           std::uint64_t sample_type, std::uint32_t max_stack,
                           std::vector<std::uint8_t>& scratch, const RecordSink& sink,
                           RecordStats& stats, std::uint64_t regs_user_mask = 0);

}  // namespace chokepoint::collect::perf
