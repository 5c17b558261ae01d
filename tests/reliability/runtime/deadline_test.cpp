// Regression (issue 18 item 2): deadlines that hold under load. On a CPU-saturated target with
// 5,000 threads (100 spinning, 4,900 waking every 50 ms), beside a CPU hog on both cores,
// `diagnose --duration 5s` took 33-37 s and `profile --duration 2s` 44.8 s: chokepoint, one thread
// at nice 0 among a hundred runnable ones, got a few percent of a core. A run now ends by what was
// asked plus the documented grace (app/run_budget.h: 5 s), counted from main(), and says where its
// time went, the dynamic loader's part before main() included ("loading").
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>
#include <iostream>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/background.h"
#include "support/cli.h"
#include "support/files.h"

namespace chokepoint::reliability_test {
namespace {

using test_support::Background;
using test_support::run_chokepoint;

constexpr int kThreads = 5000;
constexpr double kGraceS = 5.0;  // RunBudget::kGraceNs
// Starting and ending the chokepoint process itself (fork, exec, exit), outside its own clock.
constexpr double kProcessSlackS = 1.0;

std::size_t thread_count(pid_t pid) {
  std::error_code ec;
  std::size_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

class SaturatedTarget : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t =
        Background::start(RELIABILITY_TARGET, {"threads", std::to_string(kThreads), "100", "50"});
    ASSERT_TRUE(t) << t.error().message;
    target_.emplace(std::move(*t));
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(40);
    while (thread_count(target_->pid()) < kThreads + 1) {
      ASSERT_LT(std::chrono::steady_clock::now(), give_up)
          << "the target started only " << thread_count(target_->pid()) << " threads";
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    // The hogs once the target runs: before, they slow its start, not what is measured.
    for (int i = 0; i < 2; ++i) {
      auto hog = Background::start("sh", {"-c", "while :; do :; done"});
      ASSERT_TRUE(hog) << hog.error().message;
      hogs_.push_back(std::move(*hog));
    }
  }
  // The saturation ends first, while the test's thread still runs at nice -20 (timed_run): back at
  // nice 0 among the target's hundred runnable threads it got a few percent of a core, and parsing
  // the report and reaching this teardown took 122 s of the test's 145 on a loaded machine.
  void TearDown() override {
    hogs_.clear();
    target_.reset();
    // Back to 0: processes the test starts later (the next case's target) inherit its nice value.
    setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 0);
  }
  std::vector<Background> hogs_;
  std::optional<Background> target_;
};

// The test's own thread runs at nice -20, so that its clock reads when chokepoint ends, not when a
// starved test gets to notice; chokepoint starts at nice 0 through nice(1), as a user's would. The
// thread stays at nice -20 until TearDown has ended the saturation.
double timed_run(std::vector<std::string> args, test_support::ExitResult& out) {
  EXPECT_EQ(setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), -20), 0) << "needs root";
  args.insert(args.begin(), {"-n", "20", test_support::chokepoint_bin()});
  const auto t0 = std::chrono::steady_clock::now();
  auto r = test_support::run_to_exit(args, "/usr/bin/nice", std::chrono::seconds(120));
  EXPECT_TRUE(r) << r.error().message;
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (r) out = *r;
  return wall_s;
}

TEST_F(SaturatedTarget, DiagnoseEndsByItsDeadline) {
  test_support::ExitResult r;
  const double wall_s = timed_run(
      {"diagnose", "--pid", std::to_string(target_->pid()), "--duration", "5s", "--json"}, r);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  std::cout << "diagnose --duration 5s: " << wall_s << " s wall\n";
  auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["verdict"], "cpu");
  // 5 s window + 2 s stacks + the grace, from main(): the dynamic loader's time before it (each
  // of its page faults and system calls waits for a core beside this target: 2 to 10 s at nice 0
  // here) is reported as the "loading" phase, which no code of chokepoint's can cut.
  const double loading_s = j["run"]["phases_s"]["loading"].get<double>();
  std::cout << "loading before main(): " << loading_s << " s\n";
  EXPECT_LE(wall_s - loading_s, 5.0 + 2.0 + kGraceS + kProcessSlackS) << j["run"].dump();
  EXPECT_LE(j["run"]["wall_s"].get<double>() - loading_s, j["run"]["promised_s"].get<double>())
      << j["run"].dump();
  // The own cost covers the whole run, not only the window.
  EXPECT_GE(j["overhead"]["run_wall_s"].get<double>(), 5.0) << j["overhead"].dump();
  EXPECT_GE(j["overhead"]["run_cpu_s"].get<double>(), j["overhead"]["cpu_s"].get<double>());
}

