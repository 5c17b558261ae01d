// An asynchronous proxy whose one event loop waits on a slow upstream: HAProxy (Debian's, one
// thread) in front of chokepoint-lab --role upstream, four connections to it, and more requests
// than four connections at 20 ms carry. The loop sits in epoll_wait while every client waits, and
// each upstream connection gets its next request in the same jiffy as the previous reply, so
// tcp_info alone reads the loop as idle. With the socket-order tracer the verdict is network
// (upstream), naming the upstream; with a fast upstream and light load it is none.
// The lab's own proxy scenario (one epoll loop, a pool of four kept-alive upstream connections)
// is the same case; its fix, --cache on, must move the verdict off the network.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "integration/probes/service_process.h"
#include "support/cli.h"
#include "support/lab_process.h"

namespace chokepoint {
namespace {

using test_support::Background;

struct Proxy {
  test_support::TempDir dir{"chokepoint-proxy"};
  std::uint16_t port = 0;
  std::optional<Background> haproxy;
};

// HAProxy on 127.0.0.1:<free port> forwarding to 127.0.0.1:upstream_port, at most `maxconn`
// connections to it; excess requests queue inside HAProxy.
bool start_haproxy(Proxy& p, std::uint16_t upstream_port, int maxconn) {
  p.port = test_support::free_loopback_port();
  const std::string cfg = p.dir.path + "/haproxy.cfg";
  std::ofstream(cfg) << "global\n  nbthread 1\n"
                     << "defaults\n  mode http\n  timeout connect 2s\n  timeout client 20s\n"
                     << "  timeout server 20s\n  timeout queue 20s\n"
                     << "frontend fe\n  bind 127.0.0.1:" << p.port << "\n  default_backend be\n"
                     << "backend be\n  server up 127.0.0.1:" << upstream_port << " maxconn "
                     << maxconn << "\n";
  auto h = Background::start("haproxy", {"-f", cfg, "-db"});
  if (!h) {
    ADD_FAILURE() << h.error().message;
    return false;
  }
  p.haproxy.emplace(std::move(*h));
  return test_support::wait_for_port(p.port, 5000);
}

nlohmann::json diagnose_under_load(const Proxy& p, const std::string& rate,
                                   const std::string& connections) {
  auto load = Background::start(test_support::chokepoint_bin(),
                                {"load", "http://127.0.0.1:" + std::to_string(p.port) + "/",
                                 "--rate", rate, "-c", connections, "--duration", "8s"});
  EXPECT_TRUE(load) << load.error().message;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto r = test_support::run_chokepoint({"diagnose", "--pid", std::to_string(p.haproxy->pid()),
                                         "-d", "3s", "--no-stacks", "--no-probes", "--json"},
                                        60);
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  return nlohmann::json::parse(r.stdout_text, nullptr, false);
}

TEST(EventLoop, AProxyLoopWaitingOnASlowUpstreamIsNetworkNamingTheUpstream) {
  if (test_support::find_program({"/usr/sbin/haproxy", "/usr/bin/haproxy"}).empty()) {
    GTEST_FAIL() << "haproxy is missing: run scripts/setup";
  }
  auto upstream =
      test_support::LabProcess::start({"--role", "upstream", "--delay-ms", "20", "--port", "0"});
  ASSERT_TRUE(upstream) << upstream.error().message;
  Proxy p;
  ASSERT_TRUE(start_haproxy(p, upstream->port(), 4));
  // Four connections at 20 ms carry 200 requests/s; 300/s keeps them all busy.
  const auto j = diagnose_under_load(p, "300", "32");
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["verdict"], "network") << j["time_split"].dump();
  EXPECT_GT(j["time_split"]["network"].get<double>(), 0.6) << j["time_split"].dump();
  const std::string upstream_addr = "upstream 127.0.0.1:" + std::to_string(upstream->port());
  EXPECT_NE(j["bottlenecks"].dump().find(upstream_addr), std::string::npos)
      << j["bottlenecks"].dump(2);
  ASSERT_TRUE(j["sources"].contains("socket order")) << j["sources"].dump(2);
  EXPECT_TRUE(j["sources"]["socket order"]["available"].get<bool>())
      << j["sources"]["socket order"].dump();
}

TEST(EventLoop, AProxyWithAFastUpstreamAndLightLoadStaysIdle) {
  auto upstream =
      test_support::LabProcess::start({"--role", "upstream", "--delay-ms", "0", "--port", "0"});
  ASSERT_TRUE(upstream) << upstream.error().message;
  Proxy p;
  ASSERT_TRUE(start_haproxy(p, upstream->port(), 4));
  const auto j = diagnose_under_load(p, "100", "8");
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["verdict"], "none") << j["time_split"].dump();
  EXPECT_LT(j["time_split"]["network"].get<double>(), 0.1) << j["time_split"].dump();
}

