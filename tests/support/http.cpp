#include "support/http.h"

namespace chokepoint::test_support {

util::Result<HttpResponse> http_get(std::uint16_t port, const std::string& path,
                                    std::chrono::milliseconds timeout) {
  lab::HttpClient client("127.0.0.1", port);
  return client.get(path, timeout.count(), /*keep_alive=*/false);
}

util::Result<std::vector<HttpResponse>> http_get_keepalive(std::uint16_t port,
                                                           const std::string& path, int count,
                                                           std::chrono::milliseconds timeout) {
  lab::HttpClient client("127.0.0.1", port);
  std::vector<HttpResponse> responses;
  for (int i = 0; i < count; ++i) {
    auto sent = client.send_get(path, timeout.count());
    if (!sent) return sent.error();
    auto r = client.read_response(timeout.count());
    if (!r) return r.error();
    responses.push_back(std::move(*r));
  }
  return responses;
}

}  // namespace chokepoint::test_support
