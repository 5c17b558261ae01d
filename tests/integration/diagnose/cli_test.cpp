// chokepoint diagnose's targets and its handling of bad input: every case ends with a clear
// "error:" and "hint:", the right exit code, and within its deadline.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/background.h"
#include "support/cli.h"
#include "support/files.h"
#include "support/lab_process.h"

namespace chokepoint::diagnose_test {
namespace {

using test_support::chokepoint_bin;
using test_support::expect_cli_error;
using test_support::run_chokepoint;

using test_support::Background;
using test_support::LabProcess;
using test_support::run_to_exit;

bool contains_pid(const nlohmann::json& j, pid_t pid) {
  const auto& pids = j["target"]["pids"];
  return std::find(pids.begin(), pids.end(), pid) != pids.end();
}

// The subcommands `chokepoint --help` lists, so that a new one is checked without editing a list.
std::vector<std::string> listed_subcommands() {
  auto r = run_chokepoint({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  std::vector<std::string> names;
  std::istringstream in(r.stdout_text);
  bool listing = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Subcommands:", 0) == 0) {
      listing = true;
    } else if (listing && line.rfind("  ", 0) == 0 && line.size() > 2 && line[2] != ' ') {
      names.push_back(line.substr(2, line.find(' ', 2) - 2));
    } else if (listing && line.empty()) {
      break;
    }
  }
  return names;
}

// Help as people read it: every subcommand's --help shows an example of itself, and no option
// shows CLI11's rendering of a value map ("{a->1,b->2} OR {1,2}"); options with a closed set of
// values name them. A usage mistake exits 2 in every subcommand (check: 3, the Nagios UNKNOWN),
// with error: and a hint that points at that subcommand's help.
TEST(Cli, EverySubcommandsHelpHasAnExampleAndNoValueMaps) {
  const std::vector<std::string> commands = listed_subcommands();
  for (const char* known : {"diagnose", "top", "profile", "load", "knee", "check"}) {
    EXPECT_NE(std::find(commands.begin(), commands.end(), known), commands.end()) << known;
  }
  for (const std::string& command : commands) {
    SCOPED_TRACE(command);
    auto r = run_chokepoint({command, "--help"});
    EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
    EXPECT_NE(r.stdout_text.find("Example"), std::string::npos) << r.stdout_text;
    EXPECT_NE(r.stdout_text.find("chokepoint " + command + " "), std::string::npos)
        << r.stdout_text;
    EXPECT_EQ(r.stdout_text.find("->"), std::string::npos) << r.stdout_text;
    EXPECT_EQ(r.stdout_text.find("} OR {"), std::string::npos) << r.stdout_text;

    auto bad = run_chokepoint({command, "--no-such-option"});
    EXPECT_EQ(bad.exit_code, command == "check" ? 3 : 2) << bad.stderr_text;
    EXPECT_NE(bad.stderr_text.find("error: "), std::string::npos) << bad.stderr_text;
    EXPECT_NE(bad.stderr_text.find("hint: run 'chokepoint " + command + " --help'"),
              std::string::npos)
        << bad.stderr_text;
  }
  EXPECT_NE(run_chokepoint({"top", "--help"}).stdout_text.find("--sort cpu|runq|disk|rss|pid|name"),
            std::string::npos);
  const std::string profile = run_chokepoint({"profile", "--help"}).stdout_text;
  EXPECT_NE(profile.find("--call-graph fp|dwarf[,STACK_BYTES]"), std::string::npos) << profile;
  EXPECT_NE(profile.find("--memory-view live|allocated"), std::string::npos) << profile;
}

TEST(DiagnoseCli, NoSuchPid) {
  expect_cli_error(run_chokepoint({"diagnose", "--pid", "999999999"}), 1, "no process with pid");
}

TEST(DiagnoseCli, BadValuesAreUsageErrors) {
  expect_cli_error(run_chokepoint({"diagnose", "--duration", "0", "--pid", "1"}), 2, "--duration");
  expect_cli_error(run_chokepoint({"diagnose", "--duration", "abc"}), 2, "is not a duration");
  expect_cli_error(run_chokepoint({"diagnose", "--interval", "0s", "--pid", "1"}), 2, "--interval");
  expect_cli_error(run_chokepoint({"diagnose", "--pid", "notanumber"}), 2, "");
  expect_cli_error(run_chokepoint({"diagnose", "--pid", "1", "--name", "x"}), 2, "one target");
  expect_cli_error(run_chokepoint({"diagnose", "--children"}), 2, "--children needs --pid");
}

TEST(DiagnoseCli, BadModeIsAUsageError) {
  expect_cli_error(run_chokepoint({"diagnose", "--mode", "fast", "--pid", "1"}), 2,
                   "--mode 'fast' is not a mode");
  expect_cli_error(run_chokepoint({"record", "--mode", "x", "-o", "/dev/null", "--pid", "1"}), 2,
                   "--mode exact, --mode sample or --mode auto");
}

// Where the eBPF programs cannot load (here: an unprivileged user, with
// kernel.unprivileged_bpf_disabled set), --mode auto falls back to the sampled split and says why
// with a hint; --mode exact is an error with the same hint.
TEST(DiagnoseCli, ExactModeFallsBackToSamplingWithAHint) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch to an unprivileged user";
  if (access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "setpriv (util-linux) is missing";
  std::ifstream disabled_file("/proc/sys/kernel/unprivileged_bpf_disabled");
  int disabled = 0;
  disabled_file >> disabled;
  if (disabled == 0) GTEST_SKIP() << "unprivileged BPF is allowed here: nothing refuses the load";
  auto as_nobody = [](std::vector<std::string> args) {
    std::vector<std::string> all = {"--reuid=65534", "--regid=65534", "--clear-groups",
                                    chokepoint_bin()};
    all.insert(all.end(), args.begin(), args.end());
    auto r = run_to_exit(all, "/usr/bin/setpriv", std::chrono::seconds(30));
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : test_support::ExitResult{};
  };
  auto fallback = as_nobody({"diagnose", "--mode", "auto", "--duration", "500ms", "--no-stacks",
                             "--json", "--", "sleep", "5"});
  ASSERT_EQ(fallback.exit_code, 0) << fallback.stderr_text;
  const auto j = nlohmann::json::parse(fallback.stdout_text, nullptr, false);
  ASSERT_TRUE(j.is_object()) << fallback.stdout_text;
  ASSERT_TRUE(j["sources"].contains("time split")) << j["sources"].dump(1);
  const auto& split = j["sources"]["time split"];
  EXPECT_FALSE(split["available"].get<bool>());
  const std::string hint = split["hint"];
  EXPECT_NE(hint.find("sampled (--mode auto): state accounting"), std::string::npos) << hint;
  EXPECT_NE(hint.find("; hint: "), std::string::npos) << hint;
  EXPECT_NE(hint.find("unprivileged_bpf_disabled"), std::string::npos) << hint;
  // The same refusal with --mode exact is the run's error.
  expect_cli_error(as_nobody({"diagnose", "--mode", "exact", "--duration", "500ms", "--no-stacks",
                              "--", "sleep", "5"}),
                   1, "--mode sample");
}

// The file system calls' hook that the kernel shows attached to a running `record` (its BPF links
// in /proc/PID/fdinfo: a raw tracepoint link's tp_name, a tracing link's attach_type 24 for
// fentry): "raw_syscalls", "fentry" or "none"; "" before the state accounting is attached (its
// sched_switch link).
std::string attached_file_hook(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid);
  bool raw = false, fentry = false, sched = false;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir + "/fd", ec)) {
    if (std::filesystem::read_symlink(entry.path(), ec).string() != "anon_inode:bpf_link") continue;
    std::ifstream info(dir + "/fdinfo/" + entry.path().filename().string());
    std::string line;
    while (std::getline(info, line)) {
      sched = sched || line == "tp_name:\tsched_switch";
      raw = raw || line == "tp_name:\tsys_enter";
      fentry = fentry || line == "attach_type:\t24";
    }
  }
  if (!sched) return "";
  return raw ? "raw_syscalls" : fentry ? "fentry" : "none";
}

