// A real program that joins its worker threads (issue 15): Debian's stress-ng, its pthread
// stressor, one instance. Its main thread starts 8 threads at a time, waits until they run,
// broadcasts them to end and joins each one. The threads live a few milliseconds, less than a
// sampling interval, so schedstat never reads them; the wait-for graph sees each exit wake the
// joiner (the thread-id word the kernel clears). The main thread's join wait must be given to
// those threads: a chain from it to the group of short-lived threads, naming their state, in the
// rule of the state they spent their busy time in (docs/verdicts/cpu.md, "Joining short-lived
// threads"). Bounded: stress-ng stops itself after
// 20 s, and the test kills it when it ends.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "support/background.h"
#include "support/cli.h"

namespace chokepoint {
namespace {

using test_support::Background;

// The stressor process: the child stress-ng starts (its /proc children list); 0 when it has
// not started within 5 s.
pid_t stressor_of(pid_t parent) {
  for (int i = 0; i < 50; ++i) {
    std::ifstream f("/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) +
                    "/children");
    pid_t child = 0;
    if (f >> child && child > 0) return child;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return 0;
}

TEST(JoinedThreads, StressNgsJoinerWaitsForItsShortLivedThreadsAndTheChainNamesTheirState) {
  if (access("/usr/bin/stress-ng", X_OK) != 0) {
    GTEST_FAIL() << "stress-ng is missing: run scripts/setup";
  }
  // The wait-for graph is the exact mode's (eBPF), which needs root.
  if (geteuid() != 0) GTEST_SKIP() << "needs root: the wait-for graph is loaded with eBPF";
  auto stress = Background::start(
      "stress-ng", {"--pthread", "1", "--pthread-max", "8", "--timeout", "20s", "--quiet"});
  ASSERT_TRUE(stress) << stress.error().message;
  const pid_t pid = stressor_of(stress->pid());
  ASSERT_GT(pid, 0) << "stress-ng started no stressor";
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto r = test_support::run_chokepoint({"diagnose", "--pid", std::to_string(pid), "-d", "3s",
                                         "--no-stacks", "--no-probes", "--json"},
                                        60);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  const auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.stdout_text;
  // The main thread (tid = pid) waited in pthread_join, and that wait was given to the states of
  // the threads it joined.
  bool main_seen = false;
  for (const auto& t : j["threads"]) {
    if (t["tid"] != pid) continue;
    main_seen = true;
    ASSERT_TRUE(t.contains("waited_for_s")) << t.dump();
    double waited_s = 0;
    for (const auto& [state, s] : t["waited_for_s"].items()) waited_s += s.get<double>();
    EXPECT_GT(waited_s, 0.05) << t.dump();
  }
  EXPECT_TRUE(main_seen) << j["threads"].dump();
  // The chain: from the main thread to the group of short-lived threads, with their state, in
  // the bottleneck of the state that took most of the group's busy time (on a CPU or runnable on
  // a quiet machine: the cpu rule; blocked in the stressor's mutex when other programs take the
  // cores: the lock rule). It must never be lost.
  const nlohmann::json* with_chain = nullptr;
  for (const auto& b : j["bottlenecks"]) {
    if (!b.contains("chains")) continue;
    for (const auto& c : b["chains"]) {
      if (c["waiters"][0]["tid"] == pid && c["root"].contains("short_lived_threads")) {
        with_chain = &b;
      }
    }
  }
  ASSERT_NE(with_chain, nullptr) << j["bottlenecks"].dump(1);
  const std::string resource = (*with_chain)["resource"];
  ASSERT_TRUE(resource == "cpu" || resource == "lock") << with_chain->dump(1);
  const auto& chain = (*with_chain)["chains"][0];
  EXPECT_EQ(chain["waiters"][0]["tid"], pid) << chain.dump();
  ASSERT_TRUE(chain["root"].contains("short_lived_threads")) << chain.dump();
  // Several rounds of 8 threads in 3 s, a few of which the joiner waited for.
  EXPECT_GE(chain["root"]["short_lived_threads"].get<int>(), 8) << chain.dump();
  const std::string prefix =
      "thread 'stress-ng-pthre' (tid " + std::to_string(pid) + ") waits for ";
  std::string line;
  for (const auto& e : (*with_chain)["evidence"]) {
    const std::string text = e.get<std::string>();
    if (text.rfind(prefix, 0) == 0 && text.find(" short-lived threads") != std::string::npos &&
        text.find("of their lives") != std::string::npos) {
      line = text;
    }
  }
  ASSERT_FALSE(line.empty()) << (*with_chain)["evidence"].dump(1);
  // The line's shares agree with the rule that shows it: "on a CPU or runnable N%" against
  // "blocked in lock M%" (a state under 1% is not named: 0).
  auto share_of = [&](const std::string& state) {
    for (auto at = line.find(state + " "); at != std::string::npos;
         at = line.find(state + " ", at + 1)) {
      const std::size_t digits = at + state.size() + 1;
      if (digits < line.size() && std::isdigit(static_cast<unsigned char>(line[digits]))) {
        return std::stoi(line.substr(digits));
      }
    }
    return 0;
  };
  // The root's own state reads "on a CPU or runnable (not blocked) N%" (rules/format.cpp); among
  // the others, "on a CPU or runnable N%".
  const int cpu_pct =
      std::max(share_of("on a CPU or runnable (not blocked)"), share_of("on a CPU or runnable"));
  const int lock_pct = share_of("blocked in lock");
  if (resource == "cpu") {
    EXPECT_GE(cpu_pct, lock_pct) << line;
  } else {
    EXPECT_GE(lock_pct, cpu_pct) << line;
  }
}

}  // namespace
}  // namespace chokepoint
