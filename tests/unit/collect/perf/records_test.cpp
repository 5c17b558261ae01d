// The ring-buffer decoder on crafted bytes: records laid out as perf_event_open(2) describes,
// wrapped around the end of the data area, cut short, and lying about their sizes.
#include "collect/perf/records.h"

#include <gtest/gtest.h>
#include <linux/perf_event.h>

#include <cstring>
#include <string>
#include <vector>

namespace chokepoint::collect::perf {
namespace {

constexpr std::uint64_t kType = PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME |
                                PERF_SAMPLE_PERIOD | PERF_SAMPLE_CALLCHAIN;

// Builds one record: header, then the appended fields; size is patched in bytes().
class RecordBuilder {
 public:
  RecordBuilder(std::uint32_t type, std::uint16_t misc = 0) {
    perf_event_header h{type, misc, 0};
    put(h);
  }
  template <typename T>
  RecordBuilder& put(const T& v) {
    // resize + memcpy rather than insert: g++ 12 warns (stringop-overflow) on the insert.
    const std::size_t at = bytes_.size();
    bytes_.resize(at + sizeof v);
    std::memcpy(bytes_.data() + at, &v, sizeof v);
    return *this;
  }
  RecordBuilder& u32(std::uint32_t v) { return put(v); }
  RecordBuilder& u64(std::uint64_t v) { return put(v); }
  RecordBuilder& text(const std::string& s) {
    for (char ch : s) bytes_.push_back(static_cast<std::uint8_t>(ch));
    bytes_.push_back(0);
    while (bytes_.size() % 8) bytes_.push_back(0);
    return *this;
  }
  std::vector<std::uint8_t> bytes() const {
    auto b = bytes_;
    auto size = static_cast<std::uint16_t>(b.size());
    std::memcpy(b.data() + 6, &size, 2);
    return b;
  }

