#pragma once
// The two proxies' status pages: nginx's stub_status over HTTP (libcurl), and HAProxy's
// `show stat` from its stats socket or its stats page (";csv"). A proxy whose backends queue
// points the verdict at the upstream tier.

#include <memory>
#include <string>

#include "collect/probes/probe.h"

namespace chokepoint::collect::probes {

// `url` is the stub_status location, e.g. http://127.0.0.1:8080/nginx_status. Errors: not an
// http:// URL.
util::Result<std::unique_ptr<Probe>> make_nginx_probe(const std::string& url,
                                                      std::int64_t timeout_ns = 1'000'000'000);

// `where` is a stats socket path (/run/haproxy/admin.sock) or the stats page URL
// (http://127.0.0.1:8404/stats; ";csv" is appended). Errors: neither a path nor an http URL.
util::Result<std::unique_ptr<Probe>> make_haproxy_probe(const std::string& where,
                                                        std::int64_t timeout_ns = 1'000'000'000);

// GET of a small status page with libcurl: at most max_bytes, within timeout_ns, HTTP 200 only.
util::Result<std::string> http_get_small(const std::string& url, std::int64_t timeout_ns,
                                         std::size_t max_bytes);

}  // namespace chokepoint::collect::probes
