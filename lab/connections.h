#pragma once
// The scenarios about connections and the OS limits they meet:
//
// - conn-leak: the server never closes a connection the client closed. Each one stays in
//   CLOSE_WAIT, holding a file descriptor, until the process exits. Fix: --close-on-eof.
// - conn-storm: every request opens a new connection to the upstream (--upstream, a --role
//   upstream lab), makes one call and closes it first, so each call leaves a local port in
//   TIME_WAIT for 60 s; at a few hundred requests/s the ephemeral port range runs out and
//   connect() fails with EADDRNOTAVAIL. Fix: --keep-alive (one kept-alive connection per thread).

#include <memory>

#include "lab/options.h"
#include "lab/scenarios.h"

namespace chokepoint::lab {

// The handler of o.scenario, which must be kConnLeak or kConnStorm.
std::unique_ptr<Handler> make_connection_handler(const Options& o);

}  // namespace chokepoint::lab
