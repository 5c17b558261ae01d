// Recordings under abuse: a recorder killed with SIGKILL at random moments leaves a file that
// passes PRAGMA integrity_check and replays; a full disk pauses recording with an error and a
// hint, and recording resumes when space returns.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "model/builder.h"
#include "store/recording.h"
#include "support/background.h"
#include "support/cli.h"
#include "support/files.h"
#include "support/lab_process.h"
#include "support/recording_wait.h"

namespace chokepoint::recording_test {
namespace {

using test_support::Background;
using test_support::chokepoint_bin;
using test_support::LabProcess;
using test_support::run_to_exit;
using test_support::wait_first_tick;

// A directory under this test binary's own, removed when it exits.
std::filesystem::path temp_dir(const std::string& name) {
  static const test_support::TempDir root("chokepoint-reliability");
  auto dir = std::filesystem::path(root.path) / name;
  std::filesystem::create_directories(dir);
  return dir;
}

std::string integrity(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return "cannot open";
  }
  sqlite3_stmt* st = nullptr;
  std::string out = "no answer";
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

// The recorder writes one transaction per tick (every 10 ms here) and is killed anywhere: while
// it creates the file, between ticks, inside a commit, during a WAL checkpoint. The recorders run
// kInFlight at a time, each killed at its own moment, so the soak takes a quarter of the time
// one at a time took (68 s of CI's release phase); the calibration runs as many at once, so the
// moments are aimed at recorders that share the machine the same way.
TEST(RecordingReliability, SigkillAtRandomMomentsLeavesReplayableFiles) {
  auto lab = LabProcess::start({"--scenario", "none", "--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  const auto dir = temp_dir("kill");
  constexpr int kInFlight = 4;
  const std::vector<std::string> record_args = {
      "record", "--pid", std::to_string(lab->pid()), "-o", "", "--interval", "10ms"};
  auto start_recorder = [&](const std::string& file) {
    auto args = record_args;
    args[4] = file;
    return Background::start(chokepoint_bin(), args);
  };
  // How long a recorder takes to commit its first tick here, kInFlight started together (much
  // longer under ASan, or on a loaded machine), the median of them: half the kills land before it
  // (creating the file, the first commit), half up to 120 ms after it (between ticks, inside
  // commits, during checkpoints).
  std::int64_t first_tick_ms = 0;
  {
    std::vector<Background> recs;
    std::vector<std::string> files;
    for (int j = 0; j < kInFlight; ++j) {
      files.push_back((dir / ("calibrate" + std::to_string(j) + ".chokepoint")).string());
      auto rec = start_recorder(files.back());
      ASSERT_TRUE(rec) << rec.error().message;
      recs.push_back(std::move(*rec));
    }
    const auto t0 = std::chrono::steady_clock::now();
    const auto limit = t0 + std::chrono::seconds(10);
    std::vector<std::int64_t> ms;
    for (const auto& file : files) {
      const bool ticked = wait_first_tick(file, limit);
      ms.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - t0)
                       .count());
      if (!ticked) break;
    }
    for (auto& rec : recs) {
      ::kill(rec.pid(), SIGKILL);
      (void)rec.wait(5000);
    }
    ASSERT_EQ(ms.size(), files.size()) << "a recorder wrote no tick within 10 s";
    // Polled in order, each time is at least the one before: the middle one is the median.
    first_tick_ms = ms[ms.size() / 2];
  }
  std::mt19937 rng(20261204);
  std::uniform_int_distribution<std::int64_t> before_ms(0, first_tick_ms);
  std::uniform_int_distribution<std::int64_t> after_ms(first_tick_ms, first_tick_ms + 120);
  // 200 kills in the release build. Under the sanitizers (make asan-test) 20: what ASan checks is
  // the code each kill interrupts (creating the file, the first commit, a commit, a checkpoint,
  // the replay of what is left), which 20 kills at the same two spreads reach; 200 ASan kills
  // took 55 s of CI (docs/testing.md).
#if defined(__SANITIZE_ADDRESS__)
  constexpr int kKills = 20;
#else
  constexpr int kKills = 200;
#endif
  int with_ticks = 0;
  int killed = 0;
  for (int first = 0; first < kKills; first += kInFlight) {
    struct Shot {
      std::string file;
      Background rec;
      std::chrono::steady_clock::time_point at;
    };
    std::vector<Shot> shots;
    for (int i = first; i < std::min(kKills, first + kInFlight); ++i) {
      std::string file = (dir / ("k" + std::to_string(i) + ".chokepoint")).string();
      const auto delay = std::chrono::milliseconds(i % 2 == 0 ? before_ms(rng) : after_ms(rng));
      auto rec = start_recorder(file);
      ASSERT_TRUE(rec) << rec.error().message;
      shots.push_back({std::move(file), std::move(*rec), std::chrono::steady_clock::now() + delay});
    }
    std::vector<std::size_t> order(shots.size());
    for (std::size_t j = 0; j < order.size(); ++j) order[j] = j;
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return shots[a].at < shots[b].at; });
    for (const std::size_t j : order) {
      std::this_thread::sleep_until(shots[j].at);
      ASSERT_EQ(::kill(shots[j].rec.pid(), SIGKILL), 0);
    }
    for (auto& shot : shots) {
      const std::string& file = shot.file;
      auto code = shot.rec.wait(5000);
      ASSERT_TRUE(code);
      ASSERT_EQ(*code, 128 + SIGKILL);
      ++killed;
      if (!std::filesystem::exists(file)) continue;  // killed before it created the file
      ASSERT_EQ(integrity(file), "ok") << file;
      auto reader = store::RecordingReader::open(file);
      if (!reader) {
        // Killed before the transaction that creates the schema committed: an empty database.
        EXPECT_NE(reader.error().message.find("not a chokepoint recording"), std::string::npos)
            << reader.error().message;
        continue;
      }
      // Every committed tick replays.
      std::size_t ticks = 0;
      auto read = reader->read_ticks(std::numeric_limits<std::int64_t>::max(), [&](model::Tick&&) {
        ++ticks;
        return true;
      });
      ASSERT_TRUE(read) << file << ": " << read.error().message;
      if (ticks > 0) {
        auto samples = store::read_all(file);
        ASSERT_TRUE(samples);
        EXPECT_EQ(samples->ticks.size(), ticks);
        model::Observation obs = model::build_observation(samples->info, samples->ticks);
        EXPECT_FALSE(obs.threads.empty()) << file;
        ++with_ticks;
      }
      std::filesystem::remove(file);
      std::filesystem::remove(file + "-wal");
      std::filesystem::remove(file + "-shm");
    }
  }
  EXPECT_EQ(killed, kKills);
  // The kills aimed after the first tick found ticks to replay (a few may land just before it:
  // the calibration is one round).
  EXPECT_GT(with_ticks, kKills / 3) << "first tick after " << first_tick_ms << " ms";
}

