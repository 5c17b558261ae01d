#include "collect/sampler/wait_observer.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "util/scoped_fd.h"

namespace chokepoint::collect::sampler {
namespace {

// A connection of this process to a listener of its own on loopback: the client end is an
// upstream connection (it connected out), the accepted end serves a client.
struct Loopback {
  util::ScopedFd listener, client, server;
  std::uint16_t port = 0;

  bool open() {
    listener = util::ScopedFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (!listener.valid() || ::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), len) != 0 ||
        ::listen(listener.get(), 4) != 0 ||
        ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      return false;
    }
    port = ntohs(a.sin_port);
    client = util::ScopedFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!client.valid() || ::connect(client.get(), reinterpret_cast<sockaddr*>(&a), len) != 0) {
      return false;
    }
    server = util::ScopedFd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    return server.valid();
  }
  // One byte from `from` to `to`, read there.
  static bool pass(const util::ScopedFd& from, const util::ScopedFd& to) {
    char c = 'x';
    return ::send(from.get(), &c, 1, 0) == 1 && ::recv(to.get(), &c, 1, 0) == 1;
  }
};

procfs::SyscallState in_epoll_wait() {
  procfs::SyscallState sc;
  sc.kind = procfs::SyscallState::Kind::kInSyscall;
  sc.nr = SYS_epoll_wait;
  sc.args = {3, 0, 16, 1000, 0, 0};
  return sc;
}

// An event loop's read finds its process with a request out on a connection it opened: network.
// The reply comes; a read one tick later finds none: idle. What one look found stands for that
// read's interval, not for the reads of the next 200 ms (it did: a look that caught a request in
// the 10 µs before its reply made three reads network).
TEST(WaitObserver, ARequestOutAtOneReadIsNotCarriedToTheNext) {
  Loopback l;
  ASSERT_TRUE(l.open()) << "loopback: " << std::strerror(errno);
  // A request answered; then, a few jiffies later (tcp_info's send and receive times are in
  // jiffies), the next request, not answered yet.
  ASSERT_TRUE(Loopback::pass(l.client, l.server));
  ASSERT_TRUE(Loopback::pass(l.server, l.client));
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  ASSERT_TRUE(Loopback::pass(l.client, l.server));

  procfs::ProcFs proc;
  WaitObserver observer(proc);
  const std::int64_t t0_ns = 1'000'000'000;
  const auto first = observer.observe(::getpid(), in_epoll_wait(), 'S', t0_ns);
  EXPECT_TRUE(first.process_waits_on_network) << first.fd_detail;
  EXPECT_EQ(first.fd_detail, "upstream 127.0.0.1:" + std::to_string(l.port));

  ASSERT_TRUE(Loopback::pass(l.server, l.client));  // the reply
  const auto next = observer.observe(::getpid(), in_epoll_wait(), 'S', t0_ns + 100'000'000);
  EXPECT_FALSE(next.process_waits_on_network) << next.fd_detail;
}

}  // namespace
}  // namespace chokepoint::collect::sampler
