// FreezerReader on a built /proc and cgroup tree: mountinfo names the mounts, /proc/PID/cgroup the
// process's cgroups, and cgroup.events (v2) or freezer.state (v1) whether they are frozen.
#include "collect/procfs/freezer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "support/files.h"

namespace chokepoint::collect::procfs {
namespace {

void write(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

class FreezerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root = dir.path;
    write(root + "/proc/self/mountinfo", "30 1 0:26 / " + root +
                                             "/cg2 rw - cgroup2 cgroup2 rw\n"
                                             "31 1 0:27 / " +
                                             root +
                                             "/freezer rw shared:9 - cgroup cgroup rw,freezer\n"
                                             "32 1 0:28 / " +
                                             root + "/cpu rw - cgroup cgroup rw,cpu\n");
    write(root + "/proc/100/cgroup", "6:freezer:/paused\n1:cpu:/\n0::/svc\n");
    write(root + "/proc/200/cgroup", "6:freezer:/\n0::/box/child\n");
    write(root + "/proc/300/cgroup", "6:freezer:/\n0::/svc\n");
    write(root + "/freezer/paused/freezer.state", "FROZEN\n");
    write(root + "/freezer/freezer.state", "THAWED\n");
    write(root + "/cg2/svc/cgroup.events", "populated 1\nfrozen 0\n");
    // A child of a frozen v2 cgroup says frozen in its own events.
    write(root + "/cg2/box/child/cgroup.events", "populated 1\nfrozen 1\n");
  }
  test_support::TempDir dir{"chokepoint-freezer-test"};
  std::string root;
};

TEST_F(FreezerTest, V1FreezerStateAndV2EventsBothCount) {
  ProcFs proc(root + "/proc");
  FreezerReader f(proc);
  EXPECT_TRUE(f.frozen(100, 0));   // v1 FROZEN
  EXPECT_TRUE(f.frozen(200, 0));   // v2 frozen 1
  EXPECT_FALSE(f.frozen(300, 0));  // neither
  EXPECT_FALSE(f.frozen(999, 0));  // gone: cannot tell, so not frozen
}

TEST_F(FreezerTest, AnswersAreCachedPerCgroupForHalfASecond) {
  ProcFs proc(root + "/proc");
  FreezerReader f(proc);
  EXPECT_FALSE(f.frozen(300, 0));
  write(root + "/cg2/svc/cgroup.events", "populated 1\nfrozen 1\n");
  EXPECT_FALSE(f.frozen(300, FreezerReader::kCacheNs - 1));
  EXPECT_TRUE(f.frozen(300, FreezerReader::kCacheNs));
}

// The real root of a hierarchy cannot freeze and has no state file (CFTYPE_NOT_ON_ROOT): a process
// there is never frozen, and its answer is kept without a read (most of a host's processes, and
// the agent looked at each twice a second). A cgroup namespace's root has the file: it is read.
TEST(Freezer, TheRootCgroupIsNeverFrozenAndNotReadAgain) {
  test_support::TempDir dir("chokepoint-freezer-test");
  const std::string root = dir.path;
  write(root + "/proc/self/mountinfo", "30 1 0:26 / " + root + "/cg2 rw - cgroup2 cgroup2 rw\n" +
                                           "31 1 0:27 / " + root +
                                           "/freezer rw - cgroup cgroup rw,freezer\n");
  write(root + "/proc/100/cgroup", "6:freezer:/\n0::/\n");
  std::filesystem::create_directories(root + "/freezer");
  std::filesystem::create_directories(root + "/cg2");
  ProcFs proc(root + "/proc");
  FreezerReader f(proc);
  EXPECT_FALSE(f.frozen(100, 0));
  // Files the kernel never makes there: a read would now say frozen.
  write(root + "/freezer/freezer.state", "FROZEN\n");
  write(root + "/cg2/cgroup.events", "populated 1\nfrozen 1\n");
  EXPECT_FALSE(f.frozen(100, 10 * FreezerReader::kCacheNs));
  // With the files there from the start (a cgroup namespace's root), they are read.
  FreezerReader in_namespace(proc);
  EXPECT_TRUE(in_namespace.frozen(100, 0));
}

TEST(Freezer, NoCgroupMountsMeansNeverFrozen) {
  test_support::TempDir dir("chokepoint-freezer-test");
  write(dir.path + "/proc/self/mountinfo", "22 1 0:5 / /proc rw - proc proc rw\n");
  write(dir.path + "/proc/100/cgroup", "0::/x\n");
  ProcFs proc(dir.path + "/proc");
  FreezerReader f(proc);
  EXPECT_FALSE(f.frozen(100, 0));
}

}  // namespace
}  // namespace chokepoint::collect::procfs
