#include "collect/perf/records.h"

#include <linux/perf_event.h>

#include <algorithm>
#include <cstring>

namespace chokepoint::collect::perf {

RecordStats& RecordStats::operator+=(const RecordStats& o) {
  samples += o.samples;
  lost += o.lost;
  lost_records += o.lost_records;
  truncated += o.truncated;
  empty_stacks += o.empty_stacks;
  throttled += o.throttled;
  malformed += o.malformed;
  other += o.other;
  return *this;
}

namespace {

// Reads fixed-width fields front to back; every read is bounds-checked, a short read sets ok=false
// and yields zeros, so a malformed record cannot make us read past its end.
class Cursor {
 public:
  explicit Cursor(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
  template <typename T>
  T read() {
    T v{};
    if (!ok_ || bytes_.size() - pos_ < sizeof(T)) {
      ok_ = false;
      return v;
    }
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  void skip(std::size_t n) {
    if (!ok_ || bytes_.size() - pos_ < n) {
      ok_ = false;
      return;
    }
    pos_ += n;
  }
  std::size_t remaining() const { return ok_ ? bytes_.size() - pos_ : 0; }
  std::span<const std::uint8_t> rest() const { return bytes_.subspan(ok_ ? pos_ : bytes_.size()); }
  bool ok() const { return ok_; }

 private:
  std::span<const std::uint8_t> bytes_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

constexpr std::uint64_t kUnsupported = PERF_SAMPLE_READ;
// Fields between the callchain and the user registers that are not decoded, so cannot be skipped.
constexpr std::uint64_t kUnsupportedBeforeUserRegs = PERF_SAMPLE_RAW | PERF_SAMPLE_BRANCH_STACK;
constexpr std::uint64_t kUserRegsOrStack = PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER;

}  // namespace

bool sample_type_supported(std::uint64_t sample_type) {
  if (sample_type & kUnsupported) return false;
  return (sample_type & kUserRegsOrStack) == 0 || (sample_type & kUnsupportedBeforeUserRegs) == 0;
}

// Layout (perf_event_open(2), PERF_RECORD_SAMPLE; include/uapi/linux/perf_event.h, unchanged in
// this prefix since Linux 3.12 added PERF_SAMPLE_IDENTIFIER), each field present only when its
// sample_type bit is set, in this order:
//   struct perf_event_header header;        // u32 type, u16 misc, u16 size
//   u64 id;            PERF_SAMPLE_IDENTIFIER
//   u64 ip;            PERF_SAMPLE_IP
//   u32 pid, tid;      PERF_SAMPLE_TID
//   u64 time;          PERF_SAMPLE_TIME
//   u64 addr;          PERF_SAMPLE_ADDR
//   u64 id;            PERF_SAMPLE_ID
//   u64 stream_id;     PERF_SAMPLE_STREAM_ID
//   u32 cpu, res;      PERF_SAMPLE_CPU
//   u64 period;        PERF_SAMPLE_PERIOD
//   read_format v;     PERF_SAMPLE_READ (not supported here)
//   u64 nr; u64 ips[nr];  PERF_SAMPLE_CALLCHAIN
//   u32 size; char data[size];  PERF_SAMPLE_RAW (not supported with the fields below)
//   u64 bnr; ...       PERF_SAMPLE_BRANCH_STACK (not supported with the fields below)
//   u64 abi; u64 regs[weight(sample_regs_user)];  PERF_SAMPLE_REGS_USER (Linux 3.7); regs are
//                      absent when abi is PERF_SAMPLE_REGS_ABI_NONE (no user context)
//   u64 size; char data[size]; u64 dyn_size;  PERF_SAMPLE_STACK_USER (Linux 3.7); dyn_size is
//                      absent when size is 0, and at most size bytes of data are valid
//   ...                (later fields are not read)
// The callchain is innermost first; PERF_CONTEXT_* markers (values >= PERF_CONTEXT_MAX) switch
// the context of the addresses that follow (kernel/user/hv/guest). The kernel stores at most
// max_stack addresses (markers excluded; kernel/events/callchain.c perf_callchain_store).
bool parse_sample(std::span<const std::uint8_t> record, std::uint64_t sample_type,
                  std::uint32_t max_stack, Sample& out, std::uint64_t regs_user_mask) {
  out = Sample{};
  if (!sample_type_supported(sample_type)) return false;
  Cursor c(record);
  c.skip(sizeof(perf_event_header));
  if (sample_type & PERF_SAMPLE_IDENTIFIER) c.skip(8);
  if (sample_type & PERF_SAMPLE_IP) out.ip = c.read<std::uint64_t>();
  if (sample_type & PERF_SAMPLE_TID) {
    out.pid = c.read<std::uint32_t>();
    out.tid = c.read<std::uint32_t>();
  }
  if (sample_type & PERF_SAMPLE_TIME) out.time_ns = c.read<std::uint64_t>();
  if (sample_type & PERF_SAMPLE_ADDR) c.skip(8);
  if (sample_type & PERF_SAMPLE_ID) c.skip(8);
  if (sample_type & PERF_SAMPLE_STREAM_ID) c.skip(8);
  if (sample_type & PERF_SAMPLE_CPU) c.skip(8);
  if (sample_type & PERF_SAMPLE_PERIOD) out.period = c.read<std::uint64_t>();
  if (sample_type & PERF_SAMPLE_CALLCHAIN) {
    std::uint64_t nr = c.read<std::uint64_t>();
    if (!c.ok() || nr > c.remaining() / 8) return false;
    // Before any marker the context is unknown; the kernel always writes one first, so treat
    // unmarked addresses as user-space (the case of a chain built without contexts).
    enum class Ctx { kKernel, kUser, kForeign } ctx = Ctx::kUser;
    std::uint64_t addresses = 0;
    for (std::uint64_t i = 0; i < nr; ++i) {
      std::uint64_t v = c.read<std::uint64_t>();
      if (v >= kContextMax) {
        if (v == kContextKernel) {
          ctx = Ctx::kKernel;
        } else if (v == kContextUser) {
          ctx = Ctx::kUser;
        } else {
          ctx = Ctx::kForeign;  // hv, guest, guest kernel, guest user
        }
        continue;
      }
      ++addresses;
      switch (ctx) {
        case Ctx::kKernel:
          out.kernel_ips.push_back(v);
          break;
        case Ctx::kUser:
          out.user_ips.push_back(v);
          break;
        case Ctx::kForeign:
          ++out.foreign_ips;
          break;
      }
    }
    out.truncated = max_stack > 0 && addresses >= max_stack;
  }
  if (sample_type & PERF_SAMPLE_REGS_USER) {
    out.regs_abi = c.read<std::uint64_t>();
    if (out.regs_abi != PERF_SAMPLE_REGS_ABI_NONE) {
      const auto n = static_cast<std::size_t>(__builtin_popcountll(regs_user_mask));
      if (!c.ok() || n > c.remaining() / 8) return false;
      out.user_regs.resize(n);
      for (auto& r : out.user_regs) r = c.read<std::uint64_t>();
    }
  }
  if (sample_type & PERF_SAMPLE_STACK_USER) {
    const std::uint64_t size = c.read<std::uint64_t>();
    if (!c.ok() || size > c.remaining()) return false;
    out.user_stack_requested_bytes = size;
    if (size > 0) {
      const auto data = c.rest().first(static_cast<std::size_t>(size));
      c.skip(static_cast<std::size_t>(size));
      const std::uint64_t dyn_size = c.read<std::uint64_t>();
      if (!c.ok() || dyn_size > size) return false;
      out.user_stack = data.first(static_cast<std::size_t>(dyn_size));
    }
  }
  return c.ok();
}

// Layout (perf_event_open(2), PERF_RECORD_COMM, attr.sample_id_all off):
//   struct perf_event_header header;   // misc & PERF_RECORD_MISC_COMM_EXEC: renamed by exec
//   u32 pid, tid;
//   char comm[];                       // NUL-terminated, padded to 8 bytes
bool parse_comm(std::span<const std::uint8_t> record, Comm& out) {
  out = Comm{};
  Cursor c(record);
  c.skip(4);
  auto misc = c.read<std::uint16_t>();
  c.skip(2);
  out.pid = c.read<std::uint32_t>();
  out.tid = c.read<std::uint32_t>();
  if (!c.ok()) return false;
  auto rest = c.rest();
  auto nul = std::find(rest.begin(), rest.end(), std::uint8_t{0});
  if (nul == rest.end()) return false;
  out.comm.assign(rest.begin(), nul);
  out.exec = (misc & PERF_RECORD_MISC_COMM_EXEC) != 0;
  return true;
}

// Layout (perf_event_open(2), "MMAP layout"): the data area is a ring of data_size bytes (a power
// of two); head and tail are byte counters that only grow. Each record starts with
// perf_event_header {u32 type; u16 misc; u16 size} and is `size` bytes including the header;
// records are 8-byte aligned but may wrap around the end of the area.
//   PERF_RECORD_LOST:     header; u64 id; u64 lost;
//   PERF_RECORD_THROTTLE: header; u64 time, id, stream_id;   (and UNTHROTTLE)
std::uint64_t read_records(RingView ring, std::uint64_t tail, std::uint64_t head,
                           std::uint64_t sample_type, std::uint32_t max_stack,
                           std::vector<std::uint8_t>& scratch, const RecordSink& sink,
                           RecordStats& stats, std::uint64_t regs_user_mask) {
  if (ring.size == 0 || (ring.size & (ring.size - 1)) != 0 || head < tail ||
      head - tail > ring.size) {
    // The positions cannot be trusted (the kernel never lets head run more than a buffer ahead
    // of the tail we wrote): drop everything rather than decode garbage.
    if (head != tail) ++stats.malformed;
    return head;
  }
  const std::uint64_t mask = ring.size - 1;
  // Copies [pos, pos+n) out of the ring into scratch, unwrapping it.
  auto copy = [&](std::uint64_t pos, std::uint64_t n) -> std::span<const std::uint8_t> {
    std::uint64_t off = pos & mask;
    if (off + n <= ring.size) return {ring.data + off, static_cast<std::size_t>(n)};
    scratch.resize(n);
    std::uint64_t first = ring.size - off;
    std::memcpy(scratch.data(), ring.data + off, first);
    std::memcpy(scratch.data() + first, ring.data, n - first);
    return {scratch.data(), static_cast<std::size_t>(n)};
  };
  Sample sample;
  Comm comm;
  while (tail < head) {
    if (head - tail < sizeof(perf_event_header)) {
      ++stats.malformed;
      return head;
    }
    perf_event_header h;
    std::memcpy(&h, copy(tail, sizeof h).data(), sizeof h);
    if (h.size < sizeof h || h.size > head - tail) {
      ++stats.malformed;
      return head;
    }
    auto record = copy(tail, h.size);
    tail += h.size;
    switch (h.type) {
      case PERF_RECORD_SAMPLE:
        if (!parse_sample(record, sample_type, max_stack, sample, regs_user_mask)) {
          ++stats.malformed;
          break;
        }
        ++stats.samples;
        if (sample.truncated) ++stats.truncated;
        if (sample.kernel_ips.empty() && sample.user_ips.empty() && sample.user_stack.empty()) {
          ++stats.empty_stacks;
        }
        if (sink.sample) sink.sample(sample);
        break;
      case PERF_RECORD_LOST: {
        Cursor c(record);
        c.skip(sizeof h + 8);
        auto lost = c.read<std::uint64_t>();
        if (!c.ok()) {
          ++stats.malformed;
          break;
        }
        stats.lost += lost;
        ++stats.lost_records;
        break;
      }
      case PERF_RECORD_COMM:
        if (!parse_comm(record, comm)) {
          ++stats.malformed;
          break;
        }
        if (sink.comm) sink.comm(comm);
        break;
      case PERF_RECORD_THROTTLE:
        ++stats.throttled;
        break;
      default:
        ++stats.other;
        break;
    }
  }
  return tail;
}

}  // namespace chokepoint::collect::perf
