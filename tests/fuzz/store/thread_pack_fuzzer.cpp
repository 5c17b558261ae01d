// The packed blobs of a schema 2 recording (store/thread_pack.h) on hostile bytes: the first byte
// picks the decoder (even: thread rows, odd: the exact mode's sums), the rest is the blob. Beyond
// "no crash, no sanitizer report": what decodes re-encodes to rows that decode the same, and the
// sums' values are clamped to their ranges.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "store/thread_pack.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view blob(reinterpret_cast<const char*>(data) + 1, size - 1);
  using namespace chokepoint;
  if (data[0] % 2 == 0) {
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
            a.run_delay_ns == b.run_delay_ns && a.wait.has_value() == b.wait.has_value());
    }
    return 0;
  }
  auto waits = store::unpack_exact_waits(blob);
  if (!waits) return 0;
  for (const auto& w : *waits) {
    check(w.pid >= 0 && w.pid <= (1 << 30) && w.tid >= 0 && w.tid <= (1 << 30));
    check(static_cast<int>(w.kind) < static_cast<int>(model::kExactKindCount));
    check(w.syscall_nr >= -1 && w.syscall_nr <= (1 << 16));
  }
  auto again = store::unpack_exact_waits(store::pack_exact_waits(*waits));
  check(again.has_value() && again->size() == waits->size());
  return 0;
}
