#include "lab/connections.h"

#include <string>

#include "lab/http_client.h"

namespace chokepoint::lab {
namespace {

class ConnLeakHandler : public Handler {
 public:
  explicit ConnLeakHandler(const Options& o) : close_on_eof_(o.close_on_eof) {}
  Response handle(std::string_view) override { return {200, std::string(kOkBody)}; }
  bool keeps_closed_connections() const override { return !close_on_eof_; }

 private:
  bool close_on_eof_;
};

// One upstream call per request: on a fresh connection closed by us right after the answer (the
// active close, so TIME_WAIT stays on our side), or on this thread's kept-alive one.
__attribute__((noinline)) util::Result<HttpResponse> lab_call_upstream_once(const std::string& host,
                                                                            std::uint16_t port,
                                                                            bool keep_alive,
                                                                            std::int64_t timeout_ms,
                                                                            std::string_view key) {
  const std::string target = "/?k=" + std::string(key);
  if (keep_alive) {
    thread_local std::unique_ptr<HttpClient> client;
    if (!client) client = std::make_unique<HttpClient>(host, port);
    return client->get(target, timeout_ms);
  }
  HttpClient client(host, port);
  auto r = client.get(target, timeout_ms);
  client.close();
  return r;
}

class ConnStormHandler : public Handler {
 public:
  explicit ConnStormHandler(const Options& o)
      : host_(o.upstream_host),
        port_(o.upstream_port),
        keep_alive_(o.keep_alive),
        timeout_ms_(o.upstream_timeout_ms) {}

  Response handle(std::string_view query) override {
    auto r = lab_call_upstream_once(host_, port_, keep_alive_, timeout_ms_, query);
    if (!r) return {502, "upstream call failed: " + r.error().message + "\n"};
    if (r->status != 200) return {502, "upstream answered " + std::to_string(r->status) + "\n"};
    return {200, std::string(keep_alive_ ? "conn-storm keep-alive\n" : "conn-storm new\n")};
  }
  bool blocking() const override { return true; }

 private:
  std::string host_;
  std::uint16_t port_;
  bool keep_alive_;
  std::int64_t timeout_ms_;
};

}  // namespace

std::unique_ptr<Handler> make_connection_handler(const Options& o) {
  if (o.scenario == Scenario::kConnStorm) return std::make_unique<ConnStormHandler>(o);
  return std::make_unique<ConnLeakHandler>(o);
}

}  // namespace chokepoint::lab
