#pragma once
// Blocking HTTP/1.1 helpers for tests: one GET on a fresh connection, or N GETs on one kept-alive
// connection. Loopback only; every call is bounded by its timeout. Thread-safe (no shared state).

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "lab/http_client.h"
#include "util/result.h"

namespace chokepoint::test_support {

using lab::HttpResponse;

// GET http://127.0.0.1:PORT{path} on a new connection (closed afterwards).
util::Result<HttpResponse> http_get(std::uint16_t port, const std::string& path,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(5));

// `count` GETs of `path` one after another on a single kept-alive connection. Fails on the first
// request that fails.
util::Result<std::vector<HttpResponse>> http_get_keepalive(
    std::uint16_t port, const std::string& path, int count,
    std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace chokepoint::test_support
