// find_allocators on a process between exec and its dynamic loader's run: only the executable and
// ld-linux mapped. That is "still loading" (EAGAIN), which MemoryTracer::create waits out, not
// "no allocator" (CI caught `profile --memory -- unshare ... sh -c '... exec TARGET'` reading the
// shell's mappings there). Once libc is mapped, it is found. A fake /proc (maps, exe and root
// links) whose paths are this machine's real dash, loader and libc.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>

#include "collect/bpf/memory_tracer.h"

namespace chokepoint::collect::bpf {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDash = "/usr/bin/dash";
constexpr const char* kLoader = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";
constexpr const char* kLibc = "/usr/lib/x86_64-linux-gnu/libc.so.6";

// A /proc with one process, 4242, mapping `paths` executable; its root is "/".
struct FakeProc {
  fs::path root = fs::temp_directory_path() / ("chokepoint-allocators-" + std::to_string(getpid()));
  explicit FakeProc(const std::vector<std::string>& paths) {
    fs::remove_all(root);
    fs::create_directories(root / "4242");
    fs::create_directory_symlink("/", root / "4242" / "root");
    fs::create_symlink(kDash, root / "4242" / "exe");
    std::ofstream maps(root / "4242" / "maps");
    unsigned long at = 0x400000;
    for (const auto& p : paths) {
      maps << std::hex << at << "-" << at + 0x1000 << std::dec << " r-xp 00000000 fd:01 1234 " << p
           << "\n";
      at += 0x10000;
    }
  }
  ~FakeProc() { fs::remove_all(root); }
};

TEST(FindAllocators, AProcessWithOnlyItsLoaderMappedIsStillLoadingThenItsLibcIsFound) {
  for (const char* p : {kDash, kLoader, kLibc}) {
    if (::access(p, R_OK) != 0) GTEST_FAIL() << p << " is missing on this Debian machine";
  }
  {
    FakeProc proc({kDash, kLoader});
    auto found = find_allocators(4242, proc.root.string());
    ASSERT_FALSE(found);
    EXPECT_EQ(found.error().errno_value, EAGAIN) << found.error().message;
    EXPECT_NE(found.error().message.find("still loading"), std::string::npos)
        << found.error().message;
  }
  {
    FakeProc proc({kDash, kLoader, kLibc});
    auto found = find_allocators(4242, proc.root.string());
    ASSERT_TRUE(found) << found.error().message;
    ASSERT_EQ(found->size(), 1u);
    EXPECT_EQ((*found)[0].kind, "glibc");
    EXPECT_EQ((*found)[0].path, kLibc);
  }
  {
    // A static program (no loader) without malloc symbols stays "no allocator" at once.
    FakeProc proc({kDash});
    auto found = find_allocators(4242, proc.root.string());
    ASSERT_FALSE(found);
    EXPECT_NE(found.error().errno_value, EAGAIN);
    EXPECT_NE(found.error().message.find("no allocator"), std::string::npos)
        << found.error().message;
  }
}

}  // namespace
}  // namespace chokepoint::collect::bpf
