#include "collect/procfs/net.h"
#include "unit/collect/procfs/fixture_text.h"

#include <gtest/gtest.h>

#include <fstream>
#include <limits>
#include <sstream>
#include <string>

namespace chokepoint::collect::procfs {
namespace {

constexpr Units kUnits = testing::kFixtureUnits;
constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

using testing::fixture;

TEST(NetDev, HostFile) {
  auto devs = parse_net_dev(fixture("host/net/dev"));
  ASSERT_TRUE(devs);
  bool have_lo = false;
  for (const auto& d : *devs) {
    if (d.name != "lo") continue;
    have_lo = true;
    EXPECT_EQ(d.rx_bytes, d.tx_bytes);  // loopback receives what it sends
    EXPECT_EQ(d.rx_packets, d.tx_packets);
  }
  EXPECT_TRUE(have_lo);
}

TEST(NetDev, ColumnsAndGluedNames) {
  const std::string header =
      "Inter-|   Receive                                                |  Transmit\n"
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
      "drop fifo colls carrier compressed\n";
  auto devs = parse_net_dev(header +
                            "  eth0:100 2 3 4 5 6 7 8 900 10 11 12 13 14 15 16\n"
                            "veth-a_b: 1 1 0 0 0 0 0 0 2 2 0 0 0 0 0 0\n");
  ASSERT_TRUE(devs);
  ASSERT_EQ(devs->size(), 2u);
  const auto& eth = (*devs)[0];
  EXPECT_EQ(eth.name, "eth0");
  EXPECT_EQ(eth.rx_bytes, 100u);
  EXPECT_EQ(eth.rx_packets, 2u);
  EXPECT_EQ(eth.rx_errs, 3u);
  EXPECT_EQ(eth.rx_drops, 4u);
  EXPECT_EQ(eth.tx_bytes, 900u);
  EXPECT_EQ(eth.tx_packets, 10u);
  EXPECT_EQ(eth.tx_errs, 11u);
  EXPECT_EQ(eth.tx_drops, 12u);
  EXPECT_EQ((*devs)[1].name, "veth-a_b");

  auto max = parse_net_dev(fixture("counters_max/net/dev"));
  ASSERT_TRUE(max);
  EXPECT_EQ((*max)[0].rx_bytes, kMax);
  EXPECT_EQ((*max)[0].tx_bytes, kMax - 2);

  EXPECT_FALSE(parse_net_dev(header + "eth0: 1 2 3\n"));
  EXPECT_FALSE(parse_net_dev(header + ": 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"));
  EXPECT_FALSE(parse_net_dev(header + "eth0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"));
}

TEST(NetCounters, SnmpAndNetstat) {
  auto snmp = parse_net_counters(fixture("host/net/snmp"));
  ASSERT_TRUE(snmp);
  EXPECT_TRUE(snmp->get("Tcp.RetransSegs"));
  EXPECT_TRUE(snmp->get("Tcp.ActiveOpens"));
  EXPECT_EQ(snmp->get("Tcp.MaxConn"), -1);  // printed signed
  EXPECT_TRUE(snmp->get("Udp.InDatagrams"));
  auto netstat = parse_net_counters(fixture("host/net/netstat"));
  ASSERT_TRUE(netstat);
  EXPECT_TRUE(netstat->get("TcpExt.ListenOverflows"));
  EXPECT_TRUE(netstat->get("TcpExt.ListenDrops"));
  EXPECT_TRUE(netstat->get("IpExt.InOctets"));
  NetCounters all = *snmp;
  merge_net_counters(all, *netstat);
  EXPECT_EQ(all.values.size(), snmp->values.size() + netstat->values.size());
  EXPECT_FALSE(all.get("Tcp.Nothing"));
}

TEST(NetCounters, PairsMustMatch) {
  auto c = parse_net_counters("Tcp: A B\nTcp: 1 -2\nTcpExt: C\nTcpExt: 18446744073709551615\n");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->get("Tcp.A"), 1);
  EXPECT_EQ(c->get("Tcp.B"), -2);
  EXPECT_EQ(c->get("TcpExt.C"), -1);  // above INT64_MAX: wraps (modular deltas still work)
  EXPECT_FALSE(parse_net_counters(""));
  EXPECT_FALSE(parse_net_counters("Tcp: A B\n"));            // header without values
  EXPECT_FALSE(parse_net_counters("Tcp: A B\nTcp: 1\n"));    // count differs
  EXPECT_FALSE(parse_net_counters("Tcp: A B\nUdp: 1 2\n"));  // proto differs
  EXPECT_FALSE(parse_net_counters("Tcp: A B\nTcp: 1 x\n"));
  EXPECT_FALSE(parse_net_counters("Tcp A B\nTcp 1 2\n"));  // no ':'
}

TEST(Sockstat, TcpLine) {
  auto s = parse_sockstat(fixture("host/net/sockstat"), kUnits);
  ASSERT_TRUE(s);
  EXPECT_GT(s->sockets_used, 0u);
  auto t = parse_sockstat(
      "sockets: used 12\nTCP: inuse 3 orphan 1 tw 40 alloc 5 mem 195\nUDP: inuse 2 mem 1\n"
      "UDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n",
      kUnits);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->sockets_used, 12u);
  EXPECT_EQ(t->tcp_inuse, 3u);
  EXPECT_EQ(t->tcp_orphan, 1u);
  EXPECT_EQ(t->tcp_tw, 40u);
  EXPECT_EQ(t->tcp_alloc, 5u);
  EXPECT_EQ(t->tcp_mem_bytes, 195u * 4096);
  EXPECT_EQ(t->udp_inuse, 2u);
  EXPECT_EQ(t->udp_mem_bytes, 4096u);
  EXPECT_FALSE(parse_sockstat("sockets: used 12\n", kUnits));
  EXPECT_FALSE(parse_sockstat("sockets: used 12\nTCP: inuse\n", kUnits));
  EXPECT_FALSE(parse_sockstat("sockets: used x\nTCP: inuse 1\n", kUnits));
}

