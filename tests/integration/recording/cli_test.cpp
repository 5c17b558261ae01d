// chokepoint diagnose --record, record and replay: a replay prints the report the live run
// printed; record ends cleanly on its duration and on Ctrl-C; bad input gets error and hint.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "model/samples.h"
#include "store/recording.h"
#include "support/background.h"
#include "support/cli.h"
#include "support/files.h"
#include "support/lab_process.h"
#include "support/offcpu_support.h"

namespace chokepoint::recording_test {
namespace {

using test_support::Background;
using test_support::chokepoint_bin;
using test_support::expect_cli_error;
using test_support::LabProcess;
using test_support::run_chokepoint;

// Every file of this test binary, removed when it exits.
std::string temp_path(const std::string& name) {
  static const test_support::TempDir dir("chokepoint-recording-test");
  return dir.path + "/" + name;
}

struct LoadedLab {
  LabProcess lab;
  Background load;
};

// The lab with a scenario, under closed-loop load from chokepoint load.
LoadedLab loaded_lab(const std::string& scenario) {
  auto lab = LabProcess::start({"--scenario", scenario, "--port", "0"});
  EXPECT_TRUE(lab) << lab.error().message;
  const std::string url = "http://127.0.0.1:" + std::to_string(lab->port()) + "/";
  auto load = Background::start(chokepoint_bin(), {"load", url, "-c", "8", "--duration", "60s"});
  EXPECT_TRUE(load) << load.error().message;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  return {std::move(*lab), std::move(*load)};
}

TEST(RecordingCli, ReplayPrintsTheLiveDiagnosisJson) {
  auto lab = loaded_lab("lock");
  const std::string file = temp_path("lock.chokepoint");
  auto live = run_chokepoint({"diagnose", "--pid", std::to_string(lab.lab.pid()), "--duration",
                              "2s", "--record", file, "--json"},
                             60);
  ASSERT_EQ(live.exit_code, 0) << live.stderr_text;
  auto replay = run_chokepoint({"replay", file, "--json"});
  ASSERT_EQ(replay.exit_code, 0) << replay.stderr_text;
  auto a = nlohmann::json::parse(live.stdout_text, nullptr, false);
  auto b = nlohmann::json::parse(replay.stdout_text, nullptr, false);
  ASSERT_FALSE(a.is_discarded()) << live.stdout_text;
  ASSERT_FALSE(b.is_discarded()) << replay.stdout_text;
  // Which verdict depends on how loaded the machine is; that the replay repeats it does not.
  EXPECT_NE(a["verdict"], "none") << a["time_split"].dump();
  EXPECT_EQ(b["verdict"], a["verdict"]);
  EXPECT_EQ(b["time_split"], a["time_split"]);
  EXPECT_EQ(b["bottlenecks"], a["bottlenecks"]);  // the evidence, stacks included
  EXPECT_EQ(b, a);                                // and everything else
  // A part of the window is a window of its own.
  auto part = run_chokepoint({"replay", file, "--from", "500ms", "--to", "1500ms", "--json"});
  ASSERT_EQ(part.exit_code, 0) << part.stderr_text;
  auto p = nlohmann::json::parse(part.stdout_text, nullptr, false);
  ASSERT_FALSE(p.is_discarded());
  EXPECT_NEAR(p["duration_s"].get<double>(), 1.0, 0.01);
}

TEST(RecordingCli, ALoadDrivenDiagnosisReplaysWithItsLoadAndDiffsIt) {
  auto lab = LabProcess::start({"--scenario", "none", "--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  const std::string url = "http://127.0.0.1:" + std::to_string(lab->port()) + "/";
  const std::string file = temp_path("load.chokepoint");
  auto live = run_chokepoint({"diagnose", "--pid", std::to_string(lab->pid()), "--load", url,
                              "--rate", "200", "-c", "4", "--warmup", "200ms", "--duration", "1s",
                              "--no-stacks", "--record", file, "--json"});
  ASSERT_EQ(live.exit_code, 0) << live.stderr_text;
  auto replay = run_chokepoint({"replay", file, "--json"});
  ASSERT_EQ(replay.exit_code, 0) << replay.stderr_text;
  auto a = nlohmann::json::parse(live.stdout_text, nullptr, false);
  auto b = nlohmann::json::parse(replay.stdout_text, nullptr, false);
  ASSERT_TRUE(a.contains("load")) << live.stdout_text;
  EXPECT_EQ(b, a);
  auto diff = run_chokepoint({"diff", file, file, "--json"});
  ASSERT_EQ(diff.exit_code, 0) << diff.stderr_text;
  auto d = nlohmann::json::parse(diff.stdout_text, nullptr, false);
  ASSERT_TRUE(d.contains("load")) << diff.stdout_text;
  EXPECT_DOUBLE_EQ(d["load"]["rps"]["before"].get<double>(), a["load"]["rps"].get<double>());
  EXPECT_DOUBLE_EQ(d["load"]["rps"]["ratio"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(d["load"]["latency_p99_ms"]["after"].get<double>(),
                   a["load"]["latency_ms"]["p99"].get<double>());
}

// chokepoint load --record: a load run alone (no target sampled) that replay prints as the live
// run printed it, diff compares with another run (alone or sampled), and report draws.
TEST(RecordingCli, ALoadRunAloneReplaysDiffsAndReports) {
  auto lab = LabProcess::start({"--scenario", "none", "--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  const std::string url = "http://127.0.0.1:" + std::to_string(lab->port()) + "/";
  const std::string a_file = temp_path("load-a.chokepoint");
  const std::string b_file = temp_path("load-b.chokepoint");
  auto a_live = run_chokepoint(
      {"load", url, "--rate", "200", "-c", "4", "-d", "1s", "--record", a_file, "--json"});
  ASSERT_EQ(a_live.exit_code, 0) << a_live.stderr_text;
  auto b_live = run_chokepoint(
      {"load", url, "--rate", "100", "-c", "4", "-d", "1s", "--record", b_file, "--timeline"});
  ASSERT_EQ(b_live.exit_code, 0) << b_live.stderr_text;

  auto a_replay = run_chokepoint({"replay", a_file, "--json"});
  ASSERT_EQ(a_replay.exit_code, 0) << a_replay.stderr_text;
  const auto a = nlohmann::json::parse(a_live.stdout_text, nullptr, false);
  const auto ar = nlohmann::json::parse(a_replay.stdout_text, nullptr, false);
  ASSERT_FALSE(a.is_discarded()) << a_live.stdout_text;
  ASSERT_FALSE(ar.is_discarded()) << a_replay.stdout_text;
  EXPECT_EQ(ar["sampled"], false);
  EXPECT_EQ(ar["load"], a);  // the whole run, timeline included
  auto b_replay = run_chokepoint({"replay", b_file});
  ASSERT_EQ(b_replay.exit_code, 0) << b_replay.stderr_text;
  EXPECT_EQ(b_replay.stdout_text, b_live.stdout_text);  // the text, --timeline included

  auto diff = run_chokepoint({"diff", a_file, b_file, "--json"});
  ASSERT_EQ(diff.exit_code, 0) << diff.stderr_text;
  const auto d = nlohmann::json::parse(diff.stdout_text, nullptr, false);
  ASSERT_FALSE(d.is_discarded()) << diff.stdout_text;
  EXPECT_EQ(d["before"]["sampled"], false);
  EXPECT_FALSE(d.contains("time_split"));  // nothing sampled: no split to compare
  EXPECT_DOUBLE_EQ(d["load"]["rps"]["before"].get<double>(), a["rps"].get<double>());
  EXPECT_NEAR(d["load"]["rps"]["ratio"].get<double>(), 0.5, 0.05);  // 100 against 200 req/s
  EXPECT_DOUBLE_EQ(d["load"]["latency_p99_ms"]["before"].get<double>(),
                   a["latency_ms"]["p99"].get<double>());

  // Beside a sampled recording: the loads compare, and the text says why nothing else does.
  const std::string c_file = temp_path("load-c.chokepoint");
  auto c_live =
      run_chokepoint({"diagnose", "--pid", std::to_string(lab->pid()), "--load", url, "--rate",
                      "200", "-c", "4", "--duration", "1s", "--no-stacks", "--record", c_file});
  ASSERT_EQ(c_live.exit_code, 0) << c_live.stderr_text;
  auto mixed = run_chokepoint({"diff", a_file, c_file});
  ASSERT_EQ(mixed.exit_code, 0) << mixed.stderr_text;
  EXPECT_NE(mixed.stdout_text.find("throughput (req/s)"), std::string::npos) << mixed.stdout_text;
  EXPECT_NE(mixed.stdout_text.find("holds a load run alone"), std::string::npos)
      << mixed.stdout_text;
  EXPECT_EQ(mixed.stdout_text.find("Time split"), std::string::npos);

  const std::string page = temp_path("load-a.html");
  auto report = run_chokepoint({"report", a_file, "-o", page});
  ASSERT_EQ(report.exit_code, 0) << report.stderr_text;
  EXPECT_NE(test_support::read_file(page).find("<html"), std::string::npos);
  expect_cli_error(run_chokepoint({"report", a_file, c_file, "-o", page}), 2,
                   "holds a load run alone");
  expect_cli_error(run_chokepoint({"replay", a_file, "--from", "1s"}), 2, "no window to cut");
}

// chokepoint knee --record: the knee run alone, replayed as printed (its tables and summary),
// diffed on the knee, and drawn as knee -o draws it.
TEST(RecordingCli, AKneeRunAloneReplaysDiffsAndReports) {
  auto lab = LabProcess::start({"--scenario", "none", "--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  const std::string url = "http://127.0.0.1:" + std::to_string(lab->port()) + "/";
  const std::string file = temp_path("knee.chokepoint");
  auto live = run_chokepoint({"knee", url, "--slo", "p90<200ms", "--step", "500ms", "--warmup",
                              "200ms", "--start-rate", "50", "--max-rate", "100", "--record", file},
                             60);
  ASSERT_EQ(live.exit_code, 0) << live.stderr_text;
  auto replay = run_chokepoint({"replay", file});
  ASSERT_EQ(replay.exit_code, 0) << replay.stderr_text;
  EXPECT_NE(replay.stdout_text.find("KNEE"), std::string::npos) << replay.stdout_text;
  EXPECT_EQ(replay.stdout_text, live.stdout_text);
  auto json = run_chokepoint({"replay", file, "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.stderr_text;
  const auto j = nlohmann::json::parse(json.stdout_text, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << json.stdout_text;
  ASSERT_TRUE(j["knee"]["knee"]["rate"].is_number()) << json.stdout_text;

  auto diff = run_chokepoint({"diff", file, file, "--json"});
  ASSERT_EQ(diff.exit_code, 0) << diff.stderr_text;
  const auto d = nlohmann::json::parse(diff.stdout_text, nullptr, false);
  ASSERT_FALSE(d.is_discarded()) << diff.stdout_text;
  EXPECT_EQ(d["before"]["run"], "knee");
  EXPECT_DOUBLE_EQ(d["knee"]["knee_rps"]["before"].get<double>(),
                   j["knee"]["knee"]["rate"].get<double>());
  EXPECT_DOUBLE_EQ(d["knee"]["knee_rps"]["ratio"].get<double>(), 1.0);
  EXPECT_FALSE(d.contains("load"));

  const std::string page = temp_path("knee.html");
  auto report = run_chokepoint({"report", file, "-o", page});
  ASSERT_EQ(report.exit_code, 0) << report.stderr_text;
  EXPECT_NE(test_support::read_file(page).find("<html"), std::string::npos);
}

TEST(RecordingCli, ReplayPrintsTheLiveDiagnosisText) {
  const std::string file = temp_path("sleep.chokepoint");
  auto live =
      run_chokepoint({"diagnose", "--duration", "500ms", "--record", file, "--", "sleep", "5"});
  ASSERT_EQ(live.exit_code, 0) << live.stderr_text;
  auto replay = run_chokepoint({"replay", file});
  ASSERT_EQ(replay.exit_code, 0) << replay.stderr_text;
  EXPECT_NE(live.stdout_text.find("VERDICT: none"), std::string::npos) << live.stdout_text;
  EXPECT_EQ(replay.stdout_text, live.stdout_text);
}

TEST(RecordingCli, RecordForADurationThenReplay) {
  auto lab = loaded_lab("cpu");
  const std::string file = temp_path("cpu.chokepoint");
  auto rec = run_chokepoint({"record", "--pid", std::to_string(lab.lab.pid()), "-o", file,
                             "--interval", "100ms", "--duration", "1500ms"});
  ASSERT_EQ(rec.exit_code, 0) << rec.stderr_text;
  EXPECT_NE(rec.stderr_text.find("ticks recorded"), std::string::npos) << rec.stderr_text;
  auto replay = run_chokepoint({"replay", file, "--json"});
  ASSERT_EQ(replay.exit_code, 0) << replay.stderr_text;
  auto j = nlohmann::json::parse(replay.stdout_text, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["verdict"], "cpu") << j["time_split"].dump();
  EXPECT_NEAR(j["duration_s"].get<double>(), 1.5, 0.2);
  EXPECT_GT(j["time_split"]["on_cpu"].get<double>(), 0.05);  // it served requests
  // record keeps on-CPU stacks by default: the verdict's evidence names the lab's hot code
  // (lab/cpu_work.cpp), as a live diagnose's stacks after its window do.
  ASSERT_FALSE(j["bottlenecks"].empty());
  const std::string evidence = j["bottlenecks"][0]["evidence"].dump();
  EXPECT_NE(evidence.find("hottest code on CPU: chokepoint::lab::lab_cpu_"), std::string::npos)
      << evidence;
}

TEST(RecordingCli, RecordEndsOnCtrlCAndKeepsWhatItSaw) {
  auto lab = LabProcess::start({"--scenario", "none", "--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  const std::string file = temp_path("interrupted.chokepoint");
  auto rec = Background::start(chokepoint_bin(), {"record", "--pid", std::to_string(lab->pid()),
                                                  "-o", file, "--interval", "100ms"});
  ASSERT_TRUE(rec);
  // From when the recording file exists, not from the exec: the ASan build spent 0.7-2 s before
  // main() on a CI VM, and a fixed 1.2 s then left 0.2 s recorded.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (!std::filesystem::exists(file) && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(std::filesystem::exists(file));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_EQ(::kill(rec->pid(), SIGINT), 0);
  auto code = rec->wait(5000);
  ASSERT_TRUE(code) << code.error().message;
  EXPECT_EQ(*code, 0);
  auto replay = run_chokepoint({"replay", file, "--json"});
  ASSERT_EQ(replay.exit_code, 0) << replay.stderr_text;
  auto j = nlohmann::json::parse(replay.stdout_text, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_GT(j["duration_s"].get<double>(), 0.8);
}

TEST(RecordingCli, DiffShowsWhatMovedBetweenTwoRecordings) {
  const std::string idle = temp_path("idle.chokepoint");
  auto quiet = run_chokepoint(
      {"diagnose", "--duration", "500ms", "--record", idle, "--json", "--", "sleep", "5"});
  ASSERT_EQ(quiet.exit_code, 0) << quiet.stderr_text;
  auto lab = loaded_lab("cpu");
  const std::string busy = temp_path("busy.chokepoint");
  auto rec = run_chokepoint({"record", "--pid", std::to_string(lab.lab.pid()), "-o", busy,
                             "--interval", "100ms", "--duration", "1s"});
  ASSERT_EQ(rec.exit_code, 0) << rec.stderr_text;

  auto r = run_chokepoint({"diff", idle, busy, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.stdout_text;
  EXPECT_EQ(j["before"]["verdict"], "none");
  EXPECT_EQ(j["after"]["verdict"], "cpu");
  EXPECT_EQ(j["verdict_changed"], true);
  const auto& on_cpu = j["time_split"]["on_cpu"];
  EXPECT_NEAR(on_cpu["change"].get<double>(),
              on_cpu["after"].get<double>() - on_cpu["before"].get<double>(), 1e-9);
  EXPECT_GT(on_cpu["change"].get<double>(), 0.05);
  // The before side is the live diagnosis that was recorded.
  auto live = nlohmann::json::parse(quiet.stdout_text, nullptr, false);
  EXPECT_EQ(j["before"]["threads"], live["threads"].size());

  auto text = run_chokepoint({"diff", idle, busy});
  ASSERT_EQ(text.exit_code, 0) << text.stderr_text;
  EXPECT_NE(text.stdout_text.find("VERDICT"), std::string::npos) << text.stdout_text;
  EXPECT_NE(text.stdout_text.find("changed"), std::string::npos) << text.stdout_text;
  EXPECT_NE(text.stdout_text.find("Evidence after (cpu"), std::string::npos) << text.stdout_text;
  expect_cli_error(run_chokepoint({"diff", idle, temp_path("nothing.chokepoint")}), 1,
                   "cannot open");
}

// Polls `file`, which a recorder is writing, until one of its thread samples meets `pred`; false
// after 30 s. Each step of a test that changes its target waits for the recorder to have seen
// the step before, so a slow recorder (ASan, a loaded machine) cannot miss one.
template <typename Pred>
bool wait_recorded(const std::string& file, Pred pred) {
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < limit) {
    bool found = false;
    if (auto reader = store::RecordingReader::open(file)) {
      (void)reader->read_ticks(std::numeric_limits<std::int64_t>::max(), [&](model::Tick&& t) {
        for (const auto& th : t.threads) found = found || pred(th);
        return !found;
      });
    }
    if (found) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// A real program's threads renamed while recorded: a Python worker thread names itself (prctl
// PR_SET_NAME, as pthread_setname_np does) once the recorder has read it under the interpreter's
// name, then the main thread execs sleep, which renames the process. Each step waits for the
// recording to hold the one before. The replay names both threads by their new names, and the
// process by its exec'd one.
TEST(RecordingCli, ThreadsRenamedWhileRecordedGoByTheirNewNames) {
  const std::string rename_now = temp_path("rename.go");
  const std::string exec_now = temp_path("exec.go");
  const char* script =
      "import ctypes, os, sys, threading, time\n"
      "libc = ctypes.CDLL(None)\n"
      "def wait(path):\n"
      "    while not os.path.exists(path): time.sleep(0.02)\n"
      "def worker():\n"
      "    wait(sys.argv[1])\n"
      "    libc.prctl(15, b'cp-io-worker', 0, 0, 0)\n"
      "    while True: time.sleep(0.02)\n"
      "threading.Thread(target=worker, daemon=True).start()\n"
      "wait(sys.argv[2])\n"
      "os.execv('/bin/sleep', ['sleep', '60'])\n";
  auto program = Background::start("python3", {"-c", script, rename_now, exec_now});
  ASSERT_TRUE(program) << program.error().message;
  const int pid = program->pid();
  int worker = 0;
  for (int i = 0; i < 500 && worker == 0; ++i) {
    for (int tid : test_support::thread_ids(pid)) {
      if (tid != pid) worker = tid;
    }
    if (worker == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_NE(worker, 0) << "python started no thread";
  const std::string file = temp_path("renamed.chokepoint");
  auto rec =
      Background::start(chokepoint_bin(), {"record", "--pid", std::to_string(pid), "-o", file,
                                           "--interval", "100ms", "--duration", "60s"});
  ASSERT_TRUE(rec) << rec.error().message;
  ASSERT_TRUE(wait_recorded(file, [&](const model::ThreadSample& s) {
    return s.first && s.key.tid == worker && s.comm.rfind("python", 0) == 0;
  })) << "the recorder never read the worker under python's name";
  std::ofstream(rename_now) << "go\n";
  ASSERT_TRUE(wait_recorded(file, [&](const model::ThreadSample& s) {
    return s.key.tid == worker && s.comm == "cp-io-worker";
  })) << "the recording never held the worker's new name";
  std::ofstream(exec_now) << "go\n";
  ASSERT_TRUE(wait_recorded(file, [&](const model::ThreadSample& s) {
    return s.key.tid == pid && s.comm == "sleep";
  })) << "the recording never held the exec'd name";
  ASSERT_EQ(::kill(rec->pid(), SIGINT), 0);
  auto code = rec->wait(30'000);
  ASSERT_TRUE(code) << code.error().message;
  ASSERT_EQ(*code, 0);

  auto replay = run_chokepoint({"replay", file, "--json"});
  ASSERT_EQ(replay.exit_code, 0) << replay.stderr_text;
  auto j = nlohmann::json::parse(replay.stdout_text, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << replay.stdout_text;
  std::set<std::string> comms;
  for (const auto& t : j["threads"]) comms.insert(t["comm"].get<std::string>());
  EXPECT_TRUE(comms.count("cp-io-worker")) << j["threads"].dump();
  EXPECT_TRUE(comms.count("sleep")) << j["threads"].dump();
  for (const auto& c : comms) EXPECT_EQ(c.find("python"), std::string::npos) << c;
  ASSERT_EQ(j["processes"].size(), 1u) << j["processes"].dump();
  EXPECT_EQ(j["processes"][0]["name"], "sleep");
}

// The exact mode's sums name each fd a wait was timed on; the recorder resolves each the first
// time (model::FdName), so that a wait no read of the sampler caught is still classed by what the
// fd is and named by it: the file a thread fdatasyncs, the connection another reads (one it
// opened: an upstream's replies).
TEST(RecordingCli, TheFdsTheExactSumsNameAreRecordedWithWhatTheyAre) {
  // Skipped only where the exact mode cannot be (not root, no BPF or BTF); a refusal otherwise
  // fails `record --mode exact`, and so the test.
  if (std::string why = test_support::offcpu_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const std::string data = temp_path("named.data");
  const char* script =
      "import os, socket, sys, threading, time\n"
      "listener = socket.create_server(('127.0.0.1', 0))\n"
      "upstream = socket.create_connection(listener.getsockname())\n"
      "served, _ = listener.accept()\n"
      "def read_replies():\n"
      "    while upstream.recv(1): pass\n"
      "threading.Thread(target=read_replies, daemon=True).start()\n"
      "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)\n"
      "while True:\n"
      "    os.write(fd, b'x' * 4096); os.fdatasync(fd); served.send(b'y'); time.sleep(0.005)\n";
  auto program = Background::start("python3", {"-c", script, data});
  ASSERT_TRUE(program) << program.error().message;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string file = temp_path("fd_names.chokepoint");
  auto r =
      run_chokepoint({"record", "--pid", std::to_string(program->pid()), "-o", file, "--interval",
                      "100ms", "--duration", "1s", "--mode", "exact", "--stacks", "off"},
                     60);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  auto back = store::read_all(file);
  ASSERT_TRUE(back) << back.error().message;
  std::map<std::uint64_t, std::pair<model::FdRole, std::string>> named;
  for (const auto& t : back->ticks) {
    if (!t.exact) continue;
    for (const auto& n : t.exact->fd_names) {
      EXPECT_EQ(n.pid, program->pid());
      EXPECT_TRUE(named.try_emplace(n.fd, n.role, n.detail).second) << "fd " << n.fd << " twice";
    }
  }
  bool file_named = false, upstream_named = false;
  for (const auto& [fd, what] : named) {
    file_named |= what == std::pair{model::FdRole::kRegularFile, data};
    upstream_named |= what.first == model::FdRole::kSocketClient &&
                      what.second.rfind("upstream 127.0.0.1:", 0) == 0;
  }
  EXPECT_TRUE(file_named) << named.size() << " fds named";
  EXPECT_TRUE(upstream_named) << named.size() << " fds named";
}

TEST(RecordingCli, BadInputGetsErrorAndHint) {
  expect_cli_error(run_chokepoint({"replay", temp_path("missing.chokepoint")}), 1, "cannot open");
  const std::string text = temp_path("notes.txt");
  std::ofstream(text) << "hello\n";
  expect_cli_error(run_chokepoint({"replay", text}), 1, "not a chokepoint recording");
  expect_cli_error(run_chokepoint({"record", "--pid", "1"}), 2, "--output");
  expect_cli_error(
      run_chokepoint({"record", "--pid", "1", "-o", temp_path("x"), "--max-size", "lots"}), 2,
      "is not a size");
  expect_cli_error(
      run_chokepoint({"record", "--pid", "1", "-o", temp_path("x"), "--interval", "1ms"}), 2,
      "--interval");
  // Fails before the window, not after it.
  const auto start = std::chrono::steady_clock::now();
  expect_cli_error(run_chokepoint({"diagnose", "--pid", "1", "--duration", "5s", "--record",
                                   "/nonexistent/dir/x.chokepoint"}),
                   1, "cannot create");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
  // Anything but a recording is not overwritten.
  expect_cli_error(run_chokepoint({"diagnose", "--pid", "1", "--record", text}), 1,
                   "not a chokepoint recording");
  std::ifstream in(text);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "hello");
}

}  // namespace
}  // namespace chokepoint::recording_test
