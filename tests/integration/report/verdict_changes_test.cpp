// Why the verdict over time changed (report/verdict_changes.h), on a real recording: two labs
// under one parent shell, recorded as one target (--pid SHELL --children) while the CPU-bound lab
// is under load and then the disk-bound one. The columns' verdict goes from cpu to disk, and the
// change says what moved: disk's share of busy time up, the disk lab's workers into fdatasync on
// its disk.dat, the CPU lab's loops off the CPU. The disk lab has 4 workers for its 16
// connections, so that each worker spends most of a column in fdatasync (with 32, the default,
// each was idle more than half of it). `chokepoint replay` of the same recording lists the same
// changes with the same sentences, as text and as JSON.
//
// The loads start once the recording holds its first tick, and the recorder is stopped (SIGINT)
// once they are done: at load average 30-55 the recorder took about 3 s from creating its file to
// its first tick, so a test that waited for the file alone recorded the disk phase only (its
// columns read disk, then cpu, then none) and never saw the verdict turn from cpu to disk.
#include "report/verdict_changes.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "report/timeline.h"
#include "store/recording.h"
#include "support/background.h"
#include "support/cli.h"
#include "support/recording_wait.h"

namespace chokepoint::report {
namespace {

using test_support::Background;
using test_support::run_chokepoint;

struct ReadyLab {
  pid_t pid = 0;
  int port = 0;
};

// The lab's ready line in `file` ("listening on 127.0.0.1:PORT ... pid=PID"), once it is there.
std::optional<ReadyLab> ready_lab(const std::string& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  std::smatch m;
  const std::string s = text.str();
  if (!std::regex_search(s, m, std::regex(R"(listening on 127\.0\.0\.1:(\d+) .*pid=(\d+))"))) {
    return std::nullopt;
  }
  return ReadyLab{static_cast<pid_t>(std::stoi(m[2])), std::stoi(m[1])};
}

// Two labs, children of one shell that waits for them; both stopped (SIGTERM) when it goes.
class TwoLabs {
 public:
  explicit TwoLabs(const std::string& dir) : dir_(dir) {
    const std::string lab = std::string(CHOKEPOINT_BIN_DIR) + "/chokepoint-lab";
    auto sh = Background::start(
        "/bin/sh", {"-c", lab + " --port 0 --scenario cpu >" + dir + "/cpu.out 2>&1 & " + lab +
                              " --port 0 --scenario disk --blocking-workers 4 >" + dir +
                              "/disk.out 2>&1 & wait"});
    if (!sh) {
      ADD_FAILURE() << sh.error().message;
      return;
    }
    shell_.emplace(std::move(*sh));
    for (int i = 0; i < 300 && !(cpu && disk); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      cpu = ready_lab(dir + "/cpu.out");
      disk = ready_lab(dir + "/disk.out");
    }
  }
  ~TwoLabs() {
    for (const auto& l : {cpu, disk}) {
      if (l) ::kill(l->pid, SIGTERM);
    }
    if (shell_) (void)shell_->wait(10'000);
  }
  TwoLabs(const TwoLabs&) = delete;
  TwoLabs& operator=(const TwoLabs&) = delete;

  pid_t shell_pid() const { return shell_ ? shell_->pid() : -1; }
  std::optional<ReadyLab> cpu, disk;

 private:
  std::string dir_;
  std::optional<Background> shell_;
};

// The recording cut into columns of 1 s, as the report cuts it.
nlohmann::json timeline_of(const std::string& path) {
  auto reader = store::RecordingReader::open(path);
  EXPECT_TRUE(reader) << reader.error().message;
  if (!reader) return nullptr;
  const auto range = reader->time_range();
  EXPECT_TRUE(range);
  if (!range) return nullptr;
  TimelineOptions options;
  options.column_ns = 1'000'000'000;
  TimelineBuilder builder(reader->info(), range->first, range->second, options);
  auto read = reader->read_ticks(range->second, [&](model::Tick&& t) {
    builder.add(t);
    return true;
  });
  EXPECT_TRUE(read) << read.error().message;
  return builder.finish(0);
}

// replay's verdict over time for the whole recording in columns of 1 s: the changes of the
// timeline cut the same way (`changes`), with their sentences.
void expect_replay_lists(const std::string& rec, const nlohmann::json& changes) {
  const auto json_run = run_chokepoint({"replay", rec, "--json", "--column", "1s"}, 60);
  ASSERT_EQ(json_run.exit_code, 0) << json_run.stderr_text;
  const auto j = nlohmann::json::parse(json_run.stdout_text);
  ASSERT_TRUE(j.contains("verdict_over_time")) << json_run.stdout_text.substr(0, 2000);
  const auto& listed = j["verdict_over_time"]["changes"];
  ASSERT_EQ(listed.size(), changes.size()) << listed.dump(1);
  for (std::size_t i = 0; i < changes.size(); ++i) {
    EXPECT_EQ(listed[i]["column"], changes[i]["column"]);
    EXPECT_EQ(listed[i]["from"], changes[i]["from"]);
    EXPECT_EQ(listed[i]["to"], changes[i]["to"]);
    EXPECT_EQ(listed[i]["text"], changes[i]["text"]);
    EXPECT_EQ(listed[i]["threads"].size(), changes[i]["threads"].size());
  }
  const auto text_run = run_chokepoint({"replay", rec, "--column", "1s"}, 60);
  ASSERT_EQ(text_run.exit_code, 0) << text_run.stderr_text;
  const std::string& out = text_run.stdout_text;
  EXPECT_NE(out.find(fmt::format("Verdict over time ({} columns of 1 s): ",
                                 j["verdict_over_time"]["columns"].get<std::size_t>())),
            std::string::npos)
      << out;
  for (const auto& c : changes) {
    const std::string line = fmt::format("  at {:.1f} s: {} -> {}\n    why: {}\n",
                                         c["at_s"].get<double>(), c["from"].get<std::string>(),
                                         c["to"].get<std::string>(), c["text"].get<std::string>());
    EXPECT_NE(out.find(line), std::string::npos) << line << "\nnot in:\n" << out;
  }
  std::cout << out.substr(
                   out.find("Verdict over time"),
                   out.find("\n\n", out.find("Verdict over time")) - out.find("Verdict over time"))
            << "\n";
}

TEST(VerdictChanges, CpuLabThenDiskLabSaysWhatMoved) {
  char tmpl[] = "/tmp/chokepoint-verdict-changes-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  // A failure keeps the recording and the labs' output to look at.
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      if (::testing::Test::HasFailure()) {
        std::cerr << "kept " << dir << "\n";
      } else {
        std::filesystem::remove_all(dir);
      }
    }
  } cleanup{dir};
  {
    TwoLabs labs(dir);
    ASSERT_TRUE(labs.cpu && labs.disk) << "the labs did not start";
    const std::string rec = dir + "/two.chokepoint";
    auto recorder = Background::start(
        test_support::chokepoint_bin(),
        {"record", "--pid", std::to_string(labs.shell_pid()), "--children", "--interval", "200ms",
         "--duration", "60s", "--stacks", "off", "-o", rec});
    ASSERT_TRUE(recorder) << recorder.error().message;
    ASSERT_TRUE(test_support::wait_first_tick(
        rec, std::chrono::steady_clock::now() + std::chrono::seconds(20),
        std::chrono::milliseconds(20)))
        << "the recorder wrote no tick within 20 s";
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    // 3 s of the CPU-bound lab, then 3 s of the disk-bound one.
    for (const auto& [port, connections] :
         {std::pair{labs.cpu->port, "4"}, std::pair{labs.disk->port, "16"}}) {
      const auto load = run_chokepoint(
          {"load", "http://127.0.0.1:" + std::to_string(port) + "/", "-c", connections, "-d", "3s"},
          30);
      ASSERT_EQ(load.exit_code, 0) << load.stderr_text;
    }
    // A column of the disk lab at rest after its load, then the recording ends (Ctrl-C).
    std::this_thread::sleep_for(std::chrono::milliseconds(1'000));
    ::kill(recorder->pid(), SIGINT);
    auto code = recorder->wait(30'000);
    ASSERT_TRUE(code && *code == 0);

    const nlohmann::json timeline = timeline_of(rec);
    ASSERT_TRUE(timeline.is_object());
    const auto& verdicts = timeline["verdicts"];
    std::vector<std::string> labels;
    for (const auto& v : verdicts) labels.push_back(verdict_label(v));
    // The columns' verdicts: cpu while the first lab was loaded, disk while the second was.
    std::size_t last_cpu = labels.size(), first_disk = labels.size();
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (labels[i].rfind("cpu", 0) == 0 && first_disk == labels.size()) last_cpu = i;
      if (labels[i].rfind("disk", 0) == 0 && last_cpu < labels.size() && i > last_cpu &&
          first_disk == labels.size()) {
        first_disk = i;
      }
    }
    ASSERT_LT(first_disk, labels.size()) << timeline["verdicts"].dump();
    // The changes between the last cpu column and the first disk column: the one into disk, and
    // the one off cpu (the same one when nothing came between).
    const nlohmann::json& changes = timeline["changes"];
    EXPECT_EQ(changes, verdict_changes(timeline));
    const nlohmann::json* into_disk = nullptr;
    const nlohmann::json* off_cpu = nullptr;
    for (const auto& c : changes) {
      const auto at = c["column"].get<std::size_t>();
      if (at == first_disk) into_disk = &c;
      if (at == last_cpu + 1) off_cpu = &c;
    }
    ASSERT_TRUE(into_disk && off_cpu) << changes.dump(1);
    SCOPED_TRACE(changes.dump(1));
    EXPECT_EQ((*off_cpu)["from"].get<std::string>().rfind("cpu", 0), 0u);
    EXPECT_EQ((*into_disk)["to"].get<std::string>().rfind("disk", 0), 0u);

    // Disk's share of busy time went up into the disk column.
    bool disk_up = false;
    for (const auto& m : (*into_disk)["moved"]) {
      if (m["resource"] == "disk") disk_up = m["after"].get<double>() > m["before"].get<double>();
    }
    EXPECT_TRUE(disk_up);
    // The disk lab's workers moved into disk, in a write-back of its disk.dat.
    bool workers = false;
    for (const auto& g : (*into_disk)["threads"]) {
      if (g["pid"] == labs.disk->pid && g["to"] == "disk") {
        workers =
            workers || (g["names"] == "lab-worker" && g["count"].get<int>() >= 2 &&
                        g["to_detail"].get<std::string>().find("disk.dat") != std::string::npos);
      }
    }
    EXPECT_TRUE(workers);
    // The CPU lab's event loops left the CPU: from on_cpu, or from cpu_wait when the machine's
    // two cores were busier than they (a loaded CI machine: 77% of busy time in the run queue).
    // The change that says so is the one in which they left: the one off cpu when the disk lab
    // took the verdict at once, an earlier one when the verdict stayed cpu into the disk phase.
    // Beside `stress-ng --cpu 8` the disk lab's workers waited for a core more than for the disk
    // in its first columns (cpu_wait 52-56% of busy time, disk 40-42%): those columns read cpu
    // (saturated), rightly, and the loops' move was the change within cpu a column or two before.
    const std::size_t first_cpu = [&] {
      std::size_t i = last_cpu;
      while (i > 0 && labels[i - 1].rfind("cpu", 0) == 0) --i;
      return i;
    }();
    bool loops = false;
    for (const auto& c : changes) {
      const auto at = c["column"].get<std::size_t>();
      if (at <= first_cpu || at > first_disk) continue;
      for (const auto& g : c["threads"]) {
        if (g["pid"] == labs.cpu->pid && (g["from"] == "on_cpu" || g["from"] == "cpu_wait")) {
          loops = loops || g["names"].get<std::string>().rfind("lab-loop-", 0) == 0;
        }
      }
    }
    EXPECT_TRUE(loops) << "no change from column " << first_cpu + 1 << " to " << first_disk
                       << " names the CPU lab's loops leaving the CPU";
    const std::string text = (*into_disk)["text"];
    std::cout << "at " << (*into_disk)["at_s"] << " s " << (*into_disk)["from"].get<std::string>()
              << " -> " << (*into_disk)["to"].get<std::string>() << ": " << text << "\n";
    EXPECT_NE(text.find("of busy time"), std::string::npos) << text;
    EXPECT_NE(text.find("lab-worker of pid " + std::to_string(labs.disk->pid)), std::string::npos)
        << text;
    EXPECT_NE(text.find("to disk ("), std::string::npos) << text;
    expect_replay_lists(rec, changes);
  }
}

}  // namespace
}  // namespace chokepoint::report
