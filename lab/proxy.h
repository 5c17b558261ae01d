#pragma once
// The proxy scenario: an asynchronous reverse proxy in the style of nginx. One thread
// (`lab-proxy`) runs one epoll loop that accepts HTTP clients, and forwards each GET / to the
// --upstream (a `--role upstream` lab) over a pool of --upstream-pool non-blocking, kept-alive
// connections. A request that finds every pooled connection busy waits in a FIFO inside the
// proxy, the way nginx queues on `keepalive` upstreams or HAProxy on `maxconn`. Nothing blocks:
// while every client waits on the upstream, the loop sits in epoll_wait with requests written
// on its upstream connections and no reply read, which is what `chokepoint diagnose` must read
// as network (upstream), not idle.
//
// The fix is --cache on: answers kept per query key inside the loop, so a repeated key never
// reaches the upstream. (A larger --upstream-pool raises throughput while the upstream has
// capacity, but every miss still waits for the upstream.)
//
// Each upstream call is bounded by --upstream-timeout-ms (504 to the client); an upstream that
// fails or closes answers 502, and its pooled connection is reopened on its next use.
// GET /health answers inline; other paths 404, other methods 405; keep-alive and pipelining are
// served one request at a time per client, in order.

#include <memory>

#include "lab/options.h"
#include "lab/server.h"
#include "util/result.h"

namespace chokepoint::lab {

// Binds and listens (the port is ready on return), then starts the loop. options.upstream_host
// and upstream_port are set (parse_options checks them). Server::workers() is 1: the one loop.
util::Result<std::unique_ptr<Server>> start_proxy(const Options& options);

}  // namespace chokepoint::lab
