// Fuzzes the pure parts of the futex stack scanner (collect/sampler/futex_stack.h) on bytes that,
// in a real run, come from another process: its code bytes before a return address, a PLT stub,
// its stack words, and the ELF file it maps as libc. Input: u8 selector, then the bytes.
// Beyond "no crash, no sanitizer report", it checks what callers rely on: a decoded call target
// is computed from the bytes given (rel32 / disp32 arithmetic), find_futex_waiter only returns a
// name model::futex_waiter_function gave for a name libc_function_at produced, after at most
// max_lookups named answers, and every wait function
// loaded from an ELF image lies inside the mapping it was placed in.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "collect/sampler/futex_stack.h"
#include "model/wait.h"

using namespace chokepoint::collect::sampler;

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}

std::uint64_t read_u64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t selector = data[0];
  ++data;
  --size;
  if (selector % 3 == 0 && size >= 8 + 8 + 16) {
    const std::uint64_t ret = read_u64(data);
    std::uint8_t before[8];
    std::memcpy(before, data + 8, 8);
    if (auto c = decode_call_before(ret, std::span<const std::uint8_t, 8>(before))) {
      // Both encodings end with a 32-bit displacement relative to the return address.
      std::int32_t disp = 0;
      std::memcpy(&disp, before + 4, 4);
      check(c->address == ret + static_cast<std::uint64_t>(static_cast<std::int64_t>(disp)));
    }
    std::uint8_t stub[16];
    std::memcpy(stub, data + 16, 16);
    (void)decode_plt_stub(ret, std::span<const std::uint8_t, 16>(stub));
  } else if (selector % 3 == 1) {
    std::vector<std::uint64_t> words(size / 8);
    for (std::size_t i = 0; i < words.size(); ++i) words[i] = read_u64(data + 8 * i);
    const int max_lookups = selector % 16;
    int calls = 0;
    std::vector<std::string> produced;
    auto named = find_futex_waiter(
        words,
        [&](std::uint64_t address) -> std::optional<std::string> {
          ++calls;
          // A deterministic, input-driven naming: some words are known wait functions.
          static const char* const kNames[] = {"pthread_rwlock_wrlock", "pthread_cond_wait",
                                               "sem_wait", "__futex_abstimed_wait_common",
                                               "_IO_file_sync"};
          if (address % 7 > 4) return std::nullopt;
          produced.emplace_back(kNames[address % 7]);
          return produced.back();
        },
        max_lookups);
    check(produced.size() <= static_cast<std::size_t>(std::max(0, max_lookups)));
    check(calls <= static_cast<int>(words.size()));
    if (named) {
      bool from_lookup = false;
      for (const auto& p : produced) {
        from_lookup = from_lookup || chokepoint::model::futex_waiter_function(p) == *named;
      }
      check(from_lookup);
    }
  } else if (selector % 3 == 2) {
    const int fd = memfd_create("fuzz-elf", MFD_CLOEXEC);
    if (fd < 0) return 0;
    if (size == 0 || write(fd, data, size) == static_cast<ssize_t>(size)) {
      CodeRange mapping;
      mapping.start = 0x7f0000000000;
      mapping.end = mapping.start + 0x200000;
      mapping.offset = 0;
      mapping.path = "/fuzz/libc.so.6";
      for (const auto& f : load_wait_functions(fd, mapping)) {
        check(f.start >= mapping.start && f.end <= mapping.end && f.start <= f.end);
        check(!f.name.empty());
      }
    }
    close(fd);
  }
  return 0;
}