 private:
  std::vector<std::uint8_t> bytes_;
};

std::vector<std::uint8_t> sample(std::uint32_t pid, std::uint32_t tid,
                                 const std::vector<std::uint64_t>& chain) {
  RecordBuilder r(PERF_RECORD_SAMPLE);
  r.u64(chain.empty() ? 0 : chain.back()).u32(pid).u32(tid).u64(123456789).u64(10101010);
  r.u64(chain.size());
  for (auto v : chain) r.u64(v);
  return r.bytes();
}

struct Collected {
  std::vector<Sample> samples;
  std::vector<Comm> comms;
  RecordStats stats;
  std::uint64_t tail = 0;
};

// Lays `records` into a ring of `size` bytes starting at position `start` (so they may wrap) and
// decodes them.
Collected decode(const std::vector<std::vector<std::uint8_t>>& records, std::uint64_t size,
                 std::uint64_t start, std::uint32_t max_stack = 127) {
  std::vector<std::uint8_t> ring(size, 0xee);
  std::uint64_t pos = start;
  for (const auto& r : records) {
    for (auto b : r) ring[pos++ % size] = b;
  }
  Collected c;
  RecordSink sink;
  sink.sample = [&](const Sample& s) { c.samples.push_back(s); };
  sink.comm = [&](const Comm& m) { c.comms.push_back(m); };
  std::vector<std::uint8_t> scratch;
  c.tail = read_records(RingView{ring.data(), size}, start, pos, kType, max_stack, scratch, sink,
                        c.stats);
  return c;
}

TEST(ParseSample, SplitsTheChainAtItsContextMarkers) {
  auto c = decode({sample(10, 11,
                          {kContextKernel, 0xffffffff81000010, 0xffffffff81000020, kContextUser,
                           0x401000, 0x402000, 0x403000})},
                  4096, 0);
  ASSERT_EQ(c.samples.size(), 1u);
  const Sample& s = c.samples[0];
  EXPECT_EQ(s.pid, 10u);
  EXPECT_EQ(s.tid, 11u);
  EXPECT_EQ(s.time_ns, 123456789u);
  EXPECT_EQ(s.period, 10101010u);
  EXPECT_EQ(s.kernel_ips, (std::vector<std::uint64_t>{0xffffffff81000010, 0xffffffff81000020}));
  EXPECT_EQ(s.user_ips, (std::vector<std::uint64_t>{0x401000, 0x402000, 0x403000}));
  EXPECT_FALSE(s.truncated);
  EXPECT_EQ(c.stats.samples, 1u);
  EXPECT_EQ(c.stats.malformed, 0u);
}

TEST(ParseSample, DropsGuestAndHypervisorFrames) {
  auto c = decode({sample(1, 1, {kContextHv, 0x10, kContextGuestKernel, 0x20, kContextUser, 0x30})},
                  4096, 0);
  ASSERT_EQ(c.samples.size(), 1u);
  EXPECT_TRUE(c.samples[0].kernel_ips.empty());
  EXPECT_EQ(c.samples[0].user_ips, (std::vector<std::uint64_t>{0x30}));
  EXPECT_EQ(c.samples[0].foreign_ips, 2u);
}

TEST(ParseSample, ChainAtMaxStackIsTruncated) {
  std::vector<std::uint64_t> chain = {kContextKernel, 1, 2, kContextUser, 3, 4};
  auto at_limit = decode({sample(1, 1, chain)}, 4096, 0, /*max_stack=*/4);
  ASSERT_EQ(at_limit.samples.size(), 1u);
  EXPECT_TRUE(at_limit.samples[0].truncated);  // 4 addresses; markers do not count
  EXPECT_EQ(at_limit.stats.truncated, 1u);
  auto below = decode({sample(1, 1, chain)}, 4096, 0, /*max_stack=*/5);
  EXPECT_FALSE(below.samples[0].truncated);
  EXPECT_EQ(below.stats.truncated, 0u);
}

TEST(ParseSample, EmptyChainIsCountedNotDropped) {
  auto c = decode({sample(1, 2, {})}, 4096, 0);
  ASSERT_EQ(c.samples.size(), 1u);
  EXPECT_EQ(c.stats.empty_stacks, 1u);
}

TEST(ParseSample, ChainLongerThanTheRecordIsMalformed) {
  auto bytes = sample(1, 1, {kContextUser, 0x1});
  // nr sits after ip, pid/tid, time, period: header(8) + 8 + 8 + 8 + 8 = 40.
  std::uint64_t nr = 1000;
  std::memcpy(bytes.data() + 40, &nr, 8);
  auto c = decode({bytes}, 4096, 0);
  EXPECT_TRUE(c.samples.empty());
  EXPECT_EQ(c.stats.malformed, 1u);
  EXPECT_EQ(c.tail, bytes.size());  // the reader moves on
}

TEST(ParseSample, ReadFormatIsRefused) {
  Sample s;
  auto bytes = sample(1, 1, {});
  EXPECT_FALSE(parse_sample(bytes, kType | PERF_SAMPLE_READ, 127, s));
  EXPECT_FALSE(sample_type_supported(PERF_SAMPLE_READ));
}

TEST(ParseSample, OptionalFieldsShiftTheLayout) {
  // IDENTIFIER, ID, STREAM_ID and CPU are skipped in their documented places.
  const std::uint64_t type = PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_IP | PERF_SAMPLE_TID |
                             PERF_SAMPLE_ID | PERF_SAMPLE_CPU | PERF_SAMPLE_CALLCHAIN;
  RecordBuilder r(PERF_RECORD_SAMPLE);
  r.u64(77)
      .u64(0x401234)
      .u32(5)
      .u32(6)
      .u64(88)
      .u32(1)
      .u32(0)
      .u64(2)
      .u64(kContextUser)
      .u64(0x401234);
  Sample s;
  ASSERT_TRUE(parse_sample(r.bytes(), type, 127, s));
  EXPECT_EQ(s.ip, 0x401234u);
  EXPECT_EQ(s.pid, 5u);
  EXPECT_EQ(s.tid, 6u);
  EXPECT_EQ(s.user_ips, (std::vector<std::uint64_t>{0x401234}));
}

TEST(ReadRecords, CountsLostRecords) {
  auto lost = RecordBuilder(PERF_RECORD_LOST).u64(1).u64(42).bytes();
  auto lost2 = RecordBuilder(PERF_RECORD_LOST).u64(1).u64(8).bytes();
  auto c = decode({sample(1, 1, {kContextUser, 1}), lost, lost2}, 4096, 0);
  EXPECT_EQ(c.stats.lost, 50u);
  EXPECT_EQ(c.stats.lost_records, 2u);
  EXPECT_EQ(c.stats.samples, 1u);
}

TEST(ReadRecords, DecodesComm) {
  auto comm = RecordBuilder(PERF_RECORD_COMM, PERF_RECORD_MISC_COMM_EXEC)
                  .u32(7)
                  .u32(9)
                  .text("lab-loop-0")
                  .bytes();
  auto c = decode({comm}, 4096, 0);
  ASSERT_EQ(c.comms.size(), 1u);
  EXPECT_EQ(c.comms[0].pid, 7u);
  EXPECT_EQ(c.comms[0].tid, 9u);
  EXPECT_EQ(c.comms[0].comm, "lab-loop-0");
  EXPECT_TRUE(c.comms[0].exec);
}

TEST(ReadRecords, CountsThrottleAndSkipsUnknownTypes) {
  auto throttle = RecordBuilder(PERF_RECORD_THROTTLE).u64(1).u64(2).u64(3).bytes();
  auto mmap = RecordBuilder(PERF_RECORD_MMAP).u64(1).u64(2).bytes();
  auto c = decode({throttle, mmap, sample(3, 3, {kContextUser, 5})}, 4096, 0);
  EXPECT_EQ(c.stats.throttled, 1u);
  EXPECT_EQ(c.stats.other, 1u);
  EXPECT_EQ(c.samples.size(), 1u);
}

TEST(ReadRecords, ReassemblesRecordsThatWrapAroundTheEnd) {
  auto a = sample(1, 1, {kContextKernel, 0xa1, kContextUser, 0xa2, 0xa3});
  auto b = sample(2, 2, {kContextUser, 0xb1, 0xb2, 0xb3, 0xb4});
  // Start 24 bytes before the end of a 256-byte ring: `a` wraps in the middle of its fields
  // (and its header is whole), `b` lies entirely past the wrap.
  for (std::uint64_t start : {256u - 24u, 256u - 4u, 256u - 8u, 1000u * 256u - 40u}) {
    auto c = decode({a, b}, 256, start);
    ASSERT_EQ(c.samples.size(), 2u) << "start " << start;
    EXPECT_EQ(c.samples[0].user_ips, (std::vector<std::uint64_t>{0xa2, 0xa3}));
    EXPECT_EQ(c.samples[0].kernel_ips, (std::vector<std::uint64_t>{0xa1}));
    EXPECT_EQ(c.samples[1].user_ips, (std::vector<std::uint64_t>{0xb1, 0xb2, 0xb3, 0xb4}));
    EXPECT_EQ(c.stats.malformed, 0u);
    EXPECT_EQ(c.tail, start + a.size() + b.size());
  }
}

TEST(ReadRecords, SizeRunningPastHeadDropsTheRestWithoutStalling) {
  auto a = sample(1, 1, {kContextUser, 1});
  auto cut = sample(2, 2, {kContextUser, 2});
  cut.resize(cut.size() - 8);  // the header still claims the full size
  auto c = decode({a, cut}, 4096, 0);
  EXPECT_EQ(c.samples.size(), 1u);
  EXPECT_EQ(c.stats.malformed, 1u);
  EXPECT_EQ(c.tail, a.size() + cut.size());
}

TEST(ReadRecords, ZeroSizedHeaderDoesNotLoop) {
  std::vector<std::uint8_t> zero(16, 0);
  zero[0] = PERF_RECORD_SAMPLE;
  auto c = decode({zero}, 4096, 0);
  EXPECT_EQ(c.stats.malformed, 1u);
  EXPECT_EQ(c.tail, 16u);
}

TEST(ReadRecords, HeadMoreThanARingAheadIsRejected) {
  std::vector<std::uint8_t> ring(256, 0);
  RecordStats stats;
  std::vector<std::uint8_t> scratch;
  EXPECT_EQ(read_records(RingView{ring.data(), 256}, 0, 1024, kType, 127, scratch, {}, stats),
            1024u);
  EXPECT_EQ(stats.malformed, 1u);
  // A size that is not a power of two is rejected the same way.
  EXPECT_EQ(read_records(RingView{ring.data(), 200}, 0, 8, kType, 127, scratch, {}, stats), 8u);
  EXPECT_EQ(stats.malformed, 2u);
}

TEST(ParseComm, UnterminatedNameIsMalformed) {
  RecordBuilder r(PERF_RECORD_COMM);
  r.u32(1).u32(1).u64(0x4141414141414141ULL);
  Comm c;
  EXPECT_FALSE(parse_comm(r.bytes(), c));
}

}  // namespace
}  // namespace chokepoint::collect::perf
