// chokepoint agent end to end on loopback: the lab under real load, the agent's /metrics scraped
// over HTTP and checked by Debian's promtool, its recording replayed, and bad input (a port in
// use, a hostile process name, a target that vanishes, a cgroup that is removed) met with a clear
// error while the agent keeps running.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>

#include "integration/monitor/agent_harness.h"
#include "support/files.h"
#include "support/lab_process.h"

namespace chokepoint::monitor_test {
namespace {

using test_support::Background;
using test_support::LabProcess;
using test_support::run_chokepoint;

// `promtool check metrics` on a scrape: its exit code and what it said. In a directory of its own,
// removed after (gtest's TempDir() is /tmp itself: the files stayed there).
std::pair<int, std::string> promtool_check(const std::string& exposition) {
  const test_support::TempDir dir("chokepoint-promtool");
  const std::string in = dir.path + "/scrape.prom";
  const std::string out = dir.path + "/promtool.out";
  std::ofstream(in) << exposition;
  const int rc = std::system(("promtool check metrics < " + in + " > " + out + " 2>&1").c_str());
  std::ifstream said(out);
  std::string text((std::istreambuf_iterator<char>(said)), std::istreambuf_iterator<char>());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : 128, text};
}

// A process whose name (comm) is hostile to the exposition format: quotes, braces, a newline.
constexpr const char* kHostileName = "ev\"il}\n{x=\"1";

TEST(Agent, ScrapePassesPromtoolAndNamesTheVerdict) {
  auto lab = LabProcess::start({"--scenario", "cpu", "--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  auto load = Background::start("wrk", {"-t1", "-c8", "-d30s", "--timeout", "10s",
                                        "http://127.0.0.1:" + std::to_string(lab->port()) + "/"});
  ASSERT_TRUE(load) << load.error().message;
  // The hostile process: sleep run through a symlink of that name.
  const std::string dir = ::testing::TempDir() + "/agent-hostile";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string link = dir + "/" + kHostileName;
  std::filesystem::create_symlink("/bin/sleep", link);
  auto hostile = Background::start(link, {"30"});
  ASSERT_TRUE(hostile) << hostile.error().message;
  const std::string records = ::testing::TempDir() + "/agent-records";
  std::filesystem::remove_all(records);

  const std::string lab_target = "pid:" + std::to_string(lab->pid());
  auto agent =
      Agent::start({"--target", lab_target, "--target", std::string("name:") + kHostileName,
                    "--window", "1s", "--record-dir", records});
  ASSERT_TRUE(agent);
  // Two windows of each target.
  const std::string scrape =
      agent->wait_for("chokepoint_windows_total{target=\"" + lab_target + "\",outcome=\"ok\"} 2",
                      std::chrono::seconds(15));
  ASSERT_FALSE(scrape.empty()) << *agent->scrape();
  const auto [rc, said] = promtool_check(scrape);
  EXPECT_EQ(rc, 0) << said << "\n" << scrape;
  EXPECT_NE(scrape.find("chokepoint_verdict{target=\"" + lab_target + "\",resource=\"cpu\""),
            std::string::npos)
      << scrape;
  // The hostile target name is one escaped label value; the lab's thread names are nowhere.
  EXPECT_NE(scrape.find("chokepoint_target_up{target=\"name:ev\\\"il}\\n{x=\\\"1\"} 1\n"),
            std::string::npos)
      << scrape;
  // The lab names its threads lab-acceptor, lab-loop-0, lab-worker...: none may be a label.
  EXPECT_EQ(scrape.find("lab-"), std::string::npos) << scrape;
  EXPECT_EQ(scrape.find("chokepoint-lab"), std::string::npos) << scrape;
  for (const char* family :
       {"chokepoint_thread_seconds_total{", "chokepoint_bottleneck_share{",
        "chokepoint_cpu_utilization_ratio{", "chokepoint_agent_cpu_seconds_total ",
        "chokepoint_agent_resident_memory_bytes ", "chokepoint_source_available{"}) {
    EXPECT_NE(scrape.find(family), std::string::npos) << family;
  }
  // SIGTERM stops it cleanly and promptly.
  const auto stop_at = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(agent->process->pid(), SIGTERM), 0);
  auto code = agent->process->wait(5000);
  ASSERT_TRUE(code) << code.error().message;
  EXPECT_EQ(*code, 0);
  // The windows end at their next tick; 3.2 s was seen once on this loaded two-core VM.
  EXPECT_LT(std::chrono::steady_clock::now() - stop_at, std::chrono::seconds(5));
  // The recording ring replays.
  auto replay = run_chokepoint(
      {"replay", records + "/target0-pid_" + std::to_string(lab->pid()) + ".chokepoint"});
  EXPECT_EQ(replay.exit_code, 0) << replay.stderr_text;
  EXPECT_NE(replay.stdout_text.find("VERDICT: cpu"), std::string::npos) << replay.stdout_text;
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(records);
}