// chokepoint-lab --scenario proxy in front of a 10 ms upstream, under wrk -t1 -c16 (more clients
// than the pool's four connections), diagnosed for 3 s after 1.5 s of load.
// With `rate` set, the load is `chokepoint load --rate rate -c 8` instead, against an upstream that
// answers at once (the healthy case).
nlohmann::json diagnose_lab_proxy(const std::vector<std::string>& proxy_flags, int& upstream_port,
                                  const std::string& rate = "") {
  auto upstream = test_support::LabProcess::start(
      {"--role", "upstream", "--delay-ms", rate.empty() ? "10" : "0", "--port", "0"});
  EXPECT_TRUE(upstream) << upstream.error().message;
  if (!upstream) return nlohmann::json::value_t::discarded;
  upstream_port = upstream->port();
  std::vector<std::string> args = {"--scenario", "proxy",
                                   "--port",     "0",
                                   "--upstream", "127.0.0.1:" + std::to_string(upstream->port())};
  args.insert(args.end(), proxy_flags.begin(), proxy_flags.end());
  auto proxy = test_support::LabProcess::start(args);
  EXPECT_TRUE(proxy) << proxy.error().message;
  if (!proxy) return nlohmann::json::value_t::discarded;
  const std::string url = "http://127.0.0.1:" + std::to_string(proxy->port()) + "/";
  auto load = rate.empty()
                  ? Background::start("wrk", {"-t1", "-c16", "-d10s", "--timeout", "5s", url})
                  : Background::start(test_support::chokepoint_bin(),
                                      {"load", url, "--rate", rate, "-c", "8", "--duration", "8s"});
  EXPECT_TRUE(load) << load.error().message;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto r = test_support::run_chokepoint({"diagnose", "--pid", std::to_string(proxy->pid()), "-d",
                                         "3s", "--no-stacks", "--no-probes", "--json"},
                                        60);
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  return nlohmann::json::parse(r.stdout_text, nullptr, false);
}

TEST(EventLoop, TheLabProxyWaitingOnItsUpstreamIsNetworkNamingTheUpstream) {
  int upstream_port = 0;
  const auto j = diagnose_lab_proxy({}, upstream_port);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["verdict"], "network") << j["time_split"].dump();
  const std::string upstream_addr = "upstream 127.0.0.1:" + std::to_string(upstream_port);
  EXPECT_NE(j["bottlenecks"].dump().find(upstream_addr), std::string::npos)
      << j["bottlenecks"].dump(2);
  ASSERT_FALSE(j["bottlenecks"].empty());
  EXPECT_EQ(j["bottlenecks"][0]["kind"], "upstream") << j["bottlenecks"][0].dump(2);
  EXPECT_GT(j["bottlenecks"][0]["share"].get<double>(), 0.6) << j["time_split"].dump();
}

TEST(EventLoop, TheLabProxyWithItsCacheIsNoLongerWaitingOnTheNetwork) {
  int upstream_port = 0;
  const auto j = diagnose_lab_proxy({"--cache", "on"}, upstream_port);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_NE(j["verdict"], "network") << j["time_split"].dump();
  EXPECT_LT(j["time_split"]["network"].get<double>(), 0.05) << j["time_split"].dump();
}

TEST(EventLoop, TheLabProxyWithAFastUpstreamAndLightLoadIsNone) {
  int upstream_port = 0;
  const auto j = diagnose_lab_proxy({}, upstream_port, "100");
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["verdict"], "none") << j["time_split"].dump();
  EXPECT_LT(j["time_split"]["network"].get<double>(), 0.1) << j["time_split"].dump();
}

// An event loop that only serves clients (the lab's none scenario, epoll model: no connection it
// opened) never starts the socket-order tracer, whose programs run at every send and receive of
// the host: the sources do not name it, while the loop was seen in epoll_wait. (The proxies above
// have upstream connections and must name it.)
TEST(EventLoop, ALoopThatOnlyServesClientsDoesNotStartTheSocketOrderTracer) {
  auto lab =
      test_support::LabProcess::start({"--scenario", "none", "--model", "epoll", "--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  auto load = Background::start(test_support::chokepoint_bin(),
                                {"load", "http://127.0.0.1:" + std::to_string(lab->port()) + "/",
                                 "--rate", "500", "-c", "8", "--duration", "5s"});
  ASSERT_TRUE(load) << load.error().message;
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  auto r = test_support::run_chokepoint({"diagnose", "--pid", std::to_string(lab->pid()), "-d",
                                         "2s", "--no-stacks", "--no-probes", "--json"},
                                        60);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  const auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  double in_epoll_s = 0;
  for (const auto& t : j["threads"]) {
    if (!t.contains("waits_s")) continue;
    for (const auto& [what, seconds] : t["waits_s"].items()) {
      if (what == "idle: epoll_wait") in_epoll_s += seconds.get<double>();
    }
  }
  EXPECT_GT(in_epoll_s, 1.0) << j["threads"].dump(2);
  EXPECT_FALSE(j["sources"].contains("socket order")) << j["sources"].dump(2);
}

}  // namespace
}  // namespace chokepoint