TEST(PortRange, HostFileAndOddContent) {
  auto r = parse_port_range("32768\t60999\n");  // what the kernel prints
  ASSERT_TRUE(r);
  EXPECT_EQ(r->low, 32768u);
  EXPECT_EQ(r->high, 60999u);
  EXPECT_EQ(r->size(), 28232u);
  auto one = parse_port_range("  40000 40000 ");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->size(), 1u);
  EXPECT_FALSE(parse_port_range(""));
  EXPECT_FALSE(parse_port_range("32768\n"));
  EXPECT_FALSE(parse_port_range("1 2 3\n"));
  EXPECT_FALSE(parse_port_range("60999\t32768\n"));  // reversed
  EXPECT_FALSE(parse_port_range("1024\t65536\n"));   // not a port
  EXPECT_FALSE(parse_port_range("-1\t100\n"));
  EXPECT_FALSE(parse_port_range("1024\t0x100\n"));
  EXPECT_FALSE(parse_port_range("18446744073709551616 1\n"));
}

TEST(ConntrackStat, SumsTheCpusAndKeepsTheNamespaceCount) {
  // 6.18's layout, two CPUs, from a namespace past nf_conntrack_max.
  const char* text =
      "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop "
      "early_drop icmp_error  expect_new expect_create expect_delete search_restart\n"
      "00040000  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001 "
      "00000002 00001000 00000000  00000000 00000000 00000000 00000000\n"
      "00040000  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 "
      "00000003 00000f00 00000000  00000000 00000000 00000000 00000000\n";
  auto s = parse_conntrack_stat(text);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->entries, 262144u);  // once, not summed
  EXPECT_EQ(s->insert_failed, 1u);
  EXPECT_EQ(s->drop, 5u);
  EXPECT_EQ(s->early_drop, 0x1f00u);
  // An older kernel's shorter header: columns are found by name.
  auto old = parse_conntrack_stat("entries searched found drop early_drop\n0000000a 1 2 3 4\n");
  ASSERT_TRUE(old);
  EXPECT_EQ(old->entries, 10u);
  EXPECT_EQ(old->drop, 3u);
  EXPECT_EQ(old->early_drop, 4u);
  EXPECT_FALSE(parse_conntrack_stat(""));
  EXPECT_FALSE(parse_conntrack_stat("entries drop\n"));         // no row
  EXPECT_FALSE(parse_conntrack_stat("entries drop\n1 2 3\n"));  // a row that does not fit
  EXPECT_FALSE(parse_conntrack_stat("entries drop\n1 zz\n"));
  EXPECT_FALSE(parse_conntrack_stat("found drop\n1 2\n"));  // not this file
}

}  // namespace
}  // namespace chokepoint::collect::procfs
