#include "monitor/metrics_server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <vector>

#include "util/escape.h"
#include "util/scoped_fd.h"
#include "util/shared_library.h"

namespace chokepoint::monitor {

struct MetricsServer::Impl {
  std::function<std::string()> body;
  MHD_Daemon* daemon = nullptr;
  int fd = -1;  // the listening socket; MHD closes it when it stops
  std::uint16_t port = 0;
  std::atomic<std::uint64_t> scrapes{0};
};

namespace {

// libmicrohttpd's functions the server calls, opened when the agent first serves, not at exec:
// with gnutls and its 8 dependencies it was a sixth of every run's start-up
// (util/shared_library.h).
struct MhdApi {
  decltype(&::MHD_start_daemon) start_daemon;
  decltype(&::MHD_stop_daemon) stop_daemon;
  decltype(&::MHD_create_response_from_buffer) create_response_from_buffer;
  decltype(&::MHD_add_response_header) add_response_header;
  decltype(&::MHD_queue_response) queue_response;
  decltype(&::MHD_destroy_response) destroy_response;
};

// Opened once per process; the same error every time when it cannot be.
const util::Result<MhdApi>& load_mhd() {
  static const util::Result<MhdApi> kApi = util::SharedLibrary::load<MhdApi>(
      CHOKEPOINT_LIBMICROHTTPD_SONAME, "the agent's /metrics server",
      "install libmicrohttpd12 (apt install libmicrohttpd12)",
      [](const util::SharedLibrary& lib, MhdApi& a) {
        return std::vector<util::Result<void>>{
            lib.bind(a.start_daemon, "MHD_start_daemon"),
            lib.bind(a.stop_daemon, "MHD_stop_daemon"),
            lib.bind(a.create_response_from_buffer, "MHD_create_response_from_buffer"),
            lib.bind(a.add_response_header, "MHD_add_response_header"),
            lib.bind(a.queue_response, "MHD_queue_response"),
            lib.bind(a.destroy_response, "MHD_destroy_response")};
      });
  return kApi;
}

// The opened library; called only once a daemon runs (start() loaded it).
const MhdApi& mhd() {
  return *load_mhd();
}

MHD_Result reply(MHD_Connection* connection, unsigned status, const std::string& text,
                 const char* type) {
  MHD_Response* response = mhd().create_response_from_buffer(
      text.size(), const_cast<char*>(text.data()), MHD_RESPMEM_MUST_COPY);
  if (response == nullptr) return MHD_NO;
  mhd().add_response_header(response, "Content-Type", type);
  const MHD_Result ret = mhd().queue_response(connection, status, response);
  mhd().destroy_response(response);
  return ret;
}

MHD_Result answer(void* cls, MHD_Connection* connection, const char* url, const char* method,
                  const char* /*version*/, const char* /*upload_data*/,
                  std::size_t* /*upload_data_size*/, void** /*con_cls*/) {
  auto* impl = static_cast<MetricsServer::Impl*>(cls);
  if (std::strcmp(method, "GET") != 0 && std::strcmp(method, "HEAD") != 0) {
    return reply(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n", "text/plain");
  }
  if (std::strcmp(url, "/metrics") == 0) {
    impl->scrapes.fetch_add(1);
    return reply(connection, MHD_HTTP_OK, impl->body(), "text/plain; version=0.0.4; charset=utf-8");
  }
  if (std::strcmp(url, "/") == 0) {
    return reply(connection, MHD_HTTP_OK, "chokepoint agent: metrics at /metrics\n", "text/plain");
  }
  return reply(connection, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n", "text/plain");
}

}  // namespace

util::Result<ListenAddress> parse_listen(const std::string& text, const char* flag) {
  const std::string hint =
      fmt::format("pass {} HOST:PORT with an IPv4 address, e.g. 127.0.0.1:9464", flag);
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return util::Error{fmt::format("{} '{}' is not HOST:PORT", flag, util::terminal_text(text)),
                       hint, EINVAL};
  }
  ListenAddress a;
  a.host = text.substr(0, colon);
  in_addr addr{};
  if (inet_pton(AF_INET, a.host.c_str(), &addr) != 1) {
    return util::Error{fmt::format("{} '{}': {} is not an IPv4 address", flag,
                                   util::terminal_text(text), util::terminal_text(a.host)),
                       hint, EINVAL};
  }
  const std::string port = text.substr(colon + 1);
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return util::Error{fmt::format("{} '{}': the port is not a number from 0 to 65535", flag,
                                   util::terminal_text(text)),
                       hint, EINVAL};
  }
  a.port = static_cast<std::uint16_t>(value);
  return a;
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsServer::~MetricsServer() {
  if (impl_->daemon != nullptr) mhd().stop_daemon(impl_->daemon);
}

std::uint16_t MetricsServer::port() const {
  return impl_->port;
}

std::uint64_t MetricsServer::scrapes() const {
  return impl_->scrapes.load();
}

util::Result<std::unique_ptr<MetricsServer>> MetricsServer::start(
    const ListenAddress& address, std::function<std::string()> body) {
  const std::string where = fmt::format("{}:{}", address.host, address.port);
  if (const auto& api = load_mhd(); !api) return api.error();
  // Our own socket, so that a failure says which (EADDRINUSE, EADDRNOTAVAIL, EACCES).
  util::ScopedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return util::errno_error("socket");
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(address.port);
  inet_pton(AF_INET, address.host.c_str(), &sa.sin_addr);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    const int e = errno;
    std::string hint = "pass another --listen address";
    if (e == EADDRINUSE) {
      hint = fmt::format(
          "another program listens on {} (ss -ltnp 'sport = :{}' names it); pass "
          "--listen with another port",
          where, address.port);
    } else if (e == EADDRNOTAVAIL) {
      hint = "the address is not on this machine; pass 127.0.0.1 or one of `ip -4 addr`'s";
    } else if (e == EACCES) {
      hint = "ports below 1024 need root or CAP_NET_BIND_SERVICE; pass a port above 1024";
    }
    return util::errno_error("cannot listen on " + where, e, hint);
  }
  if (::listen(fd.get(), 64) != 0) return util::errno_error("listen on " + where);
  socklen_t len = sizeof sa;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  auto impl = std::make_unique<Impl>();
  impl->body = std::move(body);
  impl->port = ntohs(sa.sin_port);
  const int raw = fd.release();
  // epoll, not select: the agent keeps many /proc files open (the sampler re-reads them with
  // pread), so a connection's fd is often above FD_SETSIZE (1024), which select cannot watch.
  impl->daemon = mhd().start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, nullptr,
                                    nullptr, &answer, impl.get(), MHD_OPTION_LISTEN_SOCKET, raw,
                                    MHD_OPTION_CONNECTION_TIMEOUT, 10U, MHD_OPTION_CONNECTION_LIMIT,
                                    64U, MHD_OPTION_END);
  if (impl->daemon == nullptr) {
    ::close(raw);
    return util::Error{"cannot start the HTTP server on " + where,
                       "libmicrohttpd refused to start; check the address and free threads", 0};
  }
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

}  // namespace chokepoint::monitor
