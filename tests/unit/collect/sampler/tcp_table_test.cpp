// take_tcp_table (collect/sampler/tcp_table.h) on real loopback sockets of this test.
#include "collect/sampler/tcp_table.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

#include "collect/procfs/proc_fs.h"
#include "support/loopback.h"
#include "util/clock.h"
#include "util/scoped_fd.h"

namespace chokepoint::collect::sampler {
namespace {

// A server that closed its connections first (they stay in TIME_WAIT on its side for a minute)
// and then exited, as other programs' test servers do on a host: with the listener gone, its
// orphans were grouped as client sockets, one group per client port, and a host with 12,000 of
// them gave the agent tables of thousands of groups (147 MB of RSS instead of 30). They are one
// server-side group of the server's port.
TEST(TcpTable, TimeWaitOfAServerThatExitedIsOneGroup) {
  constexpr int kConnections = 200;
  sockaddr_in addr{};
  util::ScopedFd listener = test_support::listen_on_loopback(kConnections, &addr);
  ASSERT_TRUE(listener.valid());
  const std::uint16_t port = ntohs(addr.sin_port);
  for (int i = 0; i < kConnections; ++i) {
    util::ScopedFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(client.valid());
    ASSERT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    {
      util::ScopedFd accepted(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
      ASSERT_TRUE(accepted.valid());
    }  // the server closes first: its side goes to TIME_WAIT
    char byte = 0;
    ASSERT_EQ(::read(client.get(), &byte, 1), 0);  // the FIN came; the client closes second
  }
  listener.reset();

  std::string problem;
  auto table = take_tcp_table(
      procfs::ProcFs(), {}, true, util::monotonic_ns(),
      [](int) -> const std::vector<procfs::FdEntry>* { return nullptr; }, &problem);
  ASSERT_TRUE(table.has_value()) << problem;
  std::uint64_t server_side = 0;
  int groups_of_port = 0;
  for (const auto& g : table->groups) {
    if (g.state != model::TcpState::kTimeWait) continue;
    if (g.local_port == port || g.remote_port == port) {
      ++groups_of_port;
      EXPECT_TRUE(g.server_side);
      EXPECT_EQ(g.local_port, port);
      EXPECT_EQ(g.remote_port, 0);
      if (g.server_side && g.local_port == port) server_side += g.count;
    }
  }
  EXPECT_EQ(groups_of_port, 1);
  EXPECT_EQ(server_side, static_cast<std::uint64_t>(kConnections));
}

}  // namespace
}  // namespace chokepoint::collect::sampler
