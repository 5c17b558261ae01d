// The packed blobs of a schema 2, 3 and 4 recording (store/thread_pack.h) on hostile bytes: the
// first byte picks the decoder (modulo 4: 0 thread rows, 1 schema 2's exact sums, 2 schema 3's
// wait-for edges, 3 schema 3's exact sums; with bit 2 set, the rest is first opened as schema 4's
// envelope, store/blob_codec.h, whose content goes to that decoder), the rest is the blob. Beyond
// "no crash, no sanitizer report": what decodes re-encodes to rows that decode the same, and the
// sums' and edges' values are clamped to their ranges.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/blob_codec.h"
#include "store/thread_pack.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_wait(const chokepoint::model::ExactWait& w) {
  check(w.pid >= 0 && w.pid <= (1 << 30) && w.tid >= 0 && w.tid <= (1 << 30));
  check(static_cast<int>(w.kind) < static_cast<int>(chokepoint::model::kExactKindCount));
  check(w.syscall_nr >= -1 && w.syscall_nr <= (1 << 16));
}

bool same(const chokepoint::model::ExactWait& a, const chokepoint::model::ExactWait& b) {
  return a.pid == b.pid && a.tid == b.tid && a.kind == b.kind && a.syscall_nr == b.syscall_nr &&
         a.object == b.object && a.start_time_ticks == b.start_time_ticks && a.ns == b.ns &&
         a.count == b.count;
}

bool same(const chokepoint::model::WakeEdge& a, const chokepoint::model::WakeEdge& b) {
  return a.waker_pid == b.waker_pid && a.waker_tid == b.waker_tid && a.waker_kind == b.waker_kind &&
         a.wakee_pid == b.wakee_pid && a.wakee_tid == b.wakee_tid && a.syscall_nr == b.syscall_nr &&
         a.object == b.object && a.ns == b.ns && a.count == b.count;
}

// Schema 3's delta-packed rows: what decodes, packed again from scratch, decodes the same.
template <typename Row>
std::optional<std::vector<Row>> round_trip(std::string_view blob) {
  auto rows = chokepoint::store::DeltaUnpacker<Row>().unpack(blob);
  if (!rows) return rows;
  chokepoint::store::DeltaPacker<Row> packer;
  auto again = chokepoint::store::DeltaUnpacker<Row>().unpack(packer.pack(*rows, true));
  check(again.has_value() && again->size() == rows->size());
  for (std::size_t i = 0; i < rows->size(); ++i) check(same((*rows)[i], (*again)[i]));
  return rows;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::string_view blob(reinterpret_cast<const char*>(data) + 1, size - 1);
  using namespace chokepoint;
  std::optional<std::string> opened;
  if ((data[0] & 4) != 0) {
    static store::BlobDecoder decoder;  // reused, as the reader reuses it from tick to tick
    opened = decoder.decode(blob);
    if (!opened) return 0;
    check(opened->size() <= store::kMaxBlobBytes);
    // What opens, wrapped again, opens to the same bytes.
    static store::BlobEncoder encoder;
    auto again = decoder.decode(encoder.encode(*opened));
    check(again.has_value() && *again == *opened);
    blob = *opened;
  }
  if (data[0] % 4 == 2) {
    auto edges = round_trip<model::WakeEdge>(blob);
    if (!edges) return 0;
    for (const auto& e : *edges) {
      for (int id : {e.waker_pid, e.waker_tid, e.wakee_pid, e.wakee_tid}) {
        check(id >= 0 && id <= (1 << 30));
      }
      check(static_cast<std::size_t>(e.waker_kind) < model::kWakerKindCount);
      check(e.syscall_nr >= -1 && e.syscall_nr <= (1 << 16));
    }
    return 0;
  }
  if (data[0] % 4 == 3) {
    auto waits = round_trip<model::ExactWait>(blob);
    if (!waits) return 0;
    for (const auto& w : *waits) check_wait(w);
    return 0;
  }
  if (data[0] % 4 == 0) {
    auto rows = store::unpack_threads(blob);
    if (!rows) return 0;
    store::ThreadPacker packer;
    for (const auto& r : *rows) packer.add(r);
    auto again = store::unpack_threads(packer.bytes());
    check(again.has_value() && again->size() == rows->size());
    for (std::size_t i = 0; i < rows->size(); ++i) {
      const auto& a = (*rows)[i];
      const auto& b = (*again)[i];
      check(a.thread == b.thread && a.has_stat == b.has_stat && a.run_ns == b.run_ns &&
            a.run_delay_ns == b.run_delay_ns && a.utime_ns == b.utime_ns &&
            a.stime_ns == b.stime_ns && a.majflt == b.majflt && a.blkio_ns == b.blkio_ns &&
            a.wait.has_value() == b.wait.has_value());
    }
    return 0;
  }
  auto waits = store::unpack_exact_waits(blob);
  if (!waits) return 0;
  for (const auto& w : *waits) check_wait(w);
  auto again = store::unpack_exact_waits(store::pack_exact_waits(*waits));
  check(again.has_value() && again->size() == waits->size());
  return 0;
}
