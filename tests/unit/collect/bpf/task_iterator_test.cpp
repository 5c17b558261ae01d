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
  r.state_at_arrival = TASKITER_STATE_UNKNOWN;
  r.start_boottime_ns = 1'234'567'890'123ULL;  // 1234.567890123 s after boot
  r.sum_exec_runtime_ns = 5'000'000'001ULL;
  r.run_delay_ns = 42'000;
  r.pcount = 17;
  r.utime_ns = 3'000'000'000ULL;
  r.stime_ns = 2'000'000'000ULL;
  r.maj_flt = 9;
  r.blkio_delay_ns = 25'000'000;  // 2.5 ticks: stat's field 42 says 2
  r.syscall_nr = 232;             // epoll_wait
  for (int i = 0; i < 6; ++i) r.args[i] = 10 + i;
  r.sp = 0x7ffc0000;
  r.pc = 0x401000;
  std::memcpy(r.comm, "wor)ker\n", 9);
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
  EXPECT_EQ(t.blkio_delay_ns, 20'000'000u);
  EXPECT_EQ(t.syscall_nr, 232);
  EXPECT_EQ(t.args[0], 10u);
  EXPECT_EQ(t.args[5], 15u);
  EXPECT_EQ(t.sp, 0x7ffc0000u);
  EXPECT_EQ(t.pc, 0x401000u);
  EXPECT_EQ(t.comm, "wor)ker\n");  // kept as the kernel has it: printing escapes it
  EXPECT_EQ(t.state_letter, 'S');
  EXPECT_EQ(t.state_at_arrival, 1u);  // not known: as read
  EXPECT_EQ(t.state_letter_at_arrival, 'S');
}

// The state at the reader's arrival (taskiter.bpf.c's state_at): 0 R, 1 S, 2 D as the kernel
// reconstructed it; unknown, or anything else, is the state as read.
TEST(TaskRecords, StateAtArrivalIsTheKernelsOrTheStateAsRead) {
  taskiter_record woken = record(100, 101);  // runnable now, asleep in D when the reader arrived
  woken.state = 0;
  woken.state_at_arrival = 2;
  taskiter_record blocked_since = record(100, 102);  // asleep now, on a CPU when it arrived
  blocked_since.state_at_arrival = 0;
  taskiter_record odd = record(100, 103);  // a value the kernel side never writes
  odd.state_at_arrival = 7;
  std::vector<TaskRecord> out;
  ASSERT_TRUE(parse_task_records(bytes_of({woken, blocked_since, odd}), 100, out));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].state_letter, 'R');
  EXPECT_EQ(out[0].state_at_arrival, 2u);
  EXPECT_EQ(out[0].state_letter_at_arrival, 'D');
  EXPECT_EQ(out[1].state_letter, 'S');
  EXPECT_EQ(out[1].state_at_arrival, 0u);
  EXPECT_EQ(out[1].state_letter_at_arrival, 'R');
  EXPECT_EQ(out[2].state_at_arrival, 1u);
  EXPECT_EQ(out[2].state_letter_at_arrival, 'S');
}

TEST(TaskRecords, CommWithoutTerminatorStopsAtSixteenBytes) {
  taskiter_record r = record(1, 1);
  std::memset(r.comm, 'x', sizeof(r.comm));
  std::vector<TaskRecord> out;
  ASSERT_TRUE(parse_task_records(bytes_of({r}), 100, out));
  EXPECT_EQ(out[0].comm, std::string(16, 'x'));
}

// The letters of /proc/TID/stat's field 3, as task_state_index derives them.
TEST(TaskRecords, StateLettersFollowTheKernel) {
  EXPECT_EQ(state_letter(0x0000, 0), 'R');
  EXPECT_EQ(state_letter(0x0001, 0), 'S');
  EXPECT_EQ(state_letter(0x2001, 0), 'S');  // TASK_INTERRUPTIBLE | TASK_FREEZABLE
  EXPECT_EQ(state_letter(0x0002, 0), 'D');
  EXPECT_EQ(state_letter(0x0402, 0), 'I');  // TASK_IDLE
  EXPECT_EQ(state_letter(0x0004, 0), 'T');
  EXPECT_EQ(state_letter(0x0008, 0), 't');
  EXPECT_EQ(state_letter(0x0000, 0x20), 'Z');  // exit_state EXIT_ZOMBIE
  EXPECT_EQ(state_letter(0x0000, 0x10), 'X');  // EXIT_DEAD
  EXPECT_EQ(state_letter(0x0040, 0), 'P');     // TASK_PARKED
  EXPECT_EQ(state_letter(0x1000, 0), 'D');     // TASK_RTLOCK_WAIT
  EXPECT_EQ(state_letter(0x8001, 0), 'D');     // frozen
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
  EXPECT_NE(r.error().message.find("351 bytes"), std::string::npos) << r.error().message;
  EXPECT_FALSE(r.error().hint.empty());
  EXPECT_TRUE(out.empty());
}

TEST(TaskRecords, RecordIsTheSharedHeadersSize) {
  EXPECT_EQ(task_record_bytes(), sizeof(taskiter_record));
  EXPECT_EQ(task_record_bytes(), 176u);
}

}  // namespace
}  // namespace chokepoint::collect::bpf