// Replays and plain sqlite3 readers while the recorder writes: the writer never fails, and every
// read sees a consistent recording.
TEST(RecordingReliability, ReadersDoNotDisturbTheWriter) {
  auto lab = LabProcess::start({"--scenario", "none", "--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  const std::string file = (temp_dir("readers") / "busy.chokepoint").string();
  auto writer =
      Background::start(chokepoint_bin(), {"record", "--pid", std::to_string(lab->pid()), "-o",
                                           file, "--interval", "10ms", "--duration", "3s"});
  ASSERT_TRUE(writer);
  int reads = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(2500);
  while (std::chrono::steady_clock::now() < until) {
    auto samples = store::read_all(file);
    if (samples) {
      ++reads;
      for (std::size_t i = 1; i < samples->ticks.size(); ++i) {
        ASSERT_LT(samples->ticks[i - 1].at_ns, samples->ticks[i].at_ns);
      }
      EXPECT_FALSE(model::build_observation(samples->info, samples->ticks).threads.empty() &&
                   samples->ticks.size() > 1);
    }
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_exec(db, "SELECT count(*), sum(threads), sum(run_ns) FROM thread_pack", nullptr,
                   nullptr, nullptr);
    }
    sqlite3_close(db);
  }
  auto code = writer->wait(10000);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 0) << "the writer lost ticks or failed while read";
  EXPECT_GT(reads, 10);
  EXPECT_EQ(integrity(file), "ok");
}

// A tmpfs of 2 MiB, filled up while a recorder writes to it, then emptied again.
TEST(RecordingReliability, FullDiskPausesAndResumes) {
  const auto dir = temp_dir("tmpfs");
  ASSERT_EQ(::mount("chokepoint-test", dir.c_str(), "tmpfs", 0, "size=2m"), 0)
      << "mount tmpfs: " << strerror(errno);
  struct Unmount {
    std::filesystem::path dir;
    ~Unmount() { ::umount2(dir.c_str(), MNT_DETACH); }
  } unmount{dir};
  auto lab = LabProcess::start({"--scenario", "none", "--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  const std::string file = (dir / "full.chokepoint").string();
  const std::string err_path = (temp_dir("tmpfs_log") / "stderr").string();
  // stderr to a file: the messages are what the user sees.
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 2);
    const std::string bin = chokepoint_bin();
    const std::string target = std::to_string(lab->pid());
    execl(bin.c_str(), bin.c_str(), "record", "--pid", target.c_str(), "-o", file.c_str(),
          "--interval", "10ms", static_cast<char*>(nullptr));
    _exit(127);
  }
  auto log = [&] {
    std::ifstream in(err_path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  // Recording first (its "recording ..." line), then the disk fills: a fixed 500 ms was less than
  // the ASan build's start on a CI VM, and the file could not even be created.
  for (int i = 0; i < 300 && log().find("chokepoint: recording ") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_NE(log().find("chokepoint: recording "), std::string::npos) << log();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // Fill what is left.
  const std::string filler = (dir / "filler").string();
  {
    std::ofstream out(filler, std::ios::binary);
    std::string block(4096, 'x');
    while (out.write(block.data(), static_cast<std::streamsize>(block.size()))) {
    }
  }
  for (int i = 0; i < 100 && log().find("paused") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(log().find("error: "), std::string::npos) << log();
  EXPECT_NE(log().find("hint: "), std::string::npos) << log();
  EXPECT_NE(log().find("full"), std::string::npos) << log();
  EXPECT_EQ(::kill(pid, 0), 0) << "the recorder must keep running";
  std::filesystem::remove(filler);
  for (int i = 0; i < 100 && log().find("resumed") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(log().find("recording resumed"), std::string::npos) << log();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_EQ(::kill(pid, SIGINT), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  // Ticks were lost while the disk was full: the exit says so.
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1) << log();
  EXPECT_NE(log().find("lost"), std::string::npos) << log();
  EXPECT_EQ(integrity(file), "ok");
  auto samples = store::read_all(file);
  ASSERT_TRUE(samples) << samples.error().message;
  model::Observation obs = model::build_observation(samples->info, samples->ticks);
  EXPECT_FALSE(obs.threads.empty());
  EXPECT_GT(obs.duration_ns, 500'000'000);
}

}  // namespace
}  // namespace chokepoint::recording_test
