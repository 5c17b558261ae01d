#pragma once
// A TCP listener of the test's own on 127.0.0.1, at a port the kernel chose. Header-only.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "util/scoped_fd.h"

namespace chokepoint::test_support {

// Listens with `backlog`; *addr gets the listener's address (to connect to). Invalid (errno set)
// when a step failed.
inline util::ScopedFd listen_on_loopback(int backlog, sockaddr_in* addr) {
  util::ScopedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fd;
  *addr = {};
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof *addr;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(addr), sizeof *addr) != 0 ||
      ::listen(fd.get(), backlog) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(addr), &len) != 0) {
    return util::ScopedFd();
  }
  return fd;
}

}  // namespace chokepoint::test_support