// The time split's sources line names the file calls' hook that ran, and it is the one attached:
// --mode exact takes fentry where the kernel accepts it, else raw_syscalls; auto takes fentry or
// nothing (raw_syscalls would cost every system call of the host). Through a recording, so the
// hook is kept in it.
TEST(DiagnoseCli, TheSourcesLineNamesTheFileCallHookThatWasAttached) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to load BPF programs";
  const test_support::TempDir dir("chokepoint-file-hook");
  const std::string rec = dir.path + "/file-hook.chokepoint";
  for (const std::string mode : {"exact", "auto"}) {
    SCOPED_TRACE(mode);
    std::filesystem::remove(rec);
    auto bg = Background::start(chokepoint_bin(), {"record", "--mode", mode, "--duration", "3s",
                                                   "-o", rec, "--", "sleep", "10"});
    ASSERT_TRUE(bg) << bg.error().message;
    std::string attached;
    for (int i = 0; i < 50 && attached.empty(); ++i) {  // attached within the window's 3 s
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      attached = attached_file_hook(bg->pid());
    }
    ASSERT_FALSE(attached.empty()) << "the state accounting was never attached";
    // Its links are made one by one at start-up: read again once they all are.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    attached = attached_file_hook(bg->pid());
    auto code = bg->wait(20'000);
    ASSERT_TRUE(code && *code == 0);
    auto r = run_chokepoint({"replay", rec, "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
    const auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.stdout_text;
    const std::string detail = j["sources"]["time split"]["detail"];
    if (attached == "raw_syscalls") {
      EXPECT_EQ(mode, "exact");
      EXPECT_NE(detail.find("timed on raw_syscalls sys_enter/sys_exit"), std::string::npos)
          << detail;
      EXPECT_NE(detail.find("(no fentry: "), std::string::npos) << detail;  // and why not
    } else if (attached == "fentry") {
      EXPECT_NE(detail.find("timed by fentry/fexit"), std::string::npos) << detail;
    } else {
      EXPECT_EQ(mode, "auto");
      EXPECT_NE(detail.find("on-CPU time is not timed and stays on_cpu (no fentry: "),
                std::string::npos)
          << detail;
    }
  }
  std::filesystem::remove(rec);
}

TEST(DiagnoseCli, PathThatIsNotACgroup) {
  expect_cli_error(run_chokepoint({"diagnose", "--cgroup", "/tmp"}), 1, "is not a cgroup");
  expect_cli_error(run_chokepoint({"diagnose", "--cgroup", "/nonexistent/cg"}), 1,
                   "not a cgroup directory");
}

TEST(DiagnoseCli, CommandThatFailsToStart) {
  auto r = run_chokepoint({"diagnose", "--", "/nonexistent/program", "--flag"});
  expect_cli_error(r, 1, "cannot start '/nonexistent/program'");
}

TEST(DiagnoseCli, NameWithoutMatches) {
  expect_cli_error(run_chokepoint({"diagnose", "--name", "no-such-process-name-here"}), 1,
                   "no running process is named");
}

// A target that exits mid-window: the report covers what was seen, and the exit code says so.
// It lives 3 s, so that it is still there when a slow start (the ASan build: 0.7-2 s here before
// main(), its 3 million relocations) first lists it.
TEST(DiagnoseCli, TargetExitsMidRun) {
  auto sleeper = Background::start("sleep", {"3"});
  ASSERT_TRUE(sleeper);
  auto start = std::chrono::steady_clock::now();
  auto r = run_chokepoint(
      {"diagnose", "--pid", std::to_string(sleeper->pid()), "--duration", "10s", "--json"});
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.exit_code, 1) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("exited"), std::string::npos) << r.stderr_text;
  auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.stdout_text;
  EXPECT_TRUE(j["target_exited"].get<bool>());
  EXPECT_LT(took, 7.0) << "diagnose kept waiting for a target that was gone";
}

