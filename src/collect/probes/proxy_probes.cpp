#include "collect/probes/proxy_probes.h"

#include <curl/curl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "collect/probes/stats_text.h"
#include "util/clock.h"
#include "util/scoped_fd.h"
#include "util/shared_library.h"

namespace chokepoint::collect::probes {
namespace {

// Status pages are small: a few KiB for nginx, one line per proxy and server for HAProxy.
constexpr std::size_t kMaxPageBytes = 4 << 20;

// libcurl's functions http_get_small calls, opened on first use, not at exec
// (util/shared_library.h). curl_easy_setopt and curl_easy_getinfo are variadic: each value is
// passed with the type the option takes (long, a pointer), as for the functions themselves.
struct CurlApi {
  decltype(&::curl_global_init) global_init;
  decltype(&::curl_easy_init) easy_init;
  decltype(&::curl_easy_cleanup) easy_cleanup;
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  CURLcode (*easy_perform)(CURL*);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  decltype(&::curl_easy_strerror) easy_strerror;
};

// Opened, and curl_global_init called, once per process; the same error every time when it
// cannot be.
const util::Result<CurlApi>& load_curl() {
  static const util::Result<CurlApi> kApi = [] {
    util::Result<CurlApi> api = util::SharedLibrary::load<CurlApi>(
        CHOKEPOINT_LIBCURL_SONAME, "reading an HTTP status page (nginx, HAProxy, Prometheus)",
        "install libcurl4 (apt install libcurl4)", [](const util::SharedLibrary& lib, CurlApi& a) {
          return std::vector<util::Result<void>>{lib.bind(a.global_init, "curl_global_init"),
                                                 lib.bind(a.easy_init, "curl_easy_init"),
                                                 lib.bind(a.easy_cleanup, "curl_easy_cleanup"),
                                                 lib.bind(a.easy_setopt, "curl_easy_setopt"),
                                                 lib.bind(a.easy_perform, "curl_easy_perform"),
                                                 lib.bind(a.easy_getinfo, "curl_easy_getinfo"),
                                                 lib.bind(a.easy_strerror, "curl_easy_strerror")};
        });
    if (api) api->global_init(CURL_GLOBAL_DEFAULT);
    return api;
  }();
  return kApi;
}

struct CurlDeleter {
  void operator()(CURL* c) const { load_curl()->easy_cleanup(c); }
};

struct Body {
  std::string text;
  std::size_t max_bytes = 0;
  bool too_big = false;
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<Body*>(user);
  const size_t bytes = size * n;
  if (body->text.size() + bytes > body->max_bytes) {
    body->too_big = true;
    return 0;  // aborts the transfer
  }
  body->text.append(data, bytes);
  return bytes;
}

bool is_http_url(const std::string& s) {
  return s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0;
}

class NginxProbe final : public Probe {
 public:
  NginxProbe(std::string url, std::int64_t timeout_ns)
      : url_(std::move(url)), timeout_ns_(timeout_ns) {}
  model::ServiceKind kind() const override { return model::ServiceKind::kNginx; }
  std::string endpoint() const override { return url_; }
  std::string how() const override { return "libcurl: stub_status"; }
  util::Result<Reading> read() override {
    auto page = http_get_small(url_, timeout_ns_, kMaxPageBytes);
    if (!page) {
      return connect_error(model::ServiceKind::kNginx, url_, page.error().message,
                           "--nginx-status URL");
    }
    auto s = parse_nginx_status(*page);
    if (!s) return s.error();
    Reading r;
    r.counters["accepts"] = static_cast<double>(s->accepts);
    r.counters["handled"] = static_cast<double>(s->handled);
    r.counters["requests"] = static_cast<double>(s->requests);
    r.gauges["active"] = static_cast<double>(s->active);
    r.gauges["reading"] = static_cast<double>(s->reading);
    r.gauges["writing"] = static_cast<double>(s->writing);
    r.gauges["waiting"] = static_cast<double>(s->waiting);
    return r;
  }

 private:
  std::string url_;
  std::int64_t timeout_ns_;
};

// `show stat` over the stats socket: one command per connection, the reply ends at EOF.
util::Result<std::string> haproxy_socket_command(const std::string& path, const char* command,
                                                 std::int64_t timeout_ns) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return util::Error{fmt::format("the socket path {:?} is too long", path), ""};
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  util::ScopedFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return util::errno_error("socket");
  const std::int64_t deadline = util::monotonic_ns() + timeout_ns;
  auto wait_for = [&](short events) -> util::Result<void> {
    for (;;) {
      const std::int64_t left = deadline - util::monotonic_ns();
      if (left <= 0) return util::Error{"timed out", "", ETIMEDOUT};
      pollfd p{fd.get(), events, 0};
      const int n = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(1, left / 1'000'000)));
      if (n > 0) return {};
      if (n < 0 && errno != EINTR) return util::errno_error("poll");
    }
  };
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) return util::errno_error("connect");
    if (auto w = wait_for(POLLOUT); !w) return w.error();
  }
  const std::size_t len = std::strlen(command);
  std::size_t sent = 0;
  while (sent < len) {
    const ssize_t n = ::send(fd.get(), command + sent, len - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) return util::errno_error("send");
    if (auto w = wait_for(POLLOUT); !w) return w.error();
  }
  std::string out;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n == 0) break;
    if (n > 0) {
      if (out.size() + static_cast<std::size_t>(n) > kMaxPageBytes) {
        return util::Error{"the reply is larger than 4 MiB", ""};
      }
      out.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (errno != EAGAIN && errno != EINTR) return util::errno_error("recv");
    if (auto w = wait_for(POLLIN); !w) return w.error();
  }
  return out;
}

