// chokepoint stacks on a program with known stacks (stacks_target.c): a thread parked on a mutex,
// one in read() on a pipe and one in sleep(). The dump must name each thread's function, its
// syscall and the wait model::classify_wait gives it, and report how long the threads were
// stopped. Plus the error contract (no such process, a tid of another process, no --pid).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "support/background.h"
#include "support/cli.h"

namespace chokepoint::stacks_test {
namespace {

using test_support::Background;
using test_support::expect_cli_error;
using test_support::run_chokepoint;

const std::string kTarget = STACKS_TARGET;

// True once `pid` has `threads` threads, all asleep (state S).
bool all_asleep(pid_t pid, std::size_t threads) {
  std::size_t asleep = 0;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(e.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto paren = stat.rfind(')');
    if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'S') ++asleep;
  }
  return !ec && asleep == threads;
}

Background start_target() {
  auto target = Background::start(kTarget, {});
  EXPECT_TRUE(target) << target.error().message;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!all_asleep(target->pid(), 4) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // Past the first sleep: the main thread sits in pause() once this holds.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  return std::move(target).value();
}

// The group whose frames include `function`, or nullptr.
const nlohmann::json* group_with(const nlohmann::json& dump, const std::string& function) {
  for (const auto& g : dump["groups"]) {
    for (const auto& f : g["frames"]) {
      if (f["name"] == function) return &g;
    }
  }
  return nullptr;
}

TEST(StacksTest, NamesEachThreadsFunctionAndWait) {
  Background target = start_target();
  auto r = run_chokepoint({"stacks", "--pid", std::to_string(target.pid()), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  const auto dump = nlohmann::json::parse(r.stdout_text);
  EXPECT_EQ(dump["threads"], 4);
  EXPECT_EQ(dump["threads_stopped"], 4);
  EXPECT_GT(dump["stop_max_us"].get<double>(), 0);
  EXPECT_GE(dump["stop_max_us"].get<double>(), dump["stop_median_us"].get<double>());

  const auto* mutex = group_with(dump, "park_in_mutex");
  ASSERT_NE(mutex, nullptr) << r.stdout_text;
  EXPECT_EQ((*mutex)["syscall"], "futex");
  EXPECT_EQ((*mutex)["resource"], "lock");
  EXPECT_EQ((*mutex)["threads"][0]["name"], "in-mutex");
  EXPECT_NE(group_with(dump, "pthread_mutex_lock@@GLIBC_2.2.5"), nullptr) << r.stdout_text;
  EXPECT_NE(group_with(dump, "mutex_thread"), nullptr);

  const auto* read = group_with(dump, "park_in_read");
  ASSERT_NE(read, nullptr) << r.stdout_text;
  EXPECT_EQ((*read)["syscall"], "read");
  EXPECT_EQ((*read)["waits"][0]["detail"], "read pipe");
  EXPECT_EQ((*read)["threads"][0]["name"], "in-read");

  const auto* sleep = group_with(dump, "park_in_sleep");
  ASSERT_NE(sleep, nullptr) << r.stdout_text;
  EXPECT_EQ((*sleep)["syscall"], "clock_nanosleep");
  EXPECT_EQ((*sleep)["resource"], "sleep");

  const auto* main_thread = group_with(dump, "main");
  ASSERT_NE(main_thread, nullptr) << r.stdout_text;
  EXPECT_EQ((*main_thread)["syscall"], "pause");

  // The threads run on afterwards: the process is alive and its threads are asleep again, none
  // left stopped or traced.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(all_asleep(target.pid(), 4));
}

TEST(StacksTest, TextGroupsAndOneThread) {
  Background target = start_target();
  auto r = run_chokepoint({"stacks", "--pid", std::to_string(target.pid())});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  for (const char* name : {"park_in_mutex", "park_in_read", "park_in_sleep", "4 threads",
                           "wait lock: mutex", "in read  wait idle: read pipe", "median"}) {
    EXPECT_NE(r.stdout_text.find(name), std::string::npos) << name << "\n" << r.stdout_text;
  }
  // --tid: the main thread alone.
  auto one = run_chokepoint(
      {"stacks", "--pid", std::to_string(target.pid()), "--tid", std::to_string(target.pid())});
  ASSERT_EQ(one.exit_code, 0) << one.stderr_text;
  EXPECT_NE(one.stdout_text.find("1 thread, 1 distinct stack"), std::string::npos)
      << one.stdout_text;
  EXPECT_EQ(one.stdout_text.find("park_in_read"), std::string::npos) << one.stdout_text;
}

TEST(StacksTest, BadTargetsAreErrorsWithHints) {
  expect_cli_error(run_chokepoint({"stacks"}), 2, "--pid");
  // A pid beyond pid_max never exists.
  expect_cli_error(run_chokepoint({"stacks", "--pid", "2000000000"}), 1, "process 2000000000");
  expect_cli_error(run_chokepoint({"stacks", "--pid", std::to_string(getpid()), "--tid", "1"}), 1,
                   "thread 1 is not a thread");
}

}  // namespace
}  // namespace chokepoint::stacks_test