// Regression: libmicrohttpd's default select() loop dropped every scrape once the agent's own
// /proc files pushed new sockets past FD_SETSIZE (1024): "Empty reply from server" with 10 lab
// targets of 100 threads. Here 1,100 inherited fds stand in for them.
TEST(Agent, ScrapesWhenItsSocketsAreAboveFdSetSize) {
  const std::uint16_t port = free_port();
  const std::string script =
      "import os, sys\n"
      "for _ in range(1100):\n"
      "    os.set_inheritable(os.open('/dev/null', os.O_RDONLY), True)\n"
      "os.execv(sys.argv[1], sys.argv[1:])\n";
  auto agent =
      Background::start("python3", {"-c", script, test_support::chokepoint_bin(), "agent",
                                    "--target", "host", "--window", "1s", "--interval", "100ms",
                                    "--listen", "127.0.0.1:" + std::to_string(port)});
  ASSERT_TRUE(agent) << agent.error().message;
  Agent view;
  view.port = port;
  EXPECT_FALSE(
      view.wait_for("chokepoint_verdict{target=\"host\"", std::chrono::seconds(10)).empty());
}

TEST(Agent, PortInUseIsAClearError) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  const std::string where = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
  auto r = run_chokepoint({"agent", "--target", "host", "--listen", where}, 10);
  test_support::expect_cli_error(r, 1, "cannot listen on " + where + ": Address already in use");
  ::close(fd);
  test_support::expect_cli_error(run_chokepoint({"agent", "--target", "host", "--listen", "x:1"}),
                                 2, "not an IPv4 address");
  test_support::expect_cli_error(run_chokepoint({"agent", "--target", "pid:x"}), 2,
                                 "not a positive number");
  test_support::expect_cli_error(run_chokepoint({"agent"}), 2, "at least one --target");
  const test_support::TempDir dir("chokepoint-agent-config");
  const std::string config = dir.path + "/agent-bad.toml";
  std::ofstream(config) << "targets = [\"host\"]\nlisen = \"127.0.0.1:1\"\n";
  test_support::expect_cli_error(run_chokepoint({"agent", "--config", config}), 2,
                                 "unknown key 'lisen'");
  std::ofstream(config) << "targets = [\"host\"\n";
  test_support::expect_cli_error(run_chokepoint({"agent", "--config", config}), 2,
                                 "is not a valid agent config");
}

