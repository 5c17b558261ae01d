// PERF_SAMPLE_REGS_USER and PERF_SAMPLE_STACK_USER (DWARF mode): the registers and the stack copy
// decoded from crafted records, bounds-checked, and across the end of the ring.
#include <gtest/gtest.h>
#include <linux/perf_event.h>

#include <cstring>
#include <numeric>
#include <vector>

#include "collect/perf/perf_sampler.h"
#include "collect/perf/records.h"

namespace chokepoint::collect::perf {
namespace {

constexpr std::uint64_t kType = PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME |
                                PERF_SAMPLE_PERIOD | PERF_SAMPLE_CALLCHAIN | PERF_SAMPLE_REGS_USER |
                                PERF_SAMPLE_STACK_USER;
constexpr std::uint64_t kMask = 0x1ffull | (0xffull << 16);  // 17 registers

void put(std::vector<std::uint8_t>& b, std::uint64_t v) {
  const std::size_t at = b.size();
  b.resize(at + 8);
  std::memcpy(b.data() + at, &v, 8);
}

// A DWARF-mode sample: a kernel-only callchain, `nregs` registers valued 100 + i (abi 2), a copy
// of `stack_size` bytes of which `dyn_size` are valid (bytes valued by position).
std::vector<std::uint8_t> dwarf_sample(std::uint64_t abi, std::size_t nregs,
                                       std::uint64_t stack_size, std::uint64_t dyn_size) {
  std::vector<std::uint8_t> b(8, 0);
  put(b, 0x401000);                                   // ip
  put(b, std::uint64_t{7} | std::uint64_t{8} << 32);  // pid 7, tid 8
  put(b, 123);                                        // time
  put(b, 10101);                                      // period
  put(b, 2);                                          // callchain: nr
  put(b, kContextKernel);
  put(b, 0xffffffff81000010);
  put(b, abi);
  if (abi != 0) {
    for (std::size_t i = 0; i < nregs; ++i) put(b, 100 + i);
  }
  put(b, stack_size);
  for (std::uint64_t i = 0; i < stack_size; ++i) b.push_back(static_cast<std::uint8_t>(i));
  if (stack_size > 0) put(b, dyn_size);
  perf_event_header h{PERF_RECORD_SAMPLE, 0, static_cast<std::uint16_t>(b.size())};
  std::memcpy(b.data(), &h, sizeof h);
  return b;
}

TEST(ParseSampleDwarf, DecodesRegistersAndTheValidPartOfTheStack) {
  auto bytes = dwarf_sample(PERF_SAMPLE_REGS_ABI_64, 17, 64, 40);
  Sample s;
  ASSERT_TRUE(parse_sample(bytes, kType, 127, s, kMask));
  EXPECT_EQ(s.kernel_ips, (std::vector<std::uint64_t>{0xffffffff81000010}));
  EXPECT_TRUE(s.user_ips.empty());
  EXPECT_EQ(s.regs_abi, std::uint64_t{PERF_SAMPLE_REGS_ABI_64});
  ASSERT_EQ(s.user_regs.size(), 17u);
  EXPECT_EQ(s.user_regs.front(), 100u);
  EXPECT_EQ(s.user_regs.back(), 116u);
  EXPECT_EQ(s.user_stack_requested_bytes, 64u);
  ASSERT_EQ(s.user_stack.size(), 40u);  // dyn_size, not size
  EXPECT_EQ(s.user_stack[0], 0);
  EXPECT_EQ(s.user_stack[39], 39);
}

TEST(ParseSampleDwarf, NoUserContextHasNoRegistersAndMayHaveNoStack) {
  // A kernel thread: abi NONE carries no register values; a size-0 stack carries no dyn_size.
  auto bytes = dwarf_sample(PERF_SAMPLE_REGS_ABI_NONE, 0, 0, 0);
  Sample s;
  ASSERT_TRUE(parse_sample(bytes, kType, 127, s, kMask));
  EXPECT_EQ(s.regs_abi, 0u);
  EXPECT_TRUE(s.user_regs.empty());
  EXPECT_TRUE(s.user_stack.empty());
}

TEST(ParseSampleDwarf, LiesAboutSizesAreMalformed) {
  Sample s;
  // dyn_size above size.
  EXPECT_FALSE(parse_sample(dwarf_sample(2, 17, 16, 24), kType, 127, s, kMask));
  // Fewer registers than the mask promises: the stack size is read from register bytes, and the
  // record ends before what it claims.
  EXPECT_FALSE(parse_sample(dwarf_sample(2, 3, 16, 16), kType, 127, s, kMask));
  // Cut short anywhere: never read past the end.
  auto full = dwarf_sample(2, 17, 64, 64);
  for (std::size_t n = 8; n < full.size(); n += 8) {
    std::vector<std::uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_FALSE(parse_sample(cut, kType, 127, s, kMask)) << n;
  }
  // A stack size near 2^64 does not wrap the bounds check.
  auto huge = dwarf_sample(2, 17, 0, 0);
  std::uint64_t big = ~std::uint64_t{0} - 4;
  std::memcpy(huge.data() + huge.size() - 8, &big, 8);
  EXPECT_FALSE(parse_sample(huge, kType, 127, s, kMask));
}

TEST(ParseSampleDwarf, RawOrBranchStackBeforeTheRegistersIsRefused) {
  EXPECT_TRUE(sample_type_supported(kType));
  EXPECT_FALSE(sample_type_supported(kType | PERF_SAMPLE_RAW));
  EXPECT_FALSE(sample_type_supported(kType | PERF_SAMPLE_BRANCH_STACK));
  // Without the user fields, those later bits are as before: not read, allowed.
  EXPECT_TRUE(sample_type_supported(PERF_SAMPLE_IP | PERF_SAMPLE_RAW));
}

TEST(ReadRecordsDwarf, AStackCopyThatWrapsTheRingIsReassembled) {
  auto rec = dwarf_sample(2, 17, 256, 256);
  const std::uint64_t size = 1024;
  std::vector<std::uint8_t> ring(size, 0xee);
  const std::uint64_t start = size - 200;  // the record runs past the end of the ring
  for (std::size_t i = 0; i < rec.size(); ++i) ring[(start + i) % size] = rec[i];
  std::vector<std::uint8_t> scratch;
  RecordStats stats;
  std::vector<std::uint8_t> seen;
  RecordSink sink;
  sink.sample = [&](const Sample& s) { seen.assign(s.user_stack.begin(), s.user_stack.end()); };
  auto tail = read_records(RingView{ring.data(), size}, start, start + rec.size(), kType, 127,
                           scratch, sink, stats, kMask);
  EXPECT_EQ(tail, start + rec.size());
  EXPECT_EQ(stats.samples, 1u);
  EXPECT_EQ(stats.malformed, 0u);
  EXPECT_EQ(stats.empty_stacks, 0u);  // a user stack copy is a stack, even with no user ips
  std::vector<std::uint8_t> want(256);
  std::iota(want.begin(), want.end(), 0);
  EXPECT_EQ(seen, want);
}

TEST(UserStackBytes, PerfsLimitsAreChecked) {
  EXPECT_TRUE(check_user_stack_bytes(kDefaultUserStackBytes));
  EXPECT_TRUE(check_user_stack_bytes(8));
  EXPECT_TRUE(check_user_stack_bytes(kMaxUserStackBytes));
  for (std::uint64_t bad : {0ull, 4ull, 100ull, 65536ull, 1ull << 40}) {
    auto r = check_user_stack_bytes(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().errno_value, EINVAL);
    EXPECT_FALSE(r.error().hint.empty());
  }
}

TEST(UserStackBytes, TheRingGrowsForBigSamples) {
  const std::int64_t drain = 50'000'000;
  EXPECT_EQ(ring_pages_for(99, drain, 4096, 0), 16u);
  // 99 Hz: ~5 samples per 50 ms drain interval; four intervals of 8 KiB copies take 176 KB
  // (64 pages), of 64 KiB copies 1.3 MB (512 pages).
  EXPECT_EQ(ring_pages_for(99, drain, 4096, kDefaultUserStackBytes), 64u);
  EXPECT_EQ(ring_pages_for(99, drain, 4096, kMaxUserStackBytes), 512u);
  EXPECT_GE(ring_pages_for(997, drain, 4096, kDefaultUserStackBytes),
            ring_pages_for(997, drain, 4096, 0));
}

}  // namespace
}  // namespace chokepoint::collect::perf
