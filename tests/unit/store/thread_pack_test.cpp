#include "store/thread_pack.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <tuple>

namespace chokepoint::store {
namespace {

bool same(const PackedThread& a, const PackedThread& b) {
  const auto wait_eq = [](const std::optional<WaitRow>& x, const std::optional<WaitRow>& y) {
    if (x.has_value() != y.has_value()) return false;
    if (!x) return true;
    return x->state == y->state && x->site == y->site && x->syscall_nr == y->syscall_nr &&
           x->args == y->args && x->fd_role == y->fd_role && x->fd_detail == y->fd_detail &&
           x->net_wait == y->net_wait && x->futex_caller == y->futex_caller;
  };
  return a.thread == b.thread && a.prev_poll_ago_ns == b.prev_poll_ago_ns &&
         a.has_stat == b.has_stat && a.run_ns == b.run_ns && a.run_delay_ns == b.run_delay_ns &&
         a.utime_ns == b.utime_ns && a.stime_ns == b.stime_ns && a.majflt == b.majflt &&
         a.blkio_ns == b.blkio_ns && wait_eq(a.wait, b.wait);
}

std::vector<PackedThread> rows() {
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  std::vector<PackedThread> v;
  PackedThread quiet;  // the common row: ran a little, same wait
  quiet.thread = 7;
  quiet.has_stat = true;
  quiet.run_ns = 1'250'000;
  quiet.run_delay_ns = 30'000;
  quiet.utime_ns = 10'000'000;
  v.push_back(quiet);
  PackedThread wrapped;  // a counter that went back: a modular delta near 2^64
  wrapped.thread = 3;    // thread ids out of order
  wrapped.prev_poll_ago_ns = 250'000'000;
  wrapped.has_stat = true;
  wrapped.run_ns = kMax;
  wrapped.run_delay_ns = kMax - 5;
  wrapped.utime_ns = std::uint64_t{1} << 63;
  wrapped.stime_ns = 1;
  wrapped.majflt = 42;
  wrapped.blkio_ns = kMax / 3;
  WaitRow w;
  w.state = 'S';
  w.site = kSiteInSyscall;
  w.syscall_nr = 202;
  w.args = {0x7f12'3456'7890, 128, 0, kMax, 1, std::uint64_t{1} << 63};
  w.fd_role = 4;
  w.fd_detail = 17;
  w.net_wait = 3;
  w.futex_caller = 99;
  wrapped.wait = w;
  v.push_back(wrapped);
  PackedThread vanished;  // gone before its stat was read
  vanished.thread = std::numeric_limits<std::int64_t>::max();
  vanished.run_ns = 5;
  v.push_back(vanished);
  PackedThread outside;  // a new wait outside a syscall, hostile values
  outside.thread = -1;
  outside.prev_poll_ago_ns = std::numeric_limits<std::int64_t>::min();
  outside.has_stat = true;
  WaitRow d;
  d.state = 'D';
  d.site = 2;
  d.fd_role = -9;
  d.net_wait = std::numeric_limits<std::int64_t>::min();
  outside.wait = d;
  v.push_back(outside);
  return v;
}

TEST(ThreadPack, RoundTripsEveryValueExactly) {
  ThreadPacker p;
  for (const auto& r : rows()) p.add(r);
  EXPECT_EQ(p.count(), rows().size());
  auto back = unpack_threads(p.bytes());
  ASSERT_TRUE(back);
  ASSERT_EQ(back->size(), rows().size());
  for (std::size_t i = 0; i < back->size(); ++i) EXPECT_TRUE(same((*back)[i], rows()[i])) << i;
  p.clear();
  EXPECT_TRUE(p.bytes().empty());
  auto none = unpack_threads(p.bytes());
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST(ThreadPack, AThreadThatRanCostsAFewBytes) {
  ThreadPacker p;
  PackedThread r = rows()[0];
  for (int i = 0; i < 1000; ++i) {
    r.thread = i + 1;
    p.add(r);
  }
  // thread +1, flags, run, run delay, utime, stime, majflt, blkio: 1+1+4+3+4+1+1+1 bytes.
  EXPECT_EQ(p.bytes().size(), 16'000u);
}

TEST(ThreadPack, CutOrMalformedBlobsAreRefusedNeverOverread) {
  ThreadPacker p;
  for (const auto& r : rows()) p.add(r);
  const std::string full = p.bytes();
  std::size_t refused = 0;
  for (std::size_t len = 0; len < full.size(); ++len) {
    // A copy of exactly len bytes: a read past it would be caught by ASan.
    const std::string cut = full.substr(0, len);
    auto back = unpack_threads(cut);
    if (!back) {
      ++refused;
    } else {
      EXPECT_LT(back->size(), rows().size()) << len;  // cut at a row boundary: fewer rows
    }
  }
  EXPECT_GE(refused, full.size() - rows().size());
  EXPECT_FALSE(unpack_threads(std::string(11, '\xff')));             // a varint over 64 bits
  EXPECT_FALSE(unpack_threads(std::string("\x02\x08\x00\x00", 4)));  // an unknown flag
  EXPECT_FALSE(unpack_threads(std::string("\x02\x04\x00\x00", 4)));  // a wait without stat
  EXPECT_FALSE(unpack_threads(std::string("\x02\x20\x00\x00", 4)));  // an unknown flag
  // Schema 4's utime-or-stime bits: without stat, or both at once.
  EXPECT_FALSE(unpack_threads(std::string("\x02\x10\x00\x00", 4)));
  EXPECT_FALSE(unpack_threads(std::string("\x02\x19\x00\x00\x00\x00\x00", 7)));
}

// Schema 4: when utime and stime split the run time exactly (the sampler's split of schedstat's
// run time), a row gives the smaller of the two and the reader derives the other, exactly, even
// for modular deltas.
TEST(ThreadPack, UtimeAndStimeThatSplitTheRunTimeCostOneValue) {
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  std::vector<PackedThread> split;
  for (auto [run, utime] : std::initializer_list<std::pair<std::uint64_t, std::uint64_t>>{
           {450'000, 450'000}, {450'000, 0}, {443'562, 63'366}, {5, kMax}, {kMax, 7}}) {
    PackedThread r = rows()[0];
    r.run_ns = run;
    r.utime_ns = utime;
    r.stime_ns = run - utime;  // modular
    split.push_back(r);
  }
  ThreadPacker p;
  for (const auto& r : split) p.add(r);
  auto back = unpack_threads(p.bytes());
  ASSERT_TRUE(back);
  ASSERT_EQ(back->size(), split.size());
  for (std::size_t i = 0; i < split.size(); ++i) EXPECT_TRUE(same((*back)[i], split[i])) << i;
  // A thread all in user time: thread +1, flags, run, run delay, stime 0, majflt, blkio.
  ThreadPacker one;
  one.add(split[0]);
  EXPECT_EQ(one.bytes().size(), 1u + 1 + 3 + 3 + 1 + 1 + 1);
}

TEST(ThreadPack, ExactSumsRoundTripAndHostileOnesAreClamped) {
  std::vector<model::ExactWait> waits;
  for (int tid = 10; tid < 13; ++tid) {
    for (int k = 0; k < 3; ++k) {
      model::ExactWait w;
      w.pid = 10;
      w.tid = tid;
      w.kind = static_cast<model::ExactKind>(k);
      w.syscall_nr = k == 2 ? -1 : 230;
      w.object = k == 1 ? 0x7f00'0000'1234 : 0;
      w.ns = 3'000'000'000ull * static_cast<unsigned>(tid);
      w.count = std::numeric_limits<std::uint64_t>::max() - static_cast<unsigned>(k);
      w.start_time_ticks = 1'000'000u + static_cast<unsigned>(tid);
      waits.push_back(w);
    }
  }
  const std::string blob = pack_exact_waits(waits);
  auto back = unpack_exact_waits(blob);
  ASSERT_TRUE(back);
  ASSERT_EQ(back->size(), waits.size());
  for (std::size_t i = 0; i < waits.size(); ++i) {
    const auto& a = (*back)[i];
    const auto& b = waits[i];
    EXPECT_TRUE(a.pid == b.pid && a.tid == b.tid && a.kind == b.kind &&
                a.syscall_nr == b.syscall_nr && a.object == b.object && a.ns == b.ns &&
                a.count == b.count && a.start_time_ticks == b.start_time_ticks)
        << i;
  }
  for (std::size_t len = 0; len < blob.size(); ++len) {
    const std::string cut = blob.substr(0, len);
    auto part = unpack_exact_waits(cut);
    if (part) {
      EXPECT_LT(part->size(), waits.size()) << len;
    }
  }
  // pid -5, tid 2^40, kind 200, syscall 10^9: clamped, not trusted.
  const std::string hostile(
      "\x09\x80\x80\x80\x80\x80\x40\xc8\x01\x80\xa8\xd6\xb9\x07\x00\x00\x00\x00", 18);
  auto clamped = unpack_exact_waits(hostile);
  ASSERT_TRUE(clamped);
  ASSERT_EQ(clamped->size(), 1u);
  EXPECT_EQ((*clamped)[0].pid, 0);
  EXPECT_EQ((*clamped)[0].tid, 1 << 30);
  EXPECT_EQ(static_cast<std::size_t>((*clamped)[0].kind), model::kExactKindCount - 1);
  EXPECT_EQ((*clamped)[0].syscall_nr, 1 << 16);
}

std::vector<model::WakeEdge> some_edges(std::uint64_t scale) {
  std::vector<model::WakeEdge> edges;
  for (int wakee = 20; wakee < 24; ++wakee) {
    for (int k = 0; k < 3; ++k) {
      model::WakeEdge e;
      e.waker_pid = k == 2 ? 0 : 10 + k;
      e.waker_tid = k == 2 ? 0 : 30 - wakee;  // differences of both signs
      e.waker_kind = static_cast<model::WakerKind>(k);
      e.wakee_pid = 10;
      e.wakee_tid = wakee;
      e.syscall_nr = k == 1 ? -1 : 202;
      e.object = k == 0 ? 0x7f00'0000'1234 : static_cast<std::uint64_t>(k);
      e.ns = scale * 3'000'000'000ull * static_cast<unsigned>(wakee);
      e.count = std::numeric_limits<std::uint64_t>::max() - scale * static_cast<unsigned>(k);
      edges.push_back(e);
    }
  }
  return edges;
}

bool same(const model::WakeEdge& a, const model::WakeEdge& b) {
  return a.waker_pid == b.waker_pid && a.waker_tid == b.waker_tid && a.waker_kind == b.waker_kind &&
         a.wakee_pid == b.wakee_pid && a.wakee_tid == b.wakee_tid && a.syscall_nr == b.syscall_nr &&
         a.object == b.object && a.ns == b.ns && a.count == b.count;
}

// Schema 3: a tick's edges refer to those met before, back to the last restart; a second tick
// with changed values, an entry in another order and a new one decodes to the same rows, and
// costs a few bytes an entry.
TEST(ThreadPack, DeltaPackedEdgesRoundTripAcrossTicks) {
  DeltaPacker<model::WakeEdge> packer;
  DeltaUnpacker<model::WakeEdge> unpacker;
  const auto first = some_edges(1);
  auto second = some_edges(2);
  std::swap(second[0], second[5]);
  model::WakeEdge added = second[3];
  added.object = 99;
  second.push_back(added);
  const std::string b1 = packer.pack(first, true);
  const std::string b2 = packer.pack(second, false);
  EXPECT_LT(b2.size(), b1.size() / 2);
  for (const auto& [blob, rows] : {std::pair{b1, first}, std::pair{b2, second}}) {
    auto back = unpacker.unpack(blob);
    ASSERT_TRUE(back);
    ASSERT_EQ(back->size(), rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) EXPECT_TRUE(same((*back)[i], rows[i])) << i;
  }
  // The second tick alone refers to entries its reader never met: refused.
  EXPECT_FALSE(DeltaUnpacker<model::WakeEdge>().unpack(b2));
  // A restart forgets: after forget the packer starts again, and a fresh reader reads it.
  packer.forget();
  const std::string b3 = packer.pack(second, false);
  auto again = DeltaUnpacker<model::WakeEdge>().unpack(b3);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->size(), second.size());
  // Cut anywhere: refused, or fewer rows.
  for (std::size_t len = 0; len < b1.size(); ++len) {
    auto part = DeltaUnpacker<model::WakeEdge>().unpack(b1.substr(0, len));
    if (part) {
      EXPECT_LT(part->size(), first.size()) << len;
    }
  }
  EXPECT_FALSE(DeltaUnpacker<model::WakeEdge>().unpack(std::string("\x02", 1)));  // a flag
  EXPECT_FALSE(DeltaUnpacker<model::WakeEdge>().unpack(std::string(11, '\xff')));
  // restart, a new edge: waker pid -5, waker tid 2^40, kind 200, wakee pid 1, tid 2, syscall
  // 10^9: clamped, not trusted.
  const std::string hostile(
      "\x01\x00\x09\x80\x80\x80\x80\x80\x40\xc8\x01\x02\x04\x80\xa8\xd6\xb9\x07\x00\x00\x00", 21);
  auto clamped = DeltaUnpacker<model::WakeEdge>().unpack(hostile);
  ASSERT_TRUE(clamped);
  ASSERT_EQ(clamped->size(), 1u);
  EXPECT_EQ((*clamped)[0].waker_pid, 0);
  EXPECT_EQ((*clamped)[0].waker_tid, 1 << 30);
  EXPECT_EQ(static_cast<std::size_t>((*clamped)[0].waker_kind), model::kWakerKindCount - 1);
  EXPECT_EQ((*clamped)[0].wakee_pid, 1);
  EXPECT_EQ((*clamped)[0].wakee_tid, 2);
  EXPECT_EQ((*clamped)[0].syscall_nr, 1 << 16);
}

// The packer keeps every entry's latest value for the keyframes: pack_all writes them all, the
// tick's changes merged in, in key order, restarted, so that a fresh reader reads the keyframe
// alone; drop_if forgets the entries of threads that ended (a key met again is written whole).
// 3,000 edges (a real 1,000-thread target has thousands) outgrow the table's first slots many
// times over, and every value still decodes exactly.
TEST(ThreadPack, DeltaPackerKeepsTheLatestOfEveryEntryForKeyframes) {
  std::vector<model::WakeEdge> all;
  const auto first = some_edges(1);
  for (int wakee = 0; wakee < 1000; ++wakee) {
    for (int k = 0; k < 3; ++k) {
      model::WakeEdge e = first[static_cast<std::size_t>(k)];
      e.waker_tid = 7 * wakee % 1013;  // wakers and wakees in no order
      e.wakee_tid = 1000 + wakee;
      e.ns += static_cast<std::uint64_t>(wakee);
      all.push_back(e);
    }
  }
  DeltaPacker<model::WakeEdge> packer;
  DeltaUnpacker<model::WakeEdge> unpacker;
  auto shuffled = all;
  std::reverse(shuffled.begin(), shuffled.end());  // the kernel's order, not the keys'
  ASSERT_TRUE(unpacker.unpack(packer.pack(shuffled, true)));
  EXPECT_EQ(packer.size(), 3000u);
  // A tick where every tenth edge grew.
  std::vector<model::WakeEdge> changed;
  for (std::size_t i = 0; i < all.size(); i += 10) {
    all[i].ns += 1'000'000 + i;
    all[i].count += 2;
    changed.push_back(all[i]);
  }
  DeltaPacker<model::WakeEdge>::sort_for_packing(changed);
  auto back = unpacker.unpack(packer.pack(changed, false));
  ASSERT_TRUE(back);
  ASSERT_EQ(back->size(), changed.size());
  for (std::size_t i = 0; i < changed.size(); ++i) EXPECT_TRUE(same((*back)[i], changed[i])) << i;
  // The keyframe: one more change, then every entry at its latest, sorted, readable alone.
  all[7].ns += 5;
  const std::string keyframe = packer.pack_all({all[7]});
  auto whole = DeltaUnpacker<model::WakeEdge>().unpack(keyframe);
  ASSERT_TRUE(whole);
  auto sorted = all;
  DeltaPacker<model::WakeEdge>::sort_for_packing(sorted);
  ASSERT_EQ(whole->size(), sorted.size());
  for (std::size_t i = 0; i < sorted.size(); ++i) EXPECT_TRUE(same((*whole)[i], sorted[i])) << i;
  EXPECT_TRUE(std::is_sorted(whole->begin(), whole->end(), [](const auto& a, const auto& b) {
    return std::tie(a.waker_pid, a.waker_tid, a.waker_kind, a.wakee_pid, a.wakee_tid, a.syscall_nr,
                    a.object) < std::tie(b.waker_pid, b.waker_tid, b.waker_kind, b.wakee_pid,
                                         b.wakee_tid, b.syscall_nr, b.object);
  }));
  // Thread 1,000's edges dropped: gone from the next keyframe; met again, written whole.
  const auto of_1000 = [](const model::WakeEdge& e) { return e.wakee_tid == 1000; };
  const auto n_1000 = static_cast<std::size_t>(std::count_if(all.begin(), all.end(), of_1000));
  ASSERT_GT(n_1000, 0u);
  packer.drop_if(of_1000);
  EXPECT_EQ(packer.size(), all.size() - n_1000);
  auto next = DeltaUnpacker<model::WakeEdge>().unpack(packer.pack_all({}));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->size(), all.size() - n_1000);
  EXPECT_TRUE(std::none_of(next->begin(), next->end(), of_1000));
  const auto it = std::find_if(all.begin(), all.end(), of_1000);
  DeltaUnpacker<model::WakeEdge> fresh;
  ASSERT_TRUE(fresh.unpack(packer.pack_all({})));
  auto met_again = fresh.unpack(packer.pack({*it}, false));
  ASSERT_TRUE(met_again);
  ASSERT_EQ(met_again->size(), 1u);
  EXPECT_TRUE(same((*met_again)[0], *it));
}

TEST(ThreadPack, DeltaPackedExactSumsRoundTripAcrossTicks) {
  std::vector<model::ExactWait> waits;
  for (int tid = 10; tid < 13; ++tid) {
    for (int k = 0; k < 3; ++k) {
      model::ExactWait w;
      w.pid = 10;
      w.tid = tid;
      w.kind = static_cast<model::ExactKind>(k);
      w.syscall_nr = k == 2 ? -1 : 230;
      w.object = k == 1 ? 0x7f00'0000'1234 : 0;
      w.ns = 3'000'000'000ull * static_cast<unsigned>(tid);
      w.count = 5;
      w.start_time_ticks = 1'000'000u + static_cast<unsigned>(tid);
      waits.push_back(w);
    }
  }
  auto later = waits;
  for (auto& w : later) {
    w.ns += 999'000'000;
    w.count -= 1;  // a sum that went back (modular) still decodes exactly
  }
  later[4].start_time_ticks = 7;  // a reused tid: another thread's entry, new
  DeltaPacker<model::ExactWait> packer;
  DeltaUnpacker<model::ExactWait> unpacker;
  for (const auto* rows : {&waits, &later}) {
    auto back = unpacker.unpack(packer.pack(*rows, rows == &waits));
    ASSERT_TRUE(back);
    ASSERT_EQ(back->size(), rows->size());
    for (std::size_t i = 0; i < rows->size(); ++i) {
      const auto& a = (*back)[i];
      const auto& b = (*rows)[i];
      EXPECT_TRUE(a.pid == b.pid && a.tid == b.tid && a.kind == b.kind &&
                  a.syscall_nr == b.syscall_nr && a.object == b.object && a.ns == b.ns &&
                  a.count == b.count && a.start_time_ticks == b.start_time_ticks)
          << i;
    }
  }
}

}  // namespace
}  // namespace chokepoint::store
