// The OS limits connections run into, on the real lab (issue 19): conn-leak (CLOSE_WAIT piling up)
// and conn-storm (ephemeral ports exhausted by a connection per upstream call), each diagnosed by
// `chokepoint diagnose --json`, then with its fix, which must make the finding go away. conn-storm
// narrows net.ipv4.ip_local_port_range inside a network namespace the test creates and deletes
// (never on the host). Every run is bounded: 1 s of load before a 3 s diagnosis.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "lab/http_client.h"
#include "limits_support.h"
#include "support/background.h"
#include "support/cli.h"
#include "support/lab_process.h"
#include "support/netns.h"

namespace chokepoint::limits_test {
namespace {

using test_support::Background;
using test_support::chokepoint_bin;
using test_support::LabProcess;

// Clients that each open a connection, make one kept-alive request, and close it first after the
// answer (a browser tab closed, a pool trimming idle connections): `per_s` a second until stopped.
class ClosingClients {
 public:
  ClosingClients(std::uint16_t port, int per_s) {
    thread_ = std::thread([this, port, per_s] {
      const auto gap = std::chrono::microseconds(1'000'000 / per_s);
      auto next = std::chrono::steady_clock::now();
      while (!stop_.load()) {
        lab::HttpClient client("127.0.0.1", port);
        if (auto r = client.get("/", 2000, /*keep_alive=*/true); r && r->status == 200) ++done_;
        client.close();
        next += gap;
        std::this_thread::sleep_until(next);
      }
    });
  }
  ~ClosingClients() {
    stop_ = true;
    thread_.join();
  }
  ClosingClients(const ClosingClients&) = delete;
  ClosingClients& operator=(const ClosingClients&) = delete;
  int done() const { return done_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> done_{0};
  std::thread thread_;
};

nlohmann::json diagnose(pid_t pid) {
  return test_support::diagnose_json(pid, "3s");
}

// The connection findings whose message holds `text`.
std::vector<std::string> findings(const nlohmann::json& j, const std::string& text) {
  return test_support::findings_about(j, "connections", text);
}

std::uint64_t state_count(const nlohmann::json& j, const std::string& state) {
  if (!j.contains("tcp") || !j["tcp"]["states"].contains(state)) return 0;
  return j["tcp"]["states"][state].get<std::uint64_t>();
}

void conn_leak(bool fixed) {
  std::vector<std::string> args = {"--scenario", "conn-leak", "--port", "0"};
  if (fixed) args.push_back("--close-on-eof");
  auto lab = LabProcess::start(args);
  ASSERT_TRUE(lab) << lab.error().message;
  ClosingClients clients(lab->port(), 100);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto j = diagnose(lab->pid());
  ASSERT_TRUE(j.contains("tcp")) << j.dump(1);
  EXPECT_GT(clients.done(), 100) << "the clients got too few answers";
  const auto leak = findings(j, "CLOSE_WAIT");
  if (!fixed) {
    ASSERT_EQ(leak.size(), 1u) << j["findings"].dump(1) << j["tcp"].dump(1);
    EXPECT_NE(leak[0].find("the peer closed and the service never did"), std::string::npos);
    EXPECT_NE(leak[0].find("up from"), std::string::npos) << leak[0];  // it grows
    EXPECT_NE(leak[0].find(" on 127.0.0.1:" + std::to_string(lab->port()) + " from 127.0.0.1"),
              std::string::npos)
        << leak[0];
    EXPECT_NE(leak[0].find("read() returns 0"), std::string::npos) << leak[0];
    EXPECT_GE(state_count(j, "CLOSE_WAIT"), 200u) << j["tcp"].dump(1);
  } else {
    EXPECT_TRUE(leak.empty()) << leak[0];
    EXPECT_LT(state_count(j, "CLOSE_WAIT"), 32u) << j["tcp"].dump(1);
  }
}

TEST(LimitsVerdict, ConnLeakIsCloseWait) {
  conn_leak(false);
}

TEST(LimitsVerdict, ConnLeakFixedByClosingOnEof) {
  conn_leak(true);
}

// The lab in a namespace of its own with 256 ephemeral ports, its upstream in the root namespace
// (so every outbound connection crosses the veth pair and tcp_tw_reuse=2, loopback only, does not
// apply), wrk from the root namespace.
void conn_storm(bool fixed) {
  if (std::string why = test_support::netns_unavailable(); !why.empty()) GTEST_SKIP() << why;
  auto n = test_support::TestNetns::create();
  ASSERT_TRUE(n) << "cannot create a network namespace: " << n.error().message;
  auto& net = *n;
  auto narrowed =
      test_support::run_tool("ip", {"netns", "exec", net.name(), test_support::sbin_tool("sysctl"),
                                    "-q", "-w", "net.ipv4.ip_local_port_range=40000 40255"});
  ASSERT_TRUE(narrowed) << narrowed.error().message;

  auto upstream = LabProcess::start(
      {"--role", "upstream", "--delay-ms", "0", "--bind", net.host_ip(), "--port", "0"});
  ASSERT_TRUE(upstream) << upstream.error().message;
  std::vector<std::string> args = {"--scenario",
                                   "conn-storm",
                                   "--upstream",
                                   net.host_ip() + ":" + std::to_string(upstream->port()),
                                   "--upstream-timeout-ms",
                                   "1000",
                                   "--bind",
                                   net.ns_ip(),
                                   "--port",
                                   "0"};
  if (fixed) args.push_back("--keep-alive");
  auto lab = LabProcess::start(net.exec_args(test_support::default_lab_binary(), args),
                               test_support::sbin_tool("ip"));
  ASSERT_TRUE(lab) << lab.error().message;
  auto load =
      Background::start("wrk", {"-t1", "-c8", "-d20s", "--timeout", "5s",
                                "http://" + net.ns_ip() + ":" + std::to_string(lab->port()) + "/"});
  ASSERT_TRUE(load) << load.error().message;
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto j = diagnose(lab->pid());
  ASSERT_TRUE(j.contains("tcp")) << j.dump(1);
  EXPECT_EQ(j["tcp"]["port_range_low"], 40000) << "the range of the lab's namespace, not ours";
  const auto ports = findings(j, "ephemeral ports");
  if (!fixed) {
    ASSERT_EQ(ports.size(), 1u) << j["findings"].dump(1) << j["tcp"].dump(1);
    EXPECT_NE(ports[0].find("taken by connections to " + net.host_ip() + ":" +
                            std::to_string(upstream->port())),
              std::string::npos)
        << ports[0];
    EXPECT_NE(ports[0].find("net.ipv4.ip_local_port_range 40000-40255"), std::string::npos)
        << ports[0];
    EXPECT_NE(ports[0].find("keep-alive"), std::string::npos) << ports[0];
    EXPECT_GE(state_count(j, "TIME_WAIT"), 128u) << j["tcp"].dump(1);
  } else {
    EXPECT_TRUE(ports.empty()) << ports[0];
    EXPECT_LT(state_count(j, "TIME_WAIT"), 64u) << j["tcp"].dump(1);
  }
}

TEST(LimitsVerdict, ConnStormExhaustsEphemeralPorts) {
  conn_storm(false);
}

TEST(LimitsVerdict, ConnStormFixedByKeepAlive) {
  conn_storm(true);
}

// The holder sets its own IPC namespace's kernel.shmmni and mounts its own /dev/shm: near the
// limits (28 of 32 segments, 3.5 of 4 MiB), then with the limits raised (the fix the findings
// give), where the same use must be silent.
void shared_memory(bool raised) {
  const std::string shmmni = raised ? "4096" : "32";
  const std::string tmpfs = raised ? "64M" : "4M";
  auto holder = Background::start(SHM_HOLDER, {"28", "65536", shmmni, tmpfs, "3670016"});
  ASSERT_TRUE(holder) << holder.error().message;
  const std::string ready =
      "/proc/" + std::to_string(holder->pid()) + "/root/dev/shm/chokepoint-shm-ready";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (access(ready.c_str(), F_OK) != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(access(ready.c_str(), F_OK), 0) << "shm_holder never got ready";

  auto r = test_support::run_to_exit({"diagnose", "--pid", std::to_string(holder->pid()),
                                      "--duration", "1s", "--json", "--no-stacks"},
                                     chokepoint_bin(), std::chrono::seconds(30));
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->exit_code, 0) << r->stderr_text;
  auto j = nlohmann::json::parse(r->stdout_text, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r->stdout_text;
  ASSERT_TRUE(j.contains("shared_memory")) << j.dump(1);
  const auto& m = j["shared_memory"];
  EXPECT_EQ(m["segments"], 28) << m.dump(1);
  EXPECT_EQ(m["target_segments"], 28) << m.dump(1);
  EXPECT_EQ(m["shmmni"], std::stoi(shmmni)) << "the holder's IPC namespace, not ours";
  EXPECT_EQ(m["target_posix_fds"], 1) << m.dump(1);
  std::vector<std::string> found;
  for (const auto& f : j["findings"]) {
    if (f["resource"] == "shared-memory")
      found.push_back(f["message"].get<std::string>() + " | hint: " + f["hint"].get<std::string>());
  }
  if (raised) {
    EXPECT_TRUE(found.empty()) << j["findings"].dump(1);
  } else {
    ASSERT_EQ(found.size(), 2u) << j["findings"].dump(1);
    EXPECT_NE(found[0].find("28 System V shared memory segments exist of kernel.shmmni 32"),
              std::string::npos)
        << found[0];
    EXPECT_NE(found[0].find("sysctl -w kernel.shmmni="), std::string::npos) << found[0];
    EXPECT_NE(found[1].find("/dev/shm"), std::string::npos) << found[1];
    EXPECT_NE(found[1].find("of its 4.0 MiB"), std::string::npos) << found[1];
  }
  ::kill(holder->pid(), SIGTERM);
  auto code = holder->wait(5000);
  ASSERT_TRUE(code) << code.error().message;
  EXPECT_EQ(*code, 0) << "shm_holder did not clean up";
}

TEST(LimitsVerdict, SharedMemoryNearItsLimits) {
  shared_memory(false);
}

TEST(LimitsVerdict, SharedMemoryWithRaisedLimitsIsSilent) {
  shared_memory(true);
}

}  // namespace
}  // namespace chokepoint::limits_test
