// Decoding the task iterator's records (src/bpf/taskiter.h): fields land in the right members,
// start times convert to /proc's clock ticks the way proc_pid_stat truncates, kernel threads carry
// no system call, and a length that is not a whole number of records is refused.
#include "collect/bpf/task_iterator.h"

#include <gtest/gtest.h>
#include <linux/types.h>

#include <cstring>
#include <vector>

#include "bpf/taskiter.h"

namespace chokepoint::collect::bpf {
namespace {

std::vector<std::uint8_t> bytes_of(const std::vector<taskiter_record>& records) {
  std::vector<std::uint8_t> out(records.size() * sizeof(taskiter_record));
  if (!records.empty()) std::memcpy(out.data(), records.data(), out.size());
  return out;
}

taskiter_record record(__u32 tgid, __u32 tid) {
  taskiter_record r{};
  r.tgid = tgid;
  r.tid = tid;
  r.state = 1;
  r.start_boottime_ns = 1'234'567'890'123ULL;  // 1234.567890123 s after boot
  r.sum_exec_runtime_ns = 5'000'000'001ULL;
  r.run_delay_ns = 42'000;
  r.pcount = 17;
  r.utime_ns = 3'000'000'000ULL;
  r.stime_ns = 2'000'000'000ULL;
  r.maj_flt = 9;
  r.syscall_nr = 232;  // epoll_wait
  return r;
}

TEST(TaskRecords, DecodesEveryField) {
  std::vector<TaskRecord> out;
  ASSERT_TRUE(parse_task_records(bytes_of({record(100, 100), record(100, 101)}), 100, out));
  ASSERT_EQ(out.size(), 2u);
  const TaskRecord& t = out[1];
  EXPECT_EQ(t.tgid, 100);
  EXPECT_EQ(t.tid, 101);
  EXPECT_EQ(t.state, 1u);
  EXPECT_FALSE(t.kernel_thread);
  EXPECT_EQ(t.start_time_ticks, 123'456u);  // truncated, as nsec_to_clock_t does
  EXPECT_EQ(t.run_ns, 5'000'000'001u);
  EXPECT_EQ(t.run_delay_ns, 42'000u);
  EXPECT_EQ(t.timeslices, 17u);
  EXPECT_EQ(t.utime_ns, 3'000'000'000u);
  EXPECT_EQ(t.stime_ns, 2'000'000'000u);
  EXPECT_EQ(t.majflt, 9u);
  EXPECT_EQ(t.syscall_nr, 232);
}

TEST(TaskRecords, StartTimeFollowsTheClockTickRate) {
  std::vector<TaskRecord> out;
  ASSERT_TRUE(parse_task_records(bytes_of({record(1, 1)}), 1000, out));
  EXPECT_EQ(out[0].start_time_ticks, 1'234'567u);
}

TEST(TaskRecords, KernelThreadsHaveNoSystemCall) {
  taskiter_record r = record(2, 2);
  r.flags = 0x00200000;  // PF_KTHREAD
  r.syscall_nr = 7;      // whatever orig_ax held
  std::vector<TaskRecord> out;
  ASSERT_TRUE(parse_task_records(bytes_of({r}), 100, out));
  EXPECT_TRUE(out[0].kernel_thread);
  EXPECT_EQ(out[0].syscall_nr, -1);
}

TEST(TaskRecords, EmptyReadIsNoThreads) {
  std::vector<TaskRecord> out{TaskRecord{}};
  ASSERT_TRUE(parse_task_records({}, 100, out));
  EXPECT_TRUE(out.empty());
}

TEST(TaskRecords, TruncatedReadIsAnErrorWithAHint) {
  auto bytes = bytes_of({record(1, 1), record(1, 2)});
  bytes.pop_back();
  std::vector<TaskRecord> out;
  auto r = parse_task_records(bytes, 100, out);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("159 bytes"), std::string::npos) << r.error().message;
  EXPECT_FALSE(r.error().hint.empty());
  EXPECT_TRUE(out.empty());
}

TEST(TaskRecords, RecordIsEightyBytes) {
  EXPECT_EQ(task_record_bytes(), 80u);
}

}  // namespace
}  // namespace chokepoint::collect::bpf
