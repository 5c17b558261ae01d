#include "collect/netlink/taskstats.h"

#include <gtest/gtest.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/taskstats.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace chokepoint::collect::netlink {
namespace {

// A TASKSTATS_CMD_NEW message as the kernel builds it: AGGR_PID { PID, STATS }, with the stats
// struct cut to `stats_len` bytes (an older kernel sends a shorter, older version).
std::vector<std::uint8_t> reply(const taskstats& ts, std::size_t stats_len) {
  std::vector<std::uint8_t> stats(reinterpret_cast<const std::uint8_t*>(&ts),
                                  reinterpret_cast<const std::uint8_t*>(&ts) + stats_len);
  auto attr = [](std::uint16_t type, const std::vector<std::uint8_t>& payload) {
    std::vector<std::uint8_t> out(NLA_HDRLEN + NLA_ALIGN(payload.size()), 0);
    nlattr a{static_cast<std::uint16_t>(NLA_HDRLEN + payload.size()), type};
    std::memcpy(out.data(), &a, sizeof a);
    std::memcpy(out.data() + NLA_HDRLEN, payload.data(), payload.size());
    return out;
  };
  std::uint32_t pid = 42;
  std::vector<std::uint8_t> pid_bytes(reinterpret_cast<std::uint8_t*>(&pid),
                                      reinterpret_cast<std::uint8_t*>(&pid) + sizeof pid);
  auto inner = attr(TASKSTATS_TYPE_PID, pid_bytes);
  auto s = attr(TASKSTATS_TYPE_STATS, stats);
  inner.insert(inner.end(), s.begin(), s.end());
  auto nest = attr(TASKSTATS_TYPE_AGGR_PID, inner);
  std::vector<std::uint8_t> msg(NLMSG_HDRLEN + GENL_HDRLEN, 0);
  msg.insert(msg.end(), nest.begin(), nest.end());
  nlmsghdr h{};
  h.nlmsg_len = static_cast<std::uint32_t>(msg.size());
  h.nlmsg_type = 30;
  std::memcpy(msg.data(), &h, sizeof h);
  return msg;
}

taskstats sample() {
  taskstats ts{};
  ts.version = TASKSTATS_VERSION;
  ts.blkio_count = 3;
  ts.blkio_delay_total = 3'000'000;
  ts.swapin_count = 2;
  ts.swapin_delay_total = 20'000'000;
  ts.freepages_count = 1;
  ts.freepages_delay_total = 5'000'000;
  ts.thrashing_count = 4;
  ts.thrashing_delay_total = 40'000'000;
  ts.compact_count = 1;
  ts.compact_delay_total = 1'000'000;
  return ts;
}

TEST(TaskstatsParse, FullStruct) {
  auto d = parse_taskstats_message(reply(sample(), sizeof(taskstats)));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->version, TASKSTATS_VERSION);
  EXPECT_EQ(d->blkio_delay_ns, 3'000'000u);
  EXPECT_EQ(d->swapin_count, 2u);
  EXPECT_EQ(d->thrashing_delay_ns, 40'000'000u);
  EXPECT_EQ(d->memory_delay_ns(), 66'000'000u);
}

TEST(TaskstatsParse, AnOlderShorterStructLeavesNewerFieldsZero) {
  // Version 8 ended before thrashing (added in 9) and compaction (11).
  auto d = parse_taskstats_message(reply(sample(), offsetof(taskstats, thrashing_count)));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->swapin_delay_ns, 20'000'000u);
  EXPECT_EQ(d->freepages_delay_ns, 5'000'000u);
  EXPECT_EQ(d->thrashing_delay_ns, 0u);
  EXPECT_EQ(d->compact_delay_ns, 0u);
}

TEST(TaskstatsParse, ErrorsAndGarbage) {
  std::vector<std::uint8_t> err(NLMSG_HDRLEN + sizeof(nlmsgerr), 0);
  nlmsghdr h{};
  h.nlmsg_len = static_cast<std::uint32_t>(err.size());
  h.nlmsg_type = NLMSG_ERROR;
  nlmsgerr e{};
  e.error = -ESRCH;
  std::memcpy(err.data(), &h, sizeof h);
  std::memcpy(err.data() + NLMSG_HDRLEN, &e, sizeof e);
  auto r = parse_taskstats_message(err);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().errno_value, ESRCH);
  EXPECT_FALSE(parse_taskstats_message({}));
  std::vector<std::uint8_t> junk(64, 0xff);
  EXPECT_FALSE(parse_taskstats_message(junk));
  auto cut = reply(sample(), sizeof(taskstats));
  cut.resize(cut.size() / 2);  // nlmsg_len now claims more than there is
  EXPECT_FALSE(parse_taskstats_message(cut));
}

TEST(TaskstatsLive, ReadsOurOwnThreadGroup) {
  if (geteuid() != 0) GTEST_SKIP() << "taskstats needs CAP_NET_ADMIN (root)";
  auto ts = Taskstats::open();
  if (!ts) GTEST_SKIP() << "no taskstats: " << ts.error().message;
  auto mine = ts->thread_group(getpid());
  ASSERT_TRUE(mine) << mine.error().message;
  EXPECT_GE(mine->version, 1);
  auto thread = ts->thread(getpid());
  ASSERT_TRUE(thread) << thread.error().message;
  auto gone = ts->thread_group(999'999'999);
  ASSERT_FALSE(gone);
  EXPECT_FALSE(gone.error().message.empty());
}

}  // namespace
}  // namespace chokepoint::collect::netlink
