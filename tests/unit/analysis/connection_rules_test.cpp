// The TCP connection rules (close_wait, ephemeral_ports, accept_queue, syn_flood, conntrack) on
// tables shaped like the lab's conn-leak and conn-storm scenarios, and on healthy ones, which must
// stay silent.
#include <gtest/gtest.h>

#include <string>

#include "analysis/diagnosis.h"

namespace chokepoint::analysis {
namespace {

using model::TcpGroup;
using model::TcpState;

constexpr std::int64_t kWindowNs = 3'000'000'000;

model::TcpTableSample table() {
  model::TcpTableSample t;
  t.port_range_low = 32768;
  t.port_range_high = 60999;
  t.somaxconn = 4096;
  t.max_syn_backlog = 512;
  t.tw_reuse = 2;
  t.syncookies = 1;
  t.listeners.push_back({"127.0.0.1", 8080, 0, 4096, true});
  return t;
}

TcpGroup server(TcpState s, std::uint64_t n, bool target = true) {
  return {s, true, target, "127.0.0.1", 8080, "127.0.0.2", 0, n};
}

TcpGroup client(TcpState s, std::uint64_t n, bool target = true) {
  return {s, false, target, "10.200.1.2", 0, "10.200.1.1", 9001, n};
}

model::Observation observe(model::TcpTableSample end,
                           std::optional<model::TcpTableSample> start = std::nullopt) {
  model::Observation o;
  o.target = {"pid", "100", {100}};
  o.duration_ns = kWindowNs;
  o.system.cpus_online = 2;
  o.system.cpus_allowed = 2;
  model::ProcessSummary p;
  p.pid = 100;
  p.name = "svc";
  p.open_fds = 700;
  p.fd_soft_limit = 1024;
  o.processes.push_back(p);
  model::TcpTable tcp;
  tcp.end = std::move(end);
  tcp.end.at_ns = kWindowNs;
  if (start) {
    tcp.start = std::move(start);
    tcp.span_s = 3;
  }
  o.system.tcp = std::move(tcp);
  return o;
}

std::vector<Finding> connection_findings(const model::Observation& o) {
  std::vector<Finding> out;
  for (const auto& f : diagnose(o).findings) {
    if (f.resource == FindingResource::kConnections) out.push_back(f);
  }
  return out;
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(TcpStates, NamesRoundTrip) {
  for (int i = 1; i <= model::kTcpStateMax; ++i) {
    const auto s = static_cast<TcpState>(i);
    EXPECT_EQ(model::tcp_state_from_name(model::tcp_state_name(s)), s);
  }
  EXPECT_EQ(model::tcp_state_name(static_cast<TcpState>(0)), "UNKNOWN");
  EXPECT_EQ(model::tcp_state_name(static_cast<TcpState>(200)), "UNKNOWN");
  EXPECT_FALSE(model::tcp_state_from_name("UNKNOWN"));
  EXPECT_FALSE(model::tcp_state_from_name("established"));
}

TEST(TcpStates, CountsAndPortRange) {
  auto t = table();
  t.groups = {server(TcpState::kCloseWait, 5), client(TcpState::kCloseWait, 7, false)};
  EXPECT_EQ(t.count(TcpState::kCloseWait), 5u);
  EXPECT_EQ(t.count(TcpState::kCloseWait, false), 12u);
  EXPECT_EQ(t.port_range_size(), 28232u);
  t.port_range_high.reset();
  EXPECT_EQ(t.port_range_size(), 0u);
}

TEST(ConnectionRules, HealthyTableIsSilent) {
  auto t = table();
  t.groups = {server(TcpState::kEstablished, 16), server(TcpState::kTimeWait, 40),
              server(TcpState::kCloseWait, 2),    client(TcpState::kEstablished, 32),
              client(TcpState::kTimeWait, 900),   server(TcpState::kSynRecv, 3)};
  t.listeners[0].accept_queue = 3;
  EXPECT_TRUE(connection_findings(observe(t, t)).empty());
}

TEST(ConnectionRules, NoTableIsSilent) {
  auto o = observe(table());
  o.system.tcp.reset();
  EXPECT_TRUE(connection_findings(o).empty());
}

TEST(ConnectionRules, CloseWaitPilingUpIsALeak) {
  auto before = table();
  before.groups = {server(TcpState::kCloseWait, 30)};
  auto after = table();
  after.groups = {server(TcpState::kCloseWait, 630), server(TcpState::kEstablished, 4)};
  auto f = connection_findings(observe(after, before));
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].severity, Severity::kWarning);
  EXPECT_TRUE(has(f[0].message, "630 connections in CLOSE_WAIT")) << f[0].message;
  EXPECT_TRUE(has(f[0].message, "up from 30 3.0 s earlier (+200/s)")) << f[0].message;
  EXPECT_TRUE(has(f[0].message, "630 on 127.0.0.1:8080 from 127.0.0.2")) << f[0].message;
  EXPECT_TRUE(has(f[0].message, "pid 100 has 700 of 1024 file descriptors")) << f[0].message;
  EXPECT_TRUE(has(f[0].hint, "read() returns 0")) << f[0].hint;
  EXPECT_FALSE(has(f[0].hint, "pooled")) << f[0].hint;
}

TEST(ConnectionRules, CloseWaitToAnUpstreamBlamesThePool) {
  auto t = table();
  t.groups = {client(TcpState::kCloseWait, 64)};
  auto f = connection_findings(observe(t));
  ASSERT_EQ(f.size(), 1u);
  EXPECT_TRUE(has(f[0].message, "64 from 10.200.1.2 to 10.200.1.1:9001")) << f[0].message;
  EXPECT_TRUE(has(f[0].hint, "pooled connections")) << f[0].hint;
}

TEST(ConnectionRules, FewOrForeignCloseWaitIsSilent) {
  auto t = table();
  t.groups = {server(TcpState::kCloseWait, 31), server(TcpState::kCloseWait, 500, false)};
  EXPECT_TRUE(connection_findings(observe(t)).empty());
}

TEST(ConnectionRules, PortsNearTheRangeAreExhaustion) {
  auto t = table();
  t.port_range_low = 40000;
  t.port_range_high = 40255;
  t.groups = {client(TcpState::kTimeWait, 250), client(TcpState::kEstablished, 6)};
  auto f = connection_findings(observe(t));
  ASSERT_EQ(f.size(), 1u);
  EXPECT_TRUE(has(f[0].message,
                  "256 local ports of 10.200.1.2 are taken by connections to "
                  "10.200.1.1:9001 (250 in TIME_WAIT): 100% of the 256"))
      << f[0].message;
  EXPECT_TRUE(has(f[0].message, "40000-40255")) << f[0].message;
  EXPECT_TRUE(has(f[0].message, "EADDRNOTAVAIL")) << f[0].message;
  EXPECT_TRUE(has(f[0].hint, "keep-alive")) << f[0].hint;
  EXPECT_TRUE(has(f[0].hint, "net.ipv4.tcp_tw_reuse=1 (now 2)")) << f[0].hint;
}

TEST(ConnectionRules, PortsOfOthersOrHalfUsedAreSilent) {
  auto t = table();
  t.port_range_low = 40000;
  t.port_range_high = 40255;
  t.groups = {client(TcpState::kTimeWait, 120)};  // 47%
  EXPECT_TRUE(connection_findings(observe(t)).empty());
  t.groups = {client(TcpState::kTimeWait, 250, false)};
  EXPECT_TRUE(connection_findings(observe(t)).empty());
  t.port_range_low.reset();  // unknown range: nothing to compare with
  t.groups = {client(TcpState::kTimeWait, 250)};
  EXPECT_TRUE(connection_findings(observe(t)).empty());
}

TEST(ConnectionRules, FullAcceptQueueNamesWhatCapsIt) {
  auto t = table();
  t.somaxconn = 128;
  t.listeners = {{"127.0.0.1", 8080, 129, 128, true}};
  auto f = connection_findings(observe(t));
  ASSERT_EQ(f.size(), 1u);
  EXPECT_TRUE(has(f[0].message, "accept queue of 127.0.0.1:8080 is full: 129")) << f[0].message;
  EXPECT_TRUE(has(f[0].hint, "net.core.somaxconn 128 caps it")) << f[0].hint;

  // The service's own small backlog, full at both dumps: one finding.
  auto small = table();
  small.listeners = {{"::1", 8080, 1, 1, true}};
  f = connection_findings(observe(small, small));
  ASSERT_EQ(f.size(), 1u);
  EXPECT_TRUE(has(f[0].message, "[::1]:8080")) << f[0].message;
  EXPECT_TRUE(has(f[0].hint, "asked listen() for 1 (net.core.somaxconn is 4096)")) << f[0].hint;

  small.listeners[0].target = false;
  EXPECT_TRUE(connection_findings(observe(small)).empty());
}

TEST(ConnectionRules, HalfOpenPileIsASynFlood) {
  auto t = table();
  t.syncookies = 0;
  t.groups = {server(TcpState::kSynRecv, 300)};
  auto f = connection_findings(observe(t));
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].message,
            "300 half-open connections (SYN_RECV): 300 on 127.0.0.1:8080 from 1 client address "
            "(the most from one: 300 from 127.0.0.2); net.ipv4.tcp_max_syn_backlog is 512, "
            "tcp_syncookies 0");
  EXPECT_TRUE(has(f[0].hint, "tcp_syncookies=1")) << f[0].hint;
  EXPECT_TRUE(has(f[0].hint, "one source holds most of them")) << f[0].hint;

  // Spoofed sources: one SYN from each of 200 addresses, summed by listener.
  t.groups.clear();
  for (int i = 1; i <= 200; ++i) {
    t.groups.push_back({TcpState::kSynRecv, true, true, "127.0.0.1", 8080,
                        "198.18.0." + std::to_string(i % 250), 0, 1});
  }
  t.syncookies = 1;
  f = connection_findings(observe(t));
  ASSERT_EQ(f.size(), 1u);
  EXPECT_TRUE(has(f[0].message,
                  "200 half-open connections (SYN_RECV): 200 on 127.0.0.1:8080 "
                  "from 200 client addresses (the most from one: 1 from 198.18.0."))
      << f[0].message;
  EXPECT_FALSE(has(f[0].hint, "tcp_syncookies=1")) << "they are on: " << f[0].hint;
  EXPECT_TRUE(has(f[0].hint, "spoofed addresses")) << f[0].hint;
  t.syncookies = 0;

  t.groups = {server(TcpState::kSynRecv, 100)};  // under a quarter of 512... but over 64
  EXPECT_TRUE(connection_findings(observe(t)).empty());
}