TEST_F(SaturatedTarget, ProfileEndsByItsDeadline) {
  test_support::TempDir dir("chokepoint-deadline-test");
  test_support::ExitResult r;
  const double wall_s = timed_run({"profile", "--pid", std::to_string(target_->pid()), "--duration",
                                   "2s", "-o", dir.path + "/out.folded"},
                                  r);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  std::cout << "profile --duration 2s: " << wall_s << " s wall\n";
  // From main(), as above: the summary names the loading when it took a second or more.
  const std::string loading = "s: loading ";
  const auto loading_at = r.stderr_text.find(loading);
  const double loading_s = loading_at == std::string::npos
                               ? 0.0
                               : std::stod(r.stderr_text.substr(loading_at + loading.size()));
  EXPECT_LE(wall_s - loading_s, 2.0 + kGraceS + kProcessSlackS) << r.stderr_text;
  // The run's own clock starts when the process is exec'd: beside this target a nice-0 process
  // spent seconds loading before main(), time the cost line left out (6.2 s of wall, "took 3.1 s").
  const std::string took = "chokepoint: the run took ";
  const auto at = r.stderr_text.find(took);
  ASSERT_NE(at, std::string::npos) << r.stderr_text;
  const double took_s = std::stod(r.stderr_text.substr(at + took.size()));
  EXPECT_LE(wall_s - took_s, kProcessSlackS) << r.stderr_text;
  // Opening one event per thread is cut by its deadline, and the busiest threads are opened first:
  // the spinning ones, created last, are in the profile (in creation order they were left
  // unopened: 0 samples). Unless the machine was so busy that the deadline left no time to sample
  // (the capture ran under 1.5 s) or to name them (lookups after the symbolization deadline): the
  // deadline comes first, and the notes say so.
  const std::string ran = "the capture ran ";
  const auto ran_at = r.stderr_text.find(ran);
  const double captured_s =
      ran_at == std::string::npos ? 2.0 : std::stod(r.stderr_text.substr(ran_at + ran.size()));
  const bool unnamed = r.stderr_text.find("after the symbolization deadline") != std::string::npos;
  if (captured_s >= 1.5 && !unnamed) {
    const std::string folded = test_support::read_file(dir.path + "/out.folded");
    EXPECT_NE(folded.find("spin"), std::string::npos) << r.stderr_text << folded;
  } else {
    std::cout << "the capture ran " << captured_s << " s" << (unnamed ? ", frames unnamed" : "")
              << ": too busy a machine to check which threads were sampled\n";
  }
}

}  // namespace
}  // namespace chokepoint::reliability_test

namespace chokepoint::reliability_test {
namespace {

// What the loading phase costs grows with the libraries loaded at exec: 53 (libcurl, libpq,
// libmicrohttpd and libmemcached brought 33 of them) took 4.5-6.5 s beside the target above, 20
// took 1.8-3.4 s. Those four are opened when a probe or the agent's server first needs them
// (util/shared_library.h); this keeps one from coming back as a link dependency unnoticed.
TEST(Loading, OnlyLibrariesEveryRunNeedsAreLoadedAtExec) {
  auto r = test_support::run_to_exit({"-d", test_support::chokepoint_bin()}, "/usr/bin/readelf",
                                     std::chrono::seconds(30));
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->exit_code, 0) << r->stderr_text;
  ASSERT_NE(r->stdout_text.find("(NEEDED)"), std::string::npos) << r->stdout_text;
  for (const char* lib : {"libcurl", "libpq", "libmicrohttpd", "libmemcached", "libgnutls",
                          "libssl", "libkrb5", "libldap"}) {
    EXPECT_EQ(r->stdout_text.find(std::string("[") + lib), std::string::npos)
        << lib << " is loaded at exec:\n"
        << r->stdout_text;
  }
}

}  // namespace
}  // namespace chokepoint::reliability_test
