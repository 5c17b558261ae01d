// RingArena with real perf events (cpu-clock on this thread, which root and perf_event_paranoid
// up to 2 allow): rings sit side by side in one reserved block, a released slot is reused, and the
// arena's end unmaps every ring (the events' files go with the last mapping).
#include "collect/perf/ring_arena.h"

#include <gtest/gtest.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "util/scoped_fd.h"

namespace chokepoint::collect::perf {
namespace {

int open_clock_event() {
  perf_event_attr attr{};
  attr.size = sizeof(attr);
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.sample_period = 1000000;
  attr.disabled = 1;
  return static_cast<int>(syscall(SYS_perf_event_open, &attr, 0, -1, -1,
                                  static_cast<unsigned long>(PERF_FLAG_FD_CLOEXEC)));
}

// Whether any mapping of this process covers `address` (from /proc/self/maps).
bool mapped(const void* address) {
  const auto a = reinterpret_cast<std::uintptr_t>(address);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::uintptr_t start = 0;
    std::uintptr_t end = 0;
    char dash = 0;
    std::istringstream in(line);
    in >> std::hex >> start >> dash >> end;
    if (a >= start && a < end) return true;
  }
  return false;
}

// The count of perf event files this process holds open or mapped.
int perf_event_files() {
  int n = 0;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) n += line.find("[perf_event]") != std::string::npos ? 1 : 0;
  return n;
}

const std::size_t kRingBytes = static_cast<std::size_t>(sysconf(_SC_PAGESIZE)) * (1 + 2);

TEST(RingArena, RingsSitSideBySideAndGoWithTheArena) {
  std::vector<void*> rings;
  const int before = perf_event_files();
  {
    RingArena arena(kRingBytes, 4);
    for (int i = 0; i < 6; ++i) {
      util::ScopedFd fd(open_clock_event());
      ASSERT_GE(fd.get(), 0) << "perf_event_open(cpu-clock) on this thread failed: errno " << errno;
      void* ring = arena.map(fd.get());
      ASSERT_NE(ring, nullptr) << "errno " << errno;
      // The event's metadata page is readable: a real ring, not the reservation.
      EXPECT_GE(static_cast<const perf_event_mmap_page*>(ring)->version, 0u);
      rings.push_back(ring);
    }                               // the fds close; the mappings keep the events
    EXPECT_EQ(arena.blocks(), 2u);  // 4 rings a block
    for (int i = 1; i < 4; ++i) {
      EXPECT_EQ(static_cast<char*>(rings[i]) - static_cast<char*>(rings[i - 1]),
                static_cast<std::ptrdiff_t>(kRingBytes));
    }
    EXPECT_EQ(perf_event_files(), before + 6);
    for (void* ring : rings) EXPECT_TRUE(mapped(ring));
  }
  for (void* ring : rings) EXPECT_FALSE(mapped(ring)) << ring;
  EXPECT_EQ(perf_event_files(), before);
}

TEST(RingArena, AReleasedSlotDropsItsRingAndIsReused) {
  RingArena arena(kRingBytes, 4);
  util::ScopedFd a(open_clock_event());
  util::ScopedFd b(open_clock_event());
  ASSERT_GE(a.get(), 0);
  ASSERT_GE(b.get(), 0);
  void* first = arena.map(a.get());
  ASSERT_NE(first, nullptr);
  const int with_one = perf_event_files();
  arena.release(first);
  EXPECT_EQ(perf_event_files(), with_one - 1);
  // Still ours (a reservation), so nothing else is mapped there meanwhile.
  EXPECT_TRUE(mapped(first));
  EXPECT_EQ(arena.map(b.get()), first);
  EXPECT_EQ(arena.blocks(), 1u);
}

TEST(RingArena, AnFdThatIsNoPerfEventIsRefusedAndItsSlotKept) {
  RingArena arena(kRingBytes, 2);
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  util::ScopedFd read_end(pipe_fds[0]);
  util::ScopedFd write_end(pipe_fds[1]);
  errno = 0;
  EXPECT_EQ(arena.map(read_end.get()), nullptr);
  // A pipe has no mmap (ENODEV); its read end is refused writable shared mappings first.
  EXPECT_TRUE(errno == EACCES || errno == ENODEV) << errno;
  EXPECT_EQ(arena.map(-1), nullptr);
  EXPECT_EQ(errno, EBADF);
  util::ScopedFd fd(open_clock_event());
  ASSERT_GE(fd.get(), 0);
  void* ring = arena.map(fd.get());
  ASSERT_NE(ring, nullptr);
  EXPECT_EQ(arena.blocks(), 1u);
}

}  // namespace
}  // namespace chokepoint::collect::perf
