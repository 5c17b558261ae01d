#include "report/timeline.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>

namespace chokepoint::report {
namespace {

constexpr std::int64_t kMs = 1'000'000;

model::ThreadSample sample(int tid, std::int64_t at, bool first, std::uint64_t run_ns, long nr,
                           std::string detail) {
  model::ThreadSample s;
  s.key = {100, tid, 7};
  s.at_ns = at;
  s.prev_poll_ns = at;
  s.first = first;
  if (first) {
    s.comm = tid == 1 ? "writer" : "sleeper";
    s.process_name = "svc";
  }
  s.has_stat = true;
  s.run_ns = run_ns;
  s.wait.state = 'S';
  s.wait.where = model::SyscallWhere::kInSyscall;
  s.wait.syscall_nr = nr;
  s.wait.fd_role = detail.empty() ? model::FdRole::kUnknown : model::FdRole::kRegularFile;
  s.wait.fd_detail = std::move(detail);
  return s;
}

// Runs length-encoded states back to one per column.
std::vector<int> states(const nlohmann::json& runs) {
  std::vector<int> out;
  for (std::size_t i = 0; i + 2 < runs.size(); i += 3) {
    for (int k = 0; k < runs[i + 2].get<int>(); ++k) out.push_back(runs[i].get<int>());
  }
  return out;
}

TEST(ColumnLength, ReadableLengthsOfAtLeastOneInterval) {
  EXPECT_EQ(column_length_ns(3'000 * kMs, 100 * kMs, {}), 100 * kMs);
  EXPECT_EQ(column_length_ns(3'600'000 * kMs, 1'000 * kMs, {}), 30'000 * kMs);
  EXPECT_EQ(column_length_ns(60'000 * kMs, 1'000 * kMs, {}), 1'000 * kMs);
  EXPECT_EQ(column_length_ns(60'000 * kMs, 300 * kMs, {}), 500 * kMs);
}

TEST(TimelineBuilder, ColumnsHoldEachThreadsMainStateAndItsWait) {
  // Every 100 ms for 2 s: thread 1 sleeps for the first second, then sits in fdatasync; thread 2
  // sleeps throughout. Columns of 500 ms.
  model::RecordingInfo info;
  info.target = {"pid", "100", {}};
  info.interval_ns = 100 * kMs;
  TimelineOptions options;
  options.column_ns = 500 * kMs;
  TimelineBuilder b(info, 0, 2'000 * kMs, options);
  for (int i = 0; i <= 20; ++i) {
    model::Tick t;
    t.at_ns = i * 100 * kMs;
    if (i == 0) {
      t.new_pids = {100};
      t.threads = {sample(1, 0, true, 0, SYS_nanosleep, ""),
                   sample(2, 0, true, 0, SYS_nanosleep, "")};
    } else if (i >= 10) {
      t.threads = {sample(1, t.at_ns, false, static_cast<std::uint64_t>(i) * kMs, SYS_fdatasync,
                          "/data/<log>")};
      if (i == 10) t.threads[0].comm = "log-writer";  // it named itself: its row goes by it
    }
    b.add(t);
  }
  const nlohmann::json j = b.finish(1'000'000 * kMs);
  EXPECT_DOUBLE_EQ(j["column_s"].get<double>(), 0.5);
  EXPECT_EQ(j["columns"], nlohmann::json::array({0.0, 0.5, 1.0, 1.5}));
  ASSERT_EQ(j["threads"].size(), 2u);
  const auto sleep = static_cast<int>(model::Resource::kSleep);
  const auto disk = static_cast<int>(model::Resource::kDisk);
  EXPECT_EQ(states(j["threads"][0]["runs"]), (std::vector<int>{sleep, sleep, disk, disk}));
  EXPECT_EQ(states(j["threads"][1]["runs"]), (std::vector<int>{sleep, sleep, sleep, sleep}));
  EXPECT_EQ(j["threads"][0]["comm"], "log-writer");
  EXPECT_EQ(j["threads"][1]["comm"], "sleeper");
  // The disk columns name the wait.
  const auto& runs = j["threads"][0]["runs"];
  ASSERT_EQ(runs.size(), 6u);
  EXPECT_EQ(j["details"][runs[4].get<std::size_t>()], "fdatasync /data/<log>");
  // The verdict moved from none to disk at 1 s.
  ASSERT_EQ(j["verdicts"].size(), 4u);
  EXPECT_EQ(j["verdicts"][0]["verdict"], "none");
  EXPECT_EQ(j["verdicts"][3]["verdict"], "disk");
  // The split: half the thread time on disk in the last column.
  EXPECT_NEAR(j["split"][3][disk].get<double>(), 0.5, 0.01);
  EXPECT_DOUBLE_EQ(j["start_unix_s"].get<double>(), 1000.0);
}

}  // namespace
}  // namespace chokepoint::report