TEST(ConnectionRules, ConntrackNearItsMaxOrFullIsAFinding) {
  auto before = table();
  before.conntrack_max = 262144;
  before.conntrack_count = 1000;
  before.conntrack_drop = 0;
  before.conntrack_early_drop = 40;
  before.conntrack_insert_failed = 0;
  auto healthy = before;
  healthy.conntrack_count = 200000;  // 76%: room left, nothing dropped
  healthy.conntrack_early_drop = 40;
  EXPECT_TRUE(connection_findings(observe(healthy, before)).empty());

  auto near = healthy;
  near.conntrack_count = 220000;  // 84%
  auto f = connection_findings(observe(near, before));
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].message,
            "the connection tracking table of the target's network namespace holds 220000 "
            "entries of net.netfilter.nf_conntrack_max 262144 (84%)");
  EXPECT_TRUE(has(f[0].hint, "sysctl -w net.netfilter.nf_conntrack_max=524288")) << f[0].hint;
  EXPECT_TRUE(has(f[0].hint, "NOTRACK")) << f[0].hint;

  auto full = near;
  full.conntrack_count = 262144;
  full.conntrack_drop = 12;
  full.conntrack_early_drop = 5040;
  full.conntrack_insert_failed = 1;
  f = connection_findings(observe(full, before));
  ASSERT_EQ(f.size(), 1u);
  EXPECT_TRUE(has(f[0].message,
                  "(100%); the table was full during the window: 12 packets of new flows "
                  "dropped, 5000 unreplied entries evicted to make room "
                  "(/proc/net/stat/nf_conntrack drop, early_drop; 1 inserts failed)"))
      << f[0].message;

  // Drops since the namespace began, none in the window, and a table with room: silent. Without
  // a start there is no window to count in, only the fill.
  auto old_drops = healthy;
  old_drops.conntrack_drop = 12;
  auto start = old_drops;
  EXPECT_TRUE(connection_findings(observe(old_drops, start)).empty());
  EXPECT_TRUE(connection_findings(observe(full)).size() == 1u);
  auto unknown_max = full;
  unknown_max.conntrack_max.reset();
  EXPECT_TRUE(connection_findings(observe(unknown_max, before)).empty());
}

}  // namespace
}  // namespace chokepoint::analysis
