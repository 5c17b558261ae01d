#include "report/connection_rtt.h"

#include <gtest/gtest.h>

#include "support/socket_sample.h"

namespace chokepoint::report {
namespace {

model::SocketSample connection(std::uint64_t inode, std::uint16_t peer_port, std::uint32_t rtt_us,
                               std::uint32_t total_retrans) {
  auto s = test_support::socket_sample(100, inode, model::SocketState::kEstablished,
                                       {"", 8080, "10.0.0.1", peer_port}, true);
  s.rtt_us = rtt_us;
  s.rttvar_us = rtt_us / 4;
  s.total_retrans = total_retrans;
  return s;
}

TEST(ConnectionRtt, TheSlowestHaveSeriesAndTheRestAreSummedUp) {
  // Twelve connections over three columns, connection k with an RTT of k ms; four shown.
  ConnectionRtt rtt(4);
  for (int column = 0; column < 3; ++column) {
    model::Tick t;
    for (std::uint32_t k = 1; k <= 12; ++k) {
      t.sockets.push_back(connection(k, static_cast<std::uint16_t>(40000 + k), k * 1000,
                                     k == 12 ? 3U * static_cast<std::uint32_t>(column) : 5U));
    }
    model::SocketSample listener = connection(99, 0, 0, 0);
    listener.state = model::SocketState::kListen;
    t.sockets.push_back(listener);
    rtt.add(t, column);
  }
  const nlohmann::json j = rtt.finish(3);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["connections"], 12);
  ASSERT_EQ(j["shown"].size(), 4u);
  EXPECT_EQ(j["shown"][0]["peer"], "10.0.0.1:40012");
  EXPECT_EQ(j["shown"][0]["side"], "client");
  EXPECT_EQ(j["shown"][0]["srtt_ms"], nlohmann::json({12.0, 12.0, 12.0}));
  EXPECT_EQ(j["shown"][0]["rttvar_ms"], nlohmann::json({3.0, 3.0, 3.0}));
  // The growth of tcpi_total_retrans per column: none in the first column it was seen in.
  EXPECT_EQ(j["shown"][0]["retransmits"], nlohmann::json({0, 3, 3}));
  EXPECT_EQ(j["shown"][0]["total_retransmits"], 6);
  EXPECT_EQ(j["shown"][1]["total_retransmits"], 0);
  EXPECT_EQ(j["shown"][3]["max_srtt_ms"], 9.0);
  ASSERT_TRUE(j["rest"].is_object());
  EXPECT_EQ(j["rest"]["count"], 8);
  EXPECT_EQ(j["rest"]["max_srtt_ms"], nlohmann::json({8.0, 8.0, 8.0}));
  EXPECT_EQ(j["rest"]["median_srtt_ms"], nlohmann::json({5.0, 5.0, 5.0}));
}

TEST(ConnectionRtt, AColumnKeepsItsLargestReadAndGapsAreNull) {
  ConnectionRtt rtt;
  model::Tick a, b;
  a.sockets = {connection(1, 5432, 2000, 0)};
  b.sockets = {connection(1, 5432, 7000, 1)};
  rtt.add(a, 0);
  rtt.add(b, 0);
  rtt.add(a, 2);  // a smaller total: a reused inode's counter, not a negative growth
  const nlohmann::json j = rtt.finish(3);
  ASSERT_EQ(j["shown"].size(), 1u);
  EXPECT_EQ(j["shown"][0]["srtt_ms"], nlohmann::json({7.0, nullptr, 2.0}));
  EXPECT_EQ(j["shown"][0]["retransmits"], nlohmann::json({1, nullptr, 0}));
  EXPECT_TRUE(j["rest"].is_null());
}

TEST(ConnectionRtt, NoConnectionIsNull) {
  ConnectionRtt rtt;
  model::Tick t;
  rtt.add(t, 0);
  EXPECT_TRUE(rtt.finish(1).is_null());
}

}  // namespace
}  // namespace chokepoint::report