class HaproxyProbe final : public Probe {
 public:
  HaproxyProbe(std::string where, std::int64_t timeout_ns)
      : where_(std::move(where)), timeout_ns_(timeout_ns) {}
  model::ServiceKind kind() const override { return model::ServiceKind::kHaproxy; }
  std::string endpoint() const override { return where_; }
  std::string how() const override {
    return is_http_url(where_) ? "libcurl: the stats page as CSV" : "the stats socket: show stat";
  }
  util::Result<Reading> read() override {
    util::Result<std::string> csv =
        is_http_url(where_) ? http_get_small(where_ + ";csv", timeout_ns_, kMaxPageBytes)
                            : haproxy_socket_command(where_, "show stat\n", timeout_ns_);
    if (!csv) {
      return connect_error(model::ServiceKind::kHaproxy, where_, csv.error().message,
                           "--haproxy-stats SOCKET|URL");
    }
    auto rows = parse_haproxy_csv(*csv);
    if (!rows) return rows.error();
    Reading r;
    r.new_counters_were_zero = true;
    for (const auto& row : *rows) {
      if (row.is_frontend()) {
        const std::string k = "frontend:" + row.proxy + ":";
        r.gauges[k + "scur"] = static_cast<double>(row.sessions_current);
        r.gauges[k + "slim"] = static_cast<double>(row.sessions_limit);
        r.counters[k + "stot"] = static_cast<double>(row.sessions_total);
        r.counters[k + "req_tot"] = static_cast<double>(row.requests_total);
        r.counters[k + "dreq"] = static_cast<double>(row.denied_requests);
        continue;
      }
      // Backends and their servers: "backend:app:" and "server:app/web1:".
      const std::string k = row.is_backend() ? "backend:" + row.proxy + ":"
                                             : "server:" + row.proxy + "/" + row.service + ":";
      r.gauges[k + "qcur"] = static_cast<double>(row.queue_current);
      r.gauges[k + "scur"] = static_cast<double>(row.sessions_current);
      r.gauges[k + "slim"] = static_cast<double>(row.sessions_limit);
      r.gauges[k + "qtime"] = static_cast<double>(row.queue_time_ms);
      r.gauges[k + "ctime"] = static_cast<double>(row.connect_time_ms);
      r.gauges[k + "rtime"] = static_cast<double>(row.response_time_ms);
      r.counters[k + "stot"] = static_cast<double>(row.sessions_total);
      r.counters[k + "econ"] = static_cast<double>(row.errors_connect);
      r.counters[k + "eresp"] = static_cast<double>(row.errors_response);
      r.counters[k + "wretr"] = static_cast<double>(row.retries);
      r.counters[k + "hrsp_5xx"] = static_cast<double>(row.http_5xx);
      if (!row.status.empty()) r.settings[k + "status"] = row.status;
    }
    return r;
  }

 private:
  std::string where_;
  std::int64_t timeout_ns_;
};

}  // namespace

util::Result<std::string> http_get_small(const std::string& url, std::int64_t timeout_ns,
                                         std::size_t max_bytes) {
  const util::Result<CurlApi>& api = load_curl();
  if (!api) return api.error();
  const CurlApi& c = *api;
  std::unique_ptr<CURL, CurlDeleter> curl(c.easy_init());
  if (!curl) return util::Error{"libcurl could not start", ""};
  Body body;
  body.max_bytes = max_bytes;
  const long ms = static_cast<long>(std::max<std::int64_t>(1, timeout_ns / 1'000'000));
  c.easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  c.easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, ms);
  c.easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT_MS, ms);
  c.easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  c.easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  c.easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 0L);
  c.easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, on_body);
  c.easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
  const CURLcode rc = c.easy_perform(curl.get());
  if (body.too_big) {
    return util::Error{fmt::format("the page is larger than {} bytes", max_bytes), ""};
  }
  if (rc != CURLE_OK) return util::Error{c.easy_strerror(rc), ""};
  long status = 0;
  c.easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) return util::Error{fmt::format("HTTP status {}", status), ""};
  return std::move(body.text);
}

util::Result<std::unique_ptr<Probe>> make_nginx_probe(const std::string& url,
                                                      std::int64_t timeout_ns) {
  if (!is_http_url(url)) {
    return util::Error{fmt::format("--nginx-status {:?} is not an http:// URL", url),
                       "pass the stub_status location, e.g. --nginx-status "
                       "http://127.0.0.1:8080/nginx_status"};
  }
  return std::unique_ptr<Probe>(new NginxProbe(url, timeout_ns));
}

util::Result<std::unique_ptr<Probe>> make_haproxy_probe(const std::string& where,
                                                        std::int64_t timeout_ns) {
  if (!is_http_url(where) && (where.empty() || where.front() != '/')) {
    return util::Error{
        fmt::format("--haproxy-stats {:?} is neither a socket path nor a URL", where),
        "pass the stats socket (e.g. /run/haproxy/admin.sock) or the stats page "
        "(e.g. http://127.0.0.1:8404/stats)"};
  }
  return std::unique_ptr<Probe>(new HaproxyProbe(where, timeout_ns));
}

}  // namespace chokepoint::collect::probes
