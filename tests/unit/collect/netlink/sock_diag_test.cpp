#include "collect/netlink/sock_diag.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "util/scoped_fd.h"

namespace chokepoint::collect::netlink {
namespace {

std::uint64_t inode_of(int fd) {
  struct stat st {};
  fstat(fd, &st);
  return st.st_ino;
}

// A real listening socket and a real connection over loopback; the dump must find both by inode,
// with the right states, ports and tcp_info.
TEST(SockDiag, FindsRealLoopbackSocketsByInode) {
  util::ScopedFd listener(socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_TRUE(listener.valid());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(listener.get(), 7), 0);
  socklen_t len = sizeof addr;
  getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  std::uint16_t port = ntohs(addr.sin_port);

  util::ScopedFd client(socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_EQ(connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  util::ScopedFd server(accept(listener.get(), nullptr, nullptr));
  ASSERT_TRUE(server.valid());
  // The client sends a request the server has not answered: the client side has sent data more
  // recently than it received any, which is how the sampler spots an outstanding request.
  ASSERT_EQ(write(client.get(), "ping", 4), 4);

  auto diag = SockDiag::open();
  ASSERT_TRUE(diag) << diag.error().message;
  auto sockets = diag->dump_tcp();
  ASSERT_TRUE(sockets) << sockets.error().message;

  auto find = [&](std::uint64_t inode) {
    return std::find_if(sockets->begin(), sockets->end(),
                        [&](const TcpSocket& s) { return s.inode == inode; });
  };
  auto l = find(inode_of(listener.get()));
  ASSERT_NE(l, sockets->end());
  EXPECT_EQ(l->state, TcpState::kListen);
  EXPECT_EQ(l->local_port, port);
  EXPECT_EQ(l->send_queue_bytes, 7u);  // the backlog

  auto c = find(inode_of(client.get()));
  ASSERT_NE(c, sockets->end());
  EXPECT_EQ(c->state, TcpState::kEstablished);
  EXPECT_EQ(c->remote_port, port);
  EXPECT_EQ(c->remote_addr, "127.0.0.1");
  EXPECT_TRUE(c->has_info);
  EXPECT_GE(c->bytes_acked, 4u);

  auto s = find(inode_of(server.get()));
  ASSERT_NE(s, sockets->end());
  EXPECT_EQ(s->local_port, port);
  EXPECT_EQ(s->recv_queue_bytes, 4u);  // the unread "ping"
  EXPECT_EQ(s->bytes_received, 4u);
}

// One dump_tcp walks the kernel's hashes once for both families (the TCPDIAG_GETSOCK request):
// an IPv4 and an IPv6 listener must both come back, with their families, from a full dump and a
// listeners-only one.
TEST(SockDiag, OneDumpHasBothFamilies) {
  util::ScopedFd v4(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a4{};
  a4.sin_family = AF_INET;
  a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(v4.get(), reinterpret_cast<sockaddr*>(&a4), sizeof a4), 0);
  ASSERT_EQ(listen(v4.get(), 3), 0);
  util::ScopedFd v6(socket(AF_INET6, SOCK_STREAM, 0));
  ASSERT_TRUE(v6.valid()) << "IPv6 sockets: " << strerror(errno);
  sockaddr_in6 a6{};
  a6.sin6_family = AF_INET6;
  a6.sin6_addr = in6addr_loopback;
  ASSERT_EQ(bind(v6.get(), reinterpret_cast<sockaddr*>(&a6), sizeof a6), 0) << strerror(errno);
  ASSERT_EQ(listen(v6.get(), 5), 0);

  auto diag = SockDiag::open();
  ASSERT_TRUE(diag) << diag.error().message;
  for (std::uint32_t mask : {SockDiag::kAllStates, SockDiag::kListenOnly}) {
    auto sockets = diag->dump_tcp(mask);
    ASSERT_TRUE(sockets) << sockets.error().message;
    auto find = [&](std::uint64_t inode) {
      return std::find_if(sockets->begin(), sockets->end(),
                          [&](const TcpSocket& s) { return s.inode == inode; });
    };
    auto l4 = find(inode_of(v4.get()));
    ASSERT_NE(l4, sockets->end());
    EXPECT_EQ(l4->family, AF_INET);
    EXPECT_EQ(l4->send_queue_bytes, 3u);
    auto l6 = find(inode_of(v6.get()));
    ASSERT_NE(l6, sockets->end());
    EXPECT_EQ(l6->family, AF_INET6);
    EXPECT_EQ(l6->local_addr, "::1");
    EXPECT_EQ(l6->send_queue_bytes, 5u);
    // Each socket once.
    EXPECT_EQ(std::count_if(sockets->begin(), sockets->end(),
                            [&](const TcpSocket& s) { return s.inode == l6->inode; }),
              1);
  }
}

TEST(SockDiag, NetnsInodeOfSelfMatchesOpen) {
  auto diag = SockDiag::open();
  ASSERT_TRUE(diag);
  auto ino = netns_inode_of(getpid());
  ASSERT_TRUE(ino);
  EXPECT_EQ(diag->netns_inode(), *ino);
  auto same = SockDiag::open_in_netns_of(getpid());
  ASSERT_TRUE(same);
  EXPECT_EQ(same->netns_inode(), *ino);
}

TEST(SockDiag, VanishedPidIsAnError) {
  auto r = SockDiag::open_in_netns_of(999999999);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("ns/net"), std::string::npos);
}

}  // namespace
}  // namespace chokepoint::collect::netlink
