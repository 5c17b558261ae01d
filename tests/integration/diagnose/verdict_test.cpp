// Verdicts on the real lab: for every scenario (and both threading models where they apply),
// start chokepoint-lab, drive it with real load, run `chokepoint diagnose --json` on it, and check
// the verdict and kind. Then apply the scenario's fix and check that the verdict moves off the old
// bottleneck. Loopback only, except the bandwidth cases, which use a network namespace the test
// creates (10.200.N.0/30). Every run is bounded: 0.5 s of load before a 2 s diagnosis (and 2 s of
// stacks after it where a case checks them).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/background.h"
#include "support/cli.h"
#include "support/lab_process.h"
#include "support/netns.h"

namespace chokepoint::diagnose_test {
namespace {

using test_support::chokepoint_bin;

using test_support::Background;
using test_support::LabProcess;

enum class Load {
  kNone,        // no requests at all
  kClosed,      // wrk -t1 -c16: as fast as the lab answers
  kClosedNew,   // wrk -c64 with Connection: close: a new connection per request
  kClosedKeys,  // wrk -t1 -c16 with a random key per request (spreads lock shards)
  kRate,        // chokepoint load --rate `rate` on 4 connections
};

struct Case {
  std::string name;
  std::vector<std::string> lab_args;
  Load load = Load::kClosed;
  int rate = 0;
  std::string verdict;      // expected verdict; empty: only check `not_verdict`
  std::string kind;         // expected kind of the primary bottleneck; empty: any
  std::string not_verdict;  // after a fix: the verdict must not be this...
  std::string not_kind;     // ...with this kind (empty: any kind)
  bool needs_root = false;
  bool upstream = false;  // start a --role upstream lab and pass --upstream
  int upstream_delay_ms = 5;
  // As root with BPF and perf: an evidence line of the primary bottleneck names this function
  // (diagnose collects the verdict's stacks after the window).
  std::string stack_function;
  // When set: an evidence line of the primary bottleneck contains this text (from the window
  // itself, not the stacks, so it is checked everywhere).
  std::string evidence;
  // When above 0: the verdict's resource must hold at least this share of all the time.
  double min_time_share = 0;
  bool netns = false;  // run the lab behind a 20 mbit/s tbf link in a test namespace
  std::string path = "/";
  // The disk scenarios fsync on every request. Where storage absorbs fsyncs faster than the two
  // cores can make requests (a host write-back cache: 13,000 fsyncs/s from 16 connections on
  // this VM by 2026-12-04, when the session-start build also read cpu), the cores saturate
  // first and "cpu (saturated)" is the right verdict. Set for those cases: when the system CPU
  // was at least kCpuSaturated busy and the verdict is cpu (saturated), the expected bottleneck
  // must still be found, significant, with at least kRunnerUpShare of busy time.
  bool cpu_may_saturate_first = false;
  // diagnose --mode; empty: the default (auto, which is exact as root with BTF).
  std::string mode;
  // For a serial case: the thread all the work funnels through. cpu (serial) needs it on a CPU
  // at least kSerialOnCpu of the time (rules/cpu.cpp). Where other processes kept it queued for a
  // core more than the rest of its time, serial was out of reach on this host and cpu
  // (contended) is the verdict (docs/verdicts/cpu.md: "When the stage thread itself waits for a
  // core that other processes take"): then the test checks that the verdict is cpu, not serial,
  // and that the evidence's wait-for chain still ends at this thread. Beside `stress-ng --cpu 4`,
  // pipeline_epoll's stage thread was queued 0.75 of its time and on a CPU 0.25, so what held it
  // back first was the hogs (up to 4 times its CPU without them), not its being alone. The kind
  // was contended in 5 of 6 such runs and saturated in 1 (on_cpu 0.08, cpu_wait 0.32 of the
  // threads' time: the rule counted the target's queued threads as its own demand, 1.8 cores
  // here, although the hogs held the cores; since then it reads contended where other processes
  // keep more of the cores busy than the target, docs/verdicts/cpu.md). Saturated stays accepted:
  // a hog burst that ends inside the window can leave the target the larger user.
  std::string serial_thread;
};

constexpr double kCpuSaturated = 0.8;
constexpr double kRunnerUpShare = 0.25;
constexpr double kSerialOnCpu = 0.8;  // rules/cpu.cpp's busiest_fraction for serial

// The largest cpu_wait share of the threads named `comm` in the report (-1: none seen).
double cpu_wait_of(const nlohmann::json& j, const std::string& comm) {
  double most = -1;
  for (const auto& t : j["threads"]) {
    if (t["comm"] == comm) most = std::max(most, t["time_split"]["cpu_wait"].get<double>());
  }
  return most;
}

std::ostream& operator<<(std::ostream& os, const Case& c) {
  return os << c.name;
}

struct Run {
  nlohmann::json report;
  std::string text;
};

std::optional<Background> spawn(const std::string& binary, const std::vector<std::string>& args) {
  auto b = Background::start(binary, args);
  EXPECT_TRUE(b) << b.error().message;
  if (!b) return std::nullopt;
  return std::move(b).value();
}

// Long enough to cover the warm-up and the diagnosis; killed at the end of the test.
std::optional<Background> start_load(const Case& c, const std::string& host, std::uint16_t port) {
  const std::string url = "http://" + host + ":" + std::to_string(port) + c.path;
  const std::string keys = std::string(CHOKEPOINT_SOURCE_DIR) + "/bench/lab/keys_random.lua";
  switch (c.load) {
    case Load::kNone:
      return std::nullopt;
    case Load::kClosed:
      return spawn("wrk", {"-t1", "-c16", "-d20s", "--timeout", "10s", url});
    case Load::kClosedKeys:
      return spawn("wrk", {"-t1", "-c16", "-d20s", "--timeout", "10s", "-s", keys, url});
    case Load::kClosedNew:
      return spawn("wrk", {"-t1", "-c64", "-d20s", "-H", "Connection: close", url});
    case Load::kRate:
      return spawn(chokepoint_bin(),
                   {"load", "--rate", std::to_string(c.rate), "-c", "4", "--duration", "20s", url});
  }
  return std::nullopt;
}

// How long each case runs: these 47 cases in a row are about a third of CI's release tests. The
// load runs kWarmup before a kWindow window. 1 s and 3 s until 2026-12-06; 0.5 s and 2 s on the
// quiet machine (`scripts/test_repeat` alternating the two, docs/testing.md "CI time, sixth
// round"): 47 of 47 cases passed in each of two runs at 2 s and the one at 3 s between them, the
// sum of the cases' medians 165 s against 235 s. Stacks (diagnose's 2 s after the window) only
// for the cases that check them: 1 s was tried and lost them to diagnose's own deadline.
constexpr auto kWarmup = std::chrono::milliseconds(500);
constexpr const char* kWindow = "2s";

std::optional<Run> diagnose(pid_t pid, bool stacks, const std::string& mode) {
  std::vector<std::string> args = {"diagnose",   "--pid", std::to_string(pid),
                                   "--duration", kWindow, "--json"};
  if (!stacks) args.push_back("--no-stacks");
  if (!mode.empty()) args.insert(args.end(), {"--mode", mode});
  auto r = test_support::run_to_exit(args, chokepoint_bin(), std::chrono::seconds(30));
  EXPECT_TRUE(r) << r.error().message;
  if (!r) return std::nullopt;
  EXPECT_EQ(r->exit_code, 0) << r->stderr_text;
  Run run;
  run.text = r->stdout_text;
  run.report = nlohmann::json::parse(r->stdout_text, nullptr, false);
  EXPECT_FALSE(run.report.is_discarded()) << r->stdout_text;
  if (run.report.is_discarded()) return std::nullopt;
  return run;
}

std::string summary(const nlohmann::json& j) {
  std::string s = "verdict " + j["verdict"].get<std::string>() + "; split";
  for (const auto& [k, v] : j["time_split"].items()) {
    if (v.get<double>() >= 0.005) s += " " + k + "=" + std::to_string(v.get<double>()).substr(0, 4);
  }
  s += "; significant:";
  for (const auto& b : j["bottlenecks"]) {
    if (b["significant"].get<bool>()) {
      s += " " + b["resource"].get<std::string>() + "/" + b["kind"].get<std::string>() + "=" +
           std::to_string(b["share"].get<double>()).substr(0, 4);
    }
  }
  return s;
}

// Stacks need root, BTF (off-CPU, eBPF) and perf; where they are missing diagnose says so in its
// sources and the stack check is skipped.
bool stacks_expected() {
  return geteuid() == 0 && access("/sys/kernel/btf/vmlinux", R_OK) == 0;
}

class Verdict : public ::testing::TestWithParam<Case> {};

TEST_P(Verdict, OnTheLab) {
  const Case& c = GetParam();
  if (c.needs_root && geteuid() != 0) GTEST_SKIP() << "needs root";

  std::optional<LabProcess> upstream;
  std::vector<std::string> args = c.lab_args;
  if (c.upstream) {
    auto up = LabProcess::start(
        {"--role", "upstream", "--delay-ms", std::to_string(c.upstream_delay_ms), "--port", "0"});
    ASSERT_TRUE(up) << up.error().message;
    upstream.emplace(std::move(up).value());
    args.insert(args.end(), {"--upstream", "127.0.0.1:" + std::to_string(upstream->port())});
  }
  args.insert(args.end(), {"--port", "0"});

  std::optional<test_support::TestNetns> net;
  std::string host = "127.0.0.1";
  std::optional<LabProcess> lab;
  if (c.netns) {
    if (std::string why = test_support::netns_unavailable(); !why.empty()) GTEST_SKIP() << why;
    auto n = test_support::TestNetns::create();
    ASSERT_TRUE(n) << "cannot create a network namespace: " << n.error().message;
    net.emplace(std::move(n).value());
    auto shaped = net->shape_egress("20mbit");
    ASSERT_TRUE(shaped) << shaped.error().message;
    args.insert(args.end(), {"--bind", net->ns_ip()});
    host = net->ns_ip();
    auto l = LabProcess::start(net->exec_args(test_support::default_lab_binary(), args),
                               test_support::sbin_tool("ip"));
    ASSERT_TRUE(l) << l.error().message;
    lab.emplace(std::move(l).value());
  } else {
    auto l = LabProcess::start(args);
    ASSERT_TRUE(l) << l.error().message;
    lab.emplace(std::move(l).value());
  }

  auto load = start_load(c, host, lab->port());
  std::this_thread::sleep_for(kWarmup);
  auto run = diagnose(lab->pid(), !c.stack_function.empty(), c.mode);
  ASSERT_TRUE(run);
  const auto& j = run->report;
  // The time split ran exact (eBPF state accounting) unless sampling was asked for: as root with
  // BTF the default (auto) must not fall back.
  ASSERT_TRUE(j["sources"].contains("time split")) << j["sources"].dump(1);
  const bool exact = j["sources"]["time split"]["available"].get<bool>();
  if (c.mode == "sample") {
    EXPECT_FALSE(exact);
  } else if (stacks_expected()) {
    EXPECT_TRUE(exact) << j["sources"]["time split"].dump();
  }
  RecordProperty("mode", exact ? "exact" : "sample");
  const std::string verdict = j["verdict"];
  const std::string kind = verdict == "none" ? "" : j["bottlenecks"][0]["kind"].get<std::string>();
  RecordProperty("summary", summary(j));
  const bool cpu_first = c.cpu_may_saturate_first && verdict == "cpu" && kind == "saturated" &&
                         j["system"]["cpu_utilization"].get<double>() >= kCpuSaturated;
  const bool host_took_the_core = !c.serial_thread.empty() && verdict == "cpu" &&
                                  (kind == "contended" || kind == "saturated") &&
                                  cpu_wait_of(j, c.serial_thread) > 1 - kSerialOnCpu;
  if (host_took_the_core) {
    bool chain = false;
    for (const auto& line : j["bottlenecks"][0]["evidence"]) {
      chain = chain || line.get<std::string>().find("waits for thread '" + c.serial_thread + "'") !=
                           std::string::npos;
    }
    EXPECT_TRUE(chain) << "cpu (" << kind << "), and no wait-for chain ends at " << c.serial_thread
                       << ": " << j["bottlenecks"][0]["evidence"].dump(1);
    RecordProperty("note",
                   "other processes kept the serial thread queued: checked as cpu, " + kind);
  } else if (cpu_first) {
    bool found = false;
    for (const auto& b : j["bottlenecks"]) {
      // Any disk kind: with fast fsyncs the write itself may take the larger part.
      found = found || (b["resource"] == c.verdict && b["significant"].get<bool>() &&
                        b["share"].get<double>() >= kRunnerUpShare);
    }
    EXPECT_TRUE(found) << "the CPU saturated first, and " << c.verdict
                       << " is not a significant runner-up: " << summary(j);
    RecordProperty("note", "the CPU saturated before the disk: disk checked as the runner-up");
  } else if (!c.verdict.empty()) {
    EXPECT_EQ(verdict, c.verdict) << summary(j);
    if (!c.kind.empty()) {
      EXPECT_EQ(kind, c.kind) << summary(j);
    }
    if (!c.stack_function.empty() && stacks_expected() && verdict == c.verdict) {
      bool named = false;
      for (const auto& line : j["bottlenecks"][0]["evidence"]) {
        named = named || line.get<std::string>().find(c.stack_function) != std::string::npos;
      }
      EXPECT_TRUE(named) << "no evidence line names " << c.stack_function << ": "
                         << j["bottlenecks"][0]["evidence"].dump(1) << "\n"
                         << j["sources"].dump(1);
      // A leak's first fix points at the allocation site found.
      if (c.kind == "leak") {
        const auto& fixes = j["bottlenecks"][0]["fixes"];
        EXPECT_TRUE(!fixes.empty() &&
                    fixes[0].get<std::string>().find(c.stack_function) != std::string::npos)
            << fixes.dump(1);
      }
    }
    if (!c.evidence.empty() && verdict == c.verdict) {
      bool named = false;
      for (const auto& line : j["bottlenecks"][0]["evidence"]) {
        named = named || line.get<std::string>().find(c.evidence) != std::string::npos;
      }
      EXPECT_TRUE(named) << "no evidence line names " << c.evidence << ": "
                         << j["bottlenecks"][0]["evidence"].dump(1) << "\n"
                         << j["sources"].dump(1);
    }
    if (c.min_time_share > 0) {
      EXPECT_GE(j["time_split"][c.verdict].get<double>(), c.min_time_share) << summary(j);
    }
  }
  if (!c.not_verdict.empty()) {
    bool same = verdict == c.not_verdict && (c.not_kind.empty() || kind == c.not_kind);
    EXPECT_FALSE(same) << "the fix did not move the verdict: " << summary(j);
  }
  // The OS-limit findings about connections (conntrack included), shared memory and rlimits
  // (issue 19) stay silent on every scenario but backlog's, whose full accept queue is one of them.
  if (c.name.rfind("backlog", 0) != 0) {
    for (const auto& f : j["findings"]) {
      EXPECT_TRUE(f["resource"] != "connections" && f["resource"] != "shared-memory" &&
                  f["resource"] != "rlimits")
          << f.dump() << "\n"
          << (j.contains("tcp") ? j["tcp"].dump(1) : "");
    }
  }
  // The contract: shares sum to 1.
  double sum = 0;
  for (const auto& [k, v] : j["time_split"].items()) sum += v.get<double>();
  EXPECT_NEAR(sum, 1.0, 1e-6);
}

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Case scenario(std::string name, std::vector<std::string> args, Load load, int rate,
              std::string verdict, std::string kind = "") {
  Case c;
  c.name = std::move(name);
  c.lab_args = std::move(args);
  c.load = load;
  c.rate = rate;
  c.verdict = std::move(verdict);
  c.kind = std::move(kind);
  return c;
}

const std::vector<Case> kScenarios = [] {
  std::vector<Case> v;
  for (std::string model : {"threads", "epoll"}) {
    std::vector<std::string> m = {"--model", model};
    Case cpu = scenario("cpu_" + model, with({"--scenario", "cpu"}, m), Load::kClosed, 0, "cpu",
                        "saturated");
    cpu.stack_function = "lab_cpu_hash_rounds";
    v.push_back(cpu);
    Case lock = scenario("lock_" + model, with({"--scenario", "lock"}, m), Load::kClosedKeys, 0,
                         "lock", "mutex");
    lock.stack_function = "LabStore::update";
    v.push_back(lock);
    // The same store behind a std::shared_mutex: readers and writers sleep in
    // FUTEX_WAIT_BITSET like parked pool threads; the stack scan names the rwlock.
    Case rwlock =
        scenario("rwlock_" + model, with({"--scenario", "lock", "--lock-type", "rwlock"}, m),
                 Load::kClosedKeys, 0, "lock", "rwlock");
    rwlock.evidence = "pthread_rwlock_wrlock";
    v.push_back(rwlock);
    Case disk = scenario("disk_" + model, with({"--scenario", "disk"}, m), Load::kClosed, 0, "disk",
                         "fsync");
    disk.stack_function = "lab_commit_record";
    disk.cpu_may_saturate_first = true;
    v.push_back(disk);
    // An O_DSYNC write per request: the sync runs inside write(2), partly on the CPU; the time
    // in the write, blocked or running, is disk, and the file's O_DSYNC flag (fdinfo) makes each
    // write a commit: kind fsync.
    Case dsync = scenario("fsync_" + model, with({"--scenario", "fsync"}, m), Load::kClosed, 0,
                          "disk", "fsync");
    dsync.stack_function = "lab_write_dsync";
    dsync.evidence = "of disk time in write O_DSYNC /";
    dsync.cpu_may_saturate_first = true;
    v.push_back(dsync);
    v.push_back(
        scenario("log_" + model, with({"--scenario", "log"}, m), Load::kClosed, 0, "disk", "log"));
    Case up = scenario("upstream_" + model, with({"--scenario", "upstream"}, m), Load::kClosed, 0,
                       "network", "upstream");
    up.upstream = true;
    v.push_back(up);
    Case bw = scenario("bandwidth_" + model, with({"--scenario", "bandwidth"}, m), Load::kClosed, 0,
                       "network", "bandwidth");
    bw.needs_root = bw.netns = true;
    v.push_back(bw);
  }
  // Regression (found by knee): a pool of 4 saturated by 16 connections polls its upstream
  // connections back to back, so each socket's last send and last receive fall in the same jiffy
  // and tcp_info cannot tell the wait; the polled fds themselves say it is the upstream.
  Case pool =
      scenario("upstream_saturated_pool",
               {"--scenario", "upstream", "--upstream-calls", "1", "--blocking-workers", "4"},
               Load::kClosed, 0, "network", "upstream");
  pool.upstream = true;
  pool.upstream_delay_ms = 10;
  pool.min_time_share = 0.45;  // 4 of the lab's 7 threads wait on the upstream all the time
  v.push_back(pool);
  v.push_back(scenario("serial", {"--scenario", "serial"}, Load::kClosed, 0, "cpu", "serial"));
  // Request threads hand the work to one stage thread through a condvar and wait for the reply:
  // serial. With --handoff semaphore the waiters sleep in sem_wait, which alone reads as lock;
  // the wait-for graph (exact mode) sees one thread post every semaphore and follows the chain
  // to it, on a CPU: serial, with the chain in the evidence (docs/verdicts/cpu.md).
  for (std::string model : {"threads", "epoll"}) {
    Case pipeline = scenario("pipeline_" + model, {"--scenario", "pipeline", "--model", model},
                             Load::kClosed, 0, "cpu", "serial");
    pipeline.serial_thread = "lab-stage";
    v.push_back(pipeline);
    Case sem = scenario("pipeline_semaphore_" + model,
                        {"--scenario", "pipeline", "--handoff", "semaphore", "--model", model},
                        Load::kClosed, 0, "cpu", "serial");
    sem.evidence = "waits for thread 'lab-stage'";
    // With the on-CPU stacks taken after the window, the chain names the function its root, the
    // stage thread, runs: "..., which is on CPU 81% of the time, 70% of it in
    // chokepoint::lab::lab_cpu_hash_rounds (cpu_work.cpp:16)".
    sem.stack_function = "of it in chokepoint::lab::lab_cpu_hash_rounds";
    sem.serial_thread = "lab-stage";
    v.push_back(sem);
  }
  // Each request starts a `lab-joined` thread for its work and joins it: the workers live for
  // one job (about 1 ms), less than a sampling interval, so schedstat never reads them. The
  // wait-for graph sees each exit wake its joiner and infers what the workers did (not blocked:
  // on a CPU); the joiners' wait is theirs, and the chain names them as a group, not one thread
  // "on CPU 0%" (docs/verdicts/cpu.md).
  Case join = scenario("pipeline_join_threads",
                       {"--scenario", "pipeline", "--handoff", "join", "--model", "threads"},
                       Load::kClosed, 0, "cpu", "");
  join.evidence = "short-lived thread";  // "1 short-lived thread" or "56 short-lived threads"
  v.push_back(join);
  Case leak = scenario("leak", {"--scenario", "leak"}, Load::kRate, 300, "memory", "leak");
  leak.stack_function = "lab_leak_allocate";  // allocation stacks (eBPF uprobes) name the site
  v.push_back(leak);
  Case paging = scenario("paging", {"--scenario", "paging"}, Load::kClosed, 0, "memory", "paging");
  paging.needs_root = true;
  v.push_back(paging);
  v.push_back(
      scenario("backlog", {"--scenario", "backlog"}, Load::kClosedNew, 0, "network", "backlog"));
  v.push_back(scenario("none_moderate_load", {"--scenario", "none"}, Load::kRate, 200, "none"));
  v.push_back(scenario("none_idle", {"--scenario", "none"}, Load::kNone, 0, "none"));
  return v;
}();

INSTANTIATE_TEST_SUITE_P(Scenarios, Verdict, ::testing::ValuesIn(kScenarios),
                         [](const auto& info) { return info.param.name; });

// The scenarios above run in the default mode, which is exact here (root, BTF). A handful run
// again with --mode sample, the fallback where eBPF cannot load: the same verdicts.
const std::vector<Case> kSampleMode = [] {
  std::vector<Case> v;
  for (const char* name :
       {"cpu_threads", "lock_threads", "disk_threads", "upstream_threads", "none_idle"}) {
    for (Case c : kScenarios) {
      if (c.name != name) continue;
      c.name += "_sample_mode";
      c.mode = "sample";
      c.stack_function.clear();  // stacks are not what this checks (and cost 2 s each)
      v.push_back(c);
    }
  }
  return v;
}();

INSTANTIATE_TEST_SUITE_P(SampleMode, Verdict, ::testing::ValuesIn(kSampleMode),
                         [](const auto& info) { return info.param.name; });

// With the fix applied, under the same kind of load, the verdict moves off the old bottleneck.
// Fixes that remove work are checked at a fixed rate the unfixed lab cannot serve cheaply; fixes
// that add capacity under closed-loop load, where the bottleneck moves to the next resource.
const std::vector<Case> kFixes = [] {
  std::vector<Case> v;
  auto fix = [&](std::string name, std::vector<std::string> args, Load load, int rate,
                 std::string not_verdict, std::string not_kind = "", bool root = false) {
    Case c;
    c.name = std::move(name);
    c.lab_args = std::move(args);
    c.load = load;
    c.rate = rate;
    c.not_verdict = std::move(not_verdict);
    c.not_kind = std::move(not_kind);
    c.needs_root = root;
    return c;
  };
  auto cpu_cached = fix("cpu_cache_on", {"--scenario", "cpu", "--work-us", "2000", "--cache", "on"},
                        Load::kRate, 1000, "cpu");
  cpu_cached.path = "/?k=7";
  v.push_back(cpu_cached);
  v.push_back(fix("serial_more_workers", {"--scenario", "serial", "--serial-workers", "2"},
                  Load::kClosed, 0, "cpu", "serial"));
  v.push_back(fix("pipeline_more_workers", {"--scenario", "pipeline", "--pipeline-workers", "2"},
                  Load::kClosed, 0, "cpu", "serial"));
  v.push_back(fix("pipeline_semaphore_more_workers",
                  {"--scenario", "pipeline", "--handoff", "semaphore", "--model", "epoll",
                   "--pipeline-workers", "4"},
                  Load::kClosed, 0, "cpu", "serial"));
  v.push_back(fix("lock_sharded", {"--scenario", "lock", "--lock", "sharded"}, Load::kClosedKeys, 0,
                  "lock"));
  v.push_back(fix("rwlock_sharded",
                  {"--scenario", "lock", "--lock-type", "rwlock", "--lock", "sharded"},
                  Load::kClosedKeys, 0, "lock"));
  v.push_back(fix("disk_commit_async", {"--scenario", "disk", "--commit", "async"}, Load::kClosed,
                  0, "disk"));
  v.push_back(fix("disk_commit_batch", {"--scenario", "disk", "--commit", "batch"}, Load::kClosed,
                  0, "disk", "fsync"));
  v.push_back(fix("fsync_commit_async", {"--scenario", "fsync", "--commit", "async"}, Load::kClosed,
                  0, "disk"));
  v.push_back(fix("log_async", {"--scenario", "log", "--log", "async"}, Load::kClosed, 0, "disk"));
  v.push_back(fix("leak_bounded", {"--scenario", "leak", "--bounded"}, Load::kRate, 300, "memory"));
  v.push_back(fix("paging_bounded", {"--scenario", "paging", "--bounded"}, Load::kClosed, 0,
                  "memory", "", true));
  v.push_back(fix("backlog_4096", {"--scenario", "backlog", "--backlog", "4096"}, Load::kClosedNew,
                  0, "network", "backlog"));
  Case up = fix("upstream_cache_on", {"--scenario", "upstream", "--cache", "on"}, Load::kClosed, 0,
                "network");
  up.upstream = true;
  up.path = "/?k=7";
  v.push_back(up);
  return v;
}();

INSTANTIATE_TEST_SUITE_P(Fixes, Verdict, ::testing::ValuesIn(kFixes),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace chokepoint::diagnose_test
