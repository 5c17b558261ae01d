// bpf_support's readers of the target's /proc files, on this test process and on a fake root.
#include "collect/bpf/bpf_support.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace chokepoint::collect::bpf {
namespace {

// A function of this executable: its address must lie in one of the executable's text ranges.
__attribute__((noinline)) int own_function() {
  return 42;
}

TEST(BpfSupport, ExecutableTextRangesHoldOwnCode) {
  const auto ranges = executable_text_ranges("/proc", ::getpid(), 8);
  ASSERT_FALSE(ranges.empty());
  const auto address = reinterpret_cast<std::uintptr_t>(&own_function);
  bool inside = false;
  for (const auto& [start, end] : ranges) inside = inside || (address >= start && address < end);
  EXPECT_TRUE(inside) << "own_function at " << std::hex << address;
  EXPECT_LE(executable_text_ranges("/proc", ::getpid(), 1).size(), 1u);
  EXPECT_TRUE(executable_text_ranges("/proc", 999'999'999, 8).empty());
}

// A replaced executable: readlink says "PATH (deleted)", and so do its maps lines; the ranges are
// still its own, not a library's.
TEST(BpfSupport, ExecutableTextRangesOfAReplacedBinary) {
  const std::filesystem::path root = std::filesystem::temp_directory_path() /
                                     ("chokepoint-bpf-support-" + std::to_string(::getpid()));
  std::filesystem::create_directories(root / "7");
  std::filesystem::create_symlink("/srv/app (deleted)", root / "7" / "exe");
  {
    std::ofstream maps(root / "7" / "maps");
    maps << "00400000-00401000 r--p 00000000 08:01 12 /srv/app (deleted)\n"
            "00401000-00405000 r-xp 00001000 08:01 12 /srv/app (deleted)\n"
            "7f0000000000-7f0000100000 r-xp 00000000 08:01 13 /usr/lib/libc.so.6\n";
  }
  const auto ranges = executable_text_ranges(root.string(), 7, 8);
  std::filesystem::remove_all(root);
  ASSERT_EQ(ranges.size(), 1u);
  EXPECT_EQ(ranges[0].first, 0x401000u);
  EXPECT_EQ(ranges[0].second, 0x405000u);
}

}  // namespace
}  // namespace chokepoint::collect::bpf
