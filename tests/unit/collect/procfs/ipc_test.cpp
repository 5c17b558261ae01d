#include "collect/procfs/ipc.h"

#include <gtest/gtest.h>

namespace chokepoint::collect::procfs {
namespace {

// /proc/sysvipc/shm of this VM (kernel 6.1) with two segments, one IPC_PRIVATE, captured with
// a test program holding them.
constexpr std::string_view kTwoSegments =
    "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  "
    "cgid      atime      dtime      ctime                   rss                  swap\n"
    "         0          3   600                 65536  4242  4242      1     0     0     0     0 "
    "1764893000          0 1764893000                 65536                     0\n"
    "-559038737         4   666               1048576     1  4243      0  1000  1000  1000  1000 "
    "         0          0 1764893001                     0                     0\n";

TEST(SysvShm, Rows) {
  auto s = parse_sysvipc_shm(kTwoSegments);
  ASSERT_TRUE(s);
  ASSERT_EQ(s->size(), 2u);
  EXPECT_EQ((*s)[0].key, 0);
  EXPECT_EQ((*s)[0].shmid, 3u);
  EXPECT_EQ((*s)[0].size_bytes, 65536u);
  EXPECT_EQ((*s)[0].creator_pid, 4242);
  EXPECT_EQ((*s)[0].last_pid, 4242);
  EXPECT_EQ((*s)[0].attached, 1u);
  EXPECT_EQ((*s)[0].rss_bytes, 65536u);
  EXPECT_EQ((*s)[1].key, -559038737);
  EXPECT_EQ((*s)[1].size_bytes, 1048576u);
  EXPECT_EQ((*s)[1].creator_pid, 1);
  EXPECT_EQ((*s)[1].attached, 0u);
}

TEST(SysvShm, EmptyAndOlderKernels) {
  auto empty = parse_sysvipc_shm(
      "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  "
      "cgid      atime      dtime      ctime                   rss                  swap\n");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  // Before 2.6.32: no rss and swap columns.
  auto old = parse_sysvipc_shm(
      "key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime\n"
      "0 1 600 4096 10 11 2 0 0 0 0 0 0 0\n");
  ASSERT_TRUE(old);
  ASSERT_EQ(old->size(), 1u);
  EXPECT_EQ((*old)[0].attached, 2u);
  EXPECT_FALSE((*old)[0].rss_bytes);
}

TEST(SysvShm, OddContent) {
  EXPECT_FALSE(parse_sysvipc_shm(""));
  EXPECT_FALSE(parse_sysvipc_shm("0 1 600 4096 10 11 2\n"));  // no header
  const std::string header = "key shmid perms size cpid lpid nattch\n";
  EXPECT_FALSE(parse_sysvipc_shm(header + "0 1 600 4096 10 11\n"));            // short row
  EXPECT_FALSE(parse_sysvipc_shm(header + "0 1 600 4k 10 11 2\n"));            // not a number
  EXPECT_FALSE(parse_sysvipc_shm(header + "0 1 600 4096 -1 11 2\n"));          // negative pid
  EXPECT_FALSE(parse_sysvipc_shm(header + "0 1 600 4096 4294967296 11 2\n"));  // pid > int
  auto blank = parse_sysvipc_shm(header + "\n   \n0 1 600 4096 10 11 2\n");
  ASSERT_TRUE(blank);
  EXPECT_EQ(blank->size(), 1u);
  auto huge = parse_sysvipc_shm(header + "0 1 600 18446744073709551615 10 11 2\n");
  ASSERT_TRUE(huge);
  EXPECT_EQ((*huge)[0].size_bytes, 18446744073709551615u);
}

}  // namespace
}  // namespace chokepoint::collect::procfs