// A target stuck in uninterruptible sleep (D): a vfork() parent waits in D until its child exits.
// The sampler must keep its deadline and still classify the thread.
TEST(DiagnoseCli, TargetInDStateKeepsTheDeadline) {
  pid_t parent = fork();
  ASSERT_GE(parent, 0);
  if (parent == 0) {
    pid_t child = vfork();
    if (child == 0) {
      sleep(4);  // the parent stays in D state meanwhile
      _exit(0);
    }
    waitpid(child, nullptr, 0);
    _exit(0);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::ifstream stat("/proc/" + std::to_string(parent) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find(") D "), std::string::npos) << "the vfork parent is not in D state: " << text;
  auto start = std::chrono::steady_clock::now();
  // A D-state target reads as a wait, so the off-CPU stack follow-up runs too: it must keep its
  // deadline as well.
  auto r = run_chokepoint({"diagnose", "--pid", std::to_string(parent), "--duration", "1s",
                           "--stacks-duration", "500ms", "--json"});
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_LT(took, 3.0);
  kill(parent, SIGKILL);
  waitpid(parent, nullptr, 0);
}

TEST(DiagnoseCli, LaunchesACommandAndEndsIt) {
  auto start = std::chrono::steady_clock::now();
  auto r = run_chokepoint({"diagnose", "--duration", "1s", "--json", "--", "sleep", "30"});
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_LT(took, 5.0) << "the launched command was not ended";
  auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["target"]["kind"], "command");
  EXPECT_EQ(j["verdict"], "none");  // sleep does nothing
  EXPECT_EQ(j["schema"], 1);
}