// A cgroup target whose process exits, whose cgroup is removed and made again with a new
// process: down, still serving, then up again.
TEST(Agent, TargetThatComesAndGoesIsPickedUpAgain) {
  TestCgroup cg("chokepoint-agent-test");
  ASSERT_TRUE(std::filesystem::exists(cg.path())) << cg.path();
  auto lab = LabProcess::start({"--scenario", "none", "--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  ASSERT_TRUE(cg.add(lab->pid()));
  const std::string target = "cgroup:" + cg.path();
  auto agent = Agent::start({"--target", target, "--window", "1s"});
  ASSERT_TRUE(agent);
  const std::string up = "chokepoint_target_up{target=\"" + target + "\"} 1\n";
  const std::string down = "chokepoint_target_up{target=\"" + target + "\"} 0\n";
  EXPECT_FALSE(agent->wait_for(up, std::chrono::seconds(10)).empty());
  // The process goes away: the cgroup is empty.
  ASSERT_TRUE(lab->stop());
  EXPECT_FALSE(agent->wait_for(down, std::chrono::seconds(10)).empty());
  // The cgroup goes away.
  cg.remove();
  const std::string failed_before = *agent->scrape();
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  auto still = agent->scrape();
  ASSERT_TRUE(still) << "the agent stopped serving when its cgroup was removed";
  EXPECT_NE(still->find(down), std::string::npos);
  EXPECT_NE(*still, failed_before);  // windows_total{outcome="failed"} went on counting
  // Made again, with a new process in it: picked up.
  ASSERT_TRUE(cg.create());
  auto again = LabProcess::start({"--scenario", "none", "--port", "0"});
  ASSERT_TRUE(again) << again.error().message;
  ASSERT_TRUE(cg.add(again->pid()));
  EXPECT_FALSE(agent->wait_for(up, std::chrono::seconds(10)).empty());
  ASSERT_EQ(::kill(agent->process->pid(), SIGTERM), 0);
  auto code = agent->process->wait(5000);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 0);
}

// --statsd: real UDP datagrams to a listener here, each at most 1,432 bytes of well-formed lines
// with sanitised names; with nothing listening, the drops are counted and the agent goes on.
TEST(Agent, StatsdPushIsBoundedAndSanitised) {
  const int udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(udp, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  socklen_t len = sizeof sa;
  ::getsockname(udp, reinterpret_cast<sockaddr*>(&sa), &len);
  const timeval tv{0, 200'000};
  ::setsockopt(udp, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const std::string dir = ::testing::TempDir() + "/agent-statsd";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::filesystem::create_symlink("/bin/sleep", dir + "/" + kHostileName);
  auto hostile = Background::start(dir + "/" + kHostileName, {"30"});
  ASSERT_TRUE(hostile);
  auto agent =
      Agent::start({"--target", "host", "--target", std::string("name:") + kHostileName, "--window",
                    "1s", "--statsd", "127.0.0.1:" + std::to_string(ntohs(sa.sin_port))});
  ASSERT_TRUE(agent);
  const std::regex line("chokepoint\\.[A-Za-z0-9_-]+\\.[a-z_.]+:[0-9.e+-]+\\|[cg]");
  std::set<std::string> names;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < end &&
         !(names.count("chokepoint.host.verdict") &&
           names.count("chokepoint.name_ev_il___x__1.verdict"))) {
    char buf[65536];
    const ssize_t n = ::recv(udp, buf, sizeof buf, 0);
    if (n <= 0) continue;
    EXPECT_LE(n, 1432);
    std::string d(buf, static_cast<std::size_t>(n));
    std::size_t at = 0;
    while (at <= d.size()) {
      const std::size_t nl = std::min(d.find('\n', at), d.size());
      const std::string l = d.substr(at, nl - at);
      EXPECT_TRUE(std::regex_match(l, line)) << l;
      const auto dot = l.rfind('.', l.find(':'));
      names.insert(l.substr(0, dot));
      at = nl + 1;
    }
  }
  ::close(udp);
  EXPECT_TRUE(names.count("chokepoint.host.verdict"));
  EXPECT_TRUE(names.count("chokepoint.host.thread_seconds"));
  EXPECT_TRUE(names.count("chokepoint.name_ev_il___x__1.verdict"));
  const std::string sent =
      agent->wait_for("chokepoint_agent_statsd_datagrams_total ", std::chrono::seconds(2));
  EXPECT_NE(sent.find("chokepoint_agent_statsd_dropped_total 0\n"), std::string::npos) << sent;
  // Nothing listens now: the datagrams are refused, counted as drops; the agent still serves.
  const std::regex dropped("chokepoint_agent_statsd_dropped_total [1-9]");
  EXPECT_TRUE(wait_until(
      [&] {
        auto s = agent->scrape();
        return s && std::regex_search(*s, dropped);
      },
      std::chrono::seconds(8)))
      << *agent->scrape();
  std::filesystem::remove_all(dir);
}

// deploy/: the rules pass promtool, and the rules and the Grafana dashboard use only metrics a real
// agent exports (every name has its # TYPE line in a scrape).
void collect_exprs(const nlohmann::json& j, std::string& out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if ((k == "expr" || k == "query") && v.is_string()) out += v.get<std::string>() + "\n";
      collect_exprs(v, out);
    }
  } else if (j.is_array()) {
    for (const auto& v : j) collect_exprs(v, out);
  }
}

TEST(Agent, DeployFilesUseOnlyExportedMetrics) {
  const std::string deploy = std::string(CHOKEPOINT_SOURCE_DIR) + "/deploy";
  const int rc =
      std::system(("promtool check rules " + deploy + "/prometheus-rules.yml > /dev/null").c_str());
  EXPECT_EQ(WEXITSTATUS(rc), 0);
  std::ifstream dash_in(deploy + "/grafana-dashboard.json");
  const auto dash = nlohmann::json::parse(dash_in, nullptr, false);
  ASSERT_FALSE(dash.is_discarded());
  std::string exprs;
  collect_exprs(dash, exprs);
  EXPECT_GE(std::count(exprs.begin(), exprs.end(), '\n'), 8);
  std::ifstream rules_in(deploy + "/prometheus-rules.yml");
  exprs +=
      std::string((std::istreambuf_iterator<char>(rules_in)), std::istreambuf_iterator<char>());

  auto agent = Agent::start({"--target", "host", "--window", "1s"});
  ASSERT_TRUE(agent);
  const std::string scrape =
      agent->wait_for("chokepoint_verdict{target=\"host\"", std::chrono::seconds(10));
  ASSERT_FALSE(scrape.empty());
  const std::regex name("chokepoint_[a-z_]+");
  std::set<std::string> used;
  for (auto it = std::sregex_iterator(exprs.begin(), exprs.end(), name);
       it != std::sregex_iterator(); ++it) {
    used.insert(it->str());
  }
  EXPECT_GE(used.size(), 8u);
  for (const auto& n : used) {
    EXPECT_NE(scrape.find("# TYPE " + n + " "), std::string::npos) << n << " is not exported";
  }
}

}  // namespace
}  // namespace chokepoint::monitor_test
