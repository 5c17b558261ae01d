#pragma once
// A TCP socket as the sampler reports one (model::SocketSample), for tests that build ticks by
// hand: its owner, inode, state and two ends in one call, where each test set them field by field.
// What tcp_info adds (RTT, queues, retransmits, bytes acknowledged) stays 0 for the test to set.
// Header-only; needs src/ on the include path (model/samples.h).

#include <cstdint>
#include <string>
#include <utility>

#include "model/samples.h"

namespace chokepoint::test_support {

struct SocketEnds {
  std::string local_addr;  // "" where the test does not look at it
  std::uint16_t local_port = 0;
  std::string remote_addr;
  std::uint16_t remote_port = 0;
};

// Socket `inode` of process `pid` in `state` between `ends`; server_side: accepted from a
// listener of the namespace (the peer is a client).
inline model::SocketSample socket_sample(int pid, std::uint64_t inode, model::SocketState state,
                                         SocketEnds ends, bool server_side = false) {
  model::SocketSample s;
  s.pid = pid;
  s.inode = inode;
  s.state = state;
  s.server_side = server_side;
  s.local_addr = std::move(ends.local_addr);
  s.local_port = ends.local_port;
  s.remote_addr = std::move(ends.remote_addr);
  s.remote_port = ends.remote_port;
  return s;
}

}  // namespace chokepoint::test_support