TEST(DiagnoseCli, FindsProcessesByName) {
  auto lab = LabProcess::start({"--scenario", "none", "--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  auto r =
      run_chokepoint({"diagnose", "--name", "chokepoint-lab", "--duration", "500ms", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_TRUE(contains_pid(j, lab->pid()));
}

TEST(DiagnoseCli, FollowsChildren) {
  // sh starts sleep as its child: --children must watch both.
  auto parent = Background::start("sh", {"-c", "sleep 20 & wait"});
  ASSERT_TRUE(parent);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto r = run_chokepoint({"diagnose", "--pid", std::to_string(parent->pid()), "--children",
                           "--duration", "500ms", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_GE(j["target"]["pids"].size(), 2u);
  std::system(("pkill -P " + std::to_string(parent->pid())).c_str());
}

// A cgroup target: the lab moved into a fresh v1 cpu cgroup (or v2 when that is what the host
// has) must be found through the cgroup's process list.
TEST(DiagnoseCli, WatchesACgroup) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create a cgroup";
  std::string dir;
  for (std::string base : {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
    if (std::filesystem::exists(base + "/cgroup.procs")) {
      dir = base + "/chokepoint-test-" + std::to_string(getpid());
      break;
    }
  }
  if (dir.empty() || mkdir(dir.c_str(), 0755) != 0) GTEST_SKIP() << "cannot create a cgroup";
  auto lab = LabProcess::start({"--scenario", "none", "--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  {
    std::ofstream procs(dir + "/cgroup.procs");
    procs << lab->pid() << std::endl;
  }
  auto r = run_chokepoint({"diagnose", "--cgroup", dir, "--duration", "500ms", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["target"]["kind"], "cgroup");
  EXPECT_TRUE(contains_pid(j, lab->pid()));
  ASSERT_TRUE(lab->stop());
  rmdir(dir.c_str());
}

TEST(DiagnoseCli, WholeHostWithoutTarget) {
  auto r = run_chokepoint({"diagnose", "--duration", "300ms", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["target"]["kind"], "host");
  EXPECT_GT(j["target"]["pids"].size(), 1u);
}

TEST(DiagnoseCli, TextReportLeadsWithTheVerdict) {
  auto r = run_chokepoint({"diagnose", "--duration", "300ms", "--", "sleep", "5"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.stdout_text.find("chokepoint diagnose:"), 0u) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("VERDICT: none"), std::string::npos) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("Sources:"), std::string::npos);
}

TEST(DiagnoseCli, LoadDrivesTheTargetWhileItIsWatched) {
  auto lab = LabProcess::start({"--scenario", "none", "--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  const std::string url = "http://127.0.0.1:" + std::to_string(lab->port()) + "/";
  auto r = run_chokepoint({"diagnose", "--pid", std::to_string(lab->pid()), "--load", url, "--rate",
                           "300", "-c", "4", "--warmup", "200ms", "--duration", "1s", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.stdout_text;
  ASSERT_TRUE(j.contains("load")) << r.stdout_text;
  const auto& load = j["load"];
  EXPECT_EQ(load["mode"], "open");
  EXPECT_EQ(load["connections"], 4);
  // 300 req/s over the 1 s window (the warmup is not counted): about 300 requests, all answered.
  // The window closes the load (its backstop is the window plus 30 s: 9,300 requests); under ASan
  // the window's end ran 0.5 s late here (450-490 requests), so the bound is 3 s of load.
  EXPECT_GT(load["requests"].get<double>(), 200) << load.dump();
  EXPECT_LT(load["requests"].get<double>(), 900) << load.dump();
  EXPECT_EQ(load["ok"], load["requests"]) << load.dump();
  EXPECT_GT(load["warmup_requests"].get<double>(), 20) << load.dump();
  // The lab served them: its threads spent some time on a CPU.
  EXPECT_GT(j["time_split"]["on_cpu"].get<double>(), 0) << j["time_split"].dump();
}

TEST(DiagnoseCli, LoadThatGetsNoResponseFails) {
  // A port nobody listens on (bound and closed here, so it is free): every request is refused.
  auto lab = LabProcess::start({"--scenario", "none", "--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  auto r = run_chokepoint({"diagnose", "--pid", std::to_string(lab->pid()), "--load",
                           "http://127.0.0.1:1/", "--rate", "50", "-c", "2", "--warmup", "0s",
                           "--duration", "500ms"});
  expect_cli_error(r, 1, "the load got no response");
  // The diagnosis is still printed.
  EXPECT_NE(r.stdout_text.find("VERDICT:"), std::string::npos) << r.stdout_text;
}

TEST(DiagnoseCli, LoadOptionsAreCheckedBeforeAnythingRuns) {
  expect_cli_error(run_chokepoint({"diagnose", "--pid", "1", "--rate", "100"}), 2,
                   "go with --load URL");
  expect_cli_error(run_chokepoint({"diagnose", "--pid", "1", "--load", "ftp://x/"}), 2, "");
  expect_cli_error(
      run_chokepoint({"diagnose", "--pid", "1", "--load", "http://127.0.0.1:1/", "--rate", "-3"}),
      2, "is not a rate");
}

}  // namespace
}  // namespace chokepoint::diagnose_test
