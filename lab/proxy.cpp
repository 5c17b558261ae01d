#include "lab/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "lab/http.h"
#include "lab/worker_pool.h"
#include "util/clock.h"
#include "util/scoped_fd.h"

namespace chokepoint::lab {
namespace {

// epoll tags: the listening socket, the stop eventfd, upstream slots (kUpstreamTag | index) and
// clients (their id, counted from kFirstClientId).
constexpr std::uint64_t kListenTag = 1;
constexpr std::uint64_t kStopTag = 2;
constexpr std::uint64_t kUpstreamTag = std::uint64_t{1} << 62;
constexpr std::uint64_t kFirstClientId = 16;
// A client that sends more than this without waiting for answers is dropped.
constexpr std::size_t kMaxClientIn = kMaxHeadBytes + kMaxBodyBytes + std::size_t{64} * 1024;
// An upstream answer larger than this is refused (502): the lab's upstream sends a line.
constexpr std::size_t kMaxUpstreamBody = std::size_t{1} << 20;
// Entries of the --cache on table before it is cleared (random keys cannot grow it forever).
constexpr std::size_t kMaxCacheEntries = 100'000;

struct Client {
  util::ScopedFd fd;
  std::string in;
  std::string out;
  bool waiting = false;  // a request is with the upstream (or queued for a connection)
  bool waiting_keep_alive = true;
  std::string key;       // the waiting request's query string
  bool closing = false;  // close once `out` is flushed
  bool broken = false;   // close now
};

// One pooled upstream connection. Busy while `client` is set.
struct Upstream {
  util::ScopedFd fd;
  bool connecting = false;
  std::string out;  // request bytes not yet written
  std::string in;
  std::uint64_t client = 0;
  std::string key;
  std::int64_t deadline_ns = 0;
};

// Sends `out` on the non-blocking fd until it is all sent (erased from `out`) or the socket is
// full. Returns false when the send failed (the peer is gone).
bool send_until_eagain(int fd, std::string& out) {
  while (!out.empty()) {
    const ssize_t n = send(fd, out.data(), out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      out.erase(0, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
  return true;
}

// Edge-triggered: reads fd until EAGAIN, appending to `in`. Returns true when the peer closed
// or the read failed.
bool read_until_eagain(int fd, std::string& in) {
  char buf[16384];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      in.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
  }
}

class ProxyServer : public Server {
 public:
  ProxyServer(const Options& o, util::ScopedFd listen_fd)
      : options_(o),
        listen_(std::move(listen_fd)),
        stop_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
        ep_(epoll_create1(EPOLL_CLOEXEC)),
        port_(bound_port(listen_.get())),
        upstreams_(static_cast<std::size_t>(o.upstream_pool)) {
    upstream_addr_.sin_family = AF_INET;
    upstream_addr_.sin_port = htons(o.upstream_port);
    inet_pton(AF_INET, o.upstream_host.c_str(), &upstream_addr_.sin_addr);
    add(listen_.get(), EPOLLIN, kListenTag);
    add(stop_.get(), EPOLLIN, kStopTag);
  }
  ~ProxyServer() override { stop(); }

  util::Result<void> start() {
    if (!stop_.valid() || !ep_.valid()) return util::errno_error("proxy: eventfd/epoll_create1");
    thread_ = std::thread([this] { run(); });
    return {};
  }

  std::uint16_t port() const override { return port_; }
  int workers() const override { return 1; }
  void stop() override {
    if (!thread_.joinable()) return;
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t w = write(stop_.get(), &one, sizeof(one));
    thread_.join();
  }

 private:
  void add(int fd, std::uint32_t events, std::uint64_t tag) {
    epoll_add(ep_.get(), fd, events, tag);
  }

  void run() {
    set_thread_name("lab-proxy");
    epoll_event events[256];
    for (;;) {
      const int n = epoll_wait(ep_.get(), events, 256, timeout_ms());
      if (n < 0 && errno != EINTR) break;
      for (int i = 0; i < n; ++i) {
        const std::uint64_t tag = events[i].data.u64;
        if (tag == kStopTag) {
          clients_.clear();  // closes every socket
          upstreams_.clear();
          return;
        }
        if (tag == kListenTag) {
          accept_ready();
        } else if (tag & kUpstreamTag) {
          upstream_ready(static_cast<std::size_t>(tag & ~kUpstreamTag), events[i].events);
        } else if (auto it = clients_.find(tag); it != clients_.end()) {
          client_ready(tag, *it->second);
        }
      }
      expire_upstreams();
      serve_completed();
    }
  }

  // Until the earliest deadline of a busy upstream connection; -1 when none is busy.
  int timeout_ms() const {
    std::int64_t first = -1;
    for (const Upstream& u : upstreams_) {
      if (u.client != 0 && (first < 0 || u.deadline_ns < first)) first = u.deadline_ns;
    }
    if (first < 0) return -1;
    const std::int64_t left = first - util::monotonic_ns();
    return left <= 0 ? 0 : static_cast<int>((left + util::kNsPerMs - 1) / util::kNsPerMs);
  }

  void accept_ready() {
    for (int i = 0; i < 64; ++i) {
      const int fd = accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or out of descriptors: retried at the next readiness
      set_nodelay(fd);
      auto c = std::make_unique<Client>();
      c->fd.reset(fd);
      const std::uint64_t id = next_client_++;
      add(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, id);
      clients_.emplace(id, std::move(c));
    }
  }

  // ---- clients ---------------------------------------------------------------------------------
  void client_ready(std::uint64_t id, Client& c) {
    // A read error and an orderly close are treated alike: answer what is buffered, then close.
    const bool peer_closed = read_until_eagain(c.fd.get(), c.in);
    if (c.in.size() > kMaxClientIn) c.broken = true;
    // A client that closed its side gets the answers to what it already sent, then is closed.
    if (peer_closed) c.closing = true;
    serve_client(id, c);
  }

  // Answers the requests buffered from c, one at a time, then flushes; closes c when done.
  void serve_client(std::uint64_t id, Client& c) {
    while (!c.broken && !c.waiting && !c.in.empty()) {
      Request req;
      const ParseResult pr = parse_request(c.in, req);
      if (pr.status == ParseStatus::kIncomplete) break;
      if (pr.status != ParseStatus::kComplete) {
        const int status = http_status_for(pr.status);
        answer(c, status, std::string(reason_phrase(status)) + "\n", false);
        c.in.clear();
        break;
      }
      const bool keep_alive = req.keep_alive;
      std::string key(req.query);
      int status = 0;
      std::string body;
      if (req.method != "GET") {
        status = 405;
        body = "only GET is served\n";
      } else if (req.path == "/health") {
        status = 200;
        body = "ok\n";
      } else if (req.path != "/") {
        status = 404;
        body = "not found\n";
      }
      c.in.erase(0, pr.consumed);
      if (status != 0) {
        answer(c, status, body, keep_alive);
        continue;
      }
      if (options_.cache == CacheMode::kOn) {
        if (auto hit = cache_.find(key); hit != cache_.end()) {
          answer(c, 200, hit->second, keep_alive);
          continue;
        }
      }
      c.waiting = true;
      c.waiting_keep_alive = keep_alive;
      c.key = std::move(key);
      dispatch(id);
    }
    flush(c);
    if (c.broken || (c.closing && !c.waiting && c.out.empty())) clients_.erase(id);
  }

  void answer(Client& c, int status, const std::string& body, bool keep_alive) {
    append_response_head(c.out, status, body.size(), keep_alive);
    c.out.append(body);
    if (!keep_alive) {
      c.closing = true;
      c.in.clear();
    }
  }

  void flush(Client& c) {
    if (!send_until_eagain(c.fd.get(), c.out)) c.broken = true;  // else EPOLLOUT resumes
  }

  // The upstream's answer (or the proxy's error) for client id's waiting request.
  void complete(std::uint64_t id, int status, const std::string& body) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;  // the client went away meanwhile
    Client& c = *it->second;
    c.waiting = false;
    answer(c, status, body, c.waiting_keep_alive);
    // Served after the current event: complete() may run inside serve_client() of this client.
    to_serve_.push_back(id);
  }

  void serve_completed() {
    while (!to_serve_.empty()) {
      std::vector<std::uint64_t> ids;
      ids.swap(to_serve_);
      for (std::uint64_t id : ids) {
        if (auto it = clients_.find(id); it != clients_.end()) serve_client(id, *it->second);
      }
    }
  }

  // ---- the upstream pool -----------------------------------------------------------------------
  // Sends client id's request on an idle pooled connection, or queues it for the next free one.
  void dispatch(std::uint64_t id) {
    for (std::size_t i = 0; i < upstreams_.size(); ++i) {
      if (upstreams_[i].client == 0) {
        send_upstream(i, id);
        return;
      }
    }
    queue_.push_back(id);
  }

  void send_upstream(std::size_t index, std::uint64_t id) {
    Upstream& u = upstreams_[index];
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    u.client = id;
    u.key = it->second->key;
    u.deadline_ns = util::monotonic_ns() + options_.upstream_timeout_ms * util::kNsPerMs;
    u.in.clear();
    u.out = "GET /" + (u.key.empty() ? std::string() : "?" + u.key) +
            " HTTP/1.1\r\nHost: " + options_.upstream_host + "\r\n\r\n";
    if (!u.fd.valid()) {
      util::ScopedFd fd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!fd.valid()) {
        fail_upstream(index, 502, "proxy: socket failed\n");
        return;
      }
      set_nodelay(fd.get());
      const int rc = connect(fd.get(), reinterpret_cast<const sockaddr*>(&upstream_addr_),
                             sizeof(upstream_addr_));
      if (rc != 0 && errno != EINPROGRESS) {
        fail_upstream(index, 502, "proxy: cannot connect to the upstream\n");
        return;
      }
      u.connecting = rc != 0;
      u.fd = std::move(fd);
      add(u.fd.get(), EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, kUpstreamTag | index);
    }
    if (!u.connecting) write_upstream(index);
  }

  void write_upstream(std::size_t index) {
    if (!send_until_eagain(upstreams_[index].fd.get(), upstreams_[index].out)) {
      fail_upstream(index, 502, "proxy: the upstream connection failed\n");
    }
  }

  void upstream_ready(std::size_t index, std::uint32_t events) {
    if (index >= upstreams_.size()) return;
    Upstream& u = upstreams_[index];
    if (!u.fd.valid()) return;
    if (u.connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(u.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        fail_upstream(index, 502, "proxy: cannot connect to the upstream\n");
        return;
      }
      u.connecting = false;
    }
    if (u.connecting) return;
    write_upstream(index);
    if (!u.fd.valid()) return;
    const bool closed = read_until_eagain(u.fd.get(), u.in);
    if (u.client == 0) {
      // An idle kept-alive connection the upstream closed (or that sent stray bytes): reopen it
      // at its next use.
      if (closed || !u.in.empty()) reset_upstream(index);
      return;
    }
    ResponseHead head;
    switch (parse_response_head(u.in, head)) {
      case ResponseParseStatus::kBad:
      case ResponseParseStatus::kNoLength:
        fail_upstream(index, 502, "proxy: the upstream sent a malformed response\n");
        return;
      case ResponseParseStatus::kIncomplete:
        if (closed) fail_upstream(index, 502, "proxy: the upstream closed the connection\n");
        return;
      case ResponseParseStatus::kComplete:
        break;
    }
    if (head.content_length > kMaxUpstreamBody) {
      fail_upstream(index, 502, "proxy: the upstream's answer is too large\n");
      return;
    }
    if (u.in.size() < head.head_bytes + head.content_length) {
      if (closed) fail_upstream(index, 502, "proxy: the upstream closed the connection\n");
      return;
    }
    std::string body = u.in.substr(head.head_bytes, head.content_length);
    const std::uint64_t id = u.client;
    if (options_.cache == CacheMode::kOn && head.status == 200) {
      if (cache_.size() >= kMaxCacheEntries) cache_.clear();
      cache_.emplace(u.key, body);
    }
    u.client = 0;
    u.in.clear();
    if (closed || !head.keep_alive) reset_upstream(index);
    complete(id, head.status, body);
    next_in_queue(index);
  }

  // Closes a pooled connection; the next request on this slot opens a new one.
  void reset_upstream(std::size_t index) {
    Upstream& u = upstreams_[index];
    u.fd.reset();  // close(2) removes it from the epoll set
    u.connecting = false;
    u.in.clear();
    u.out.clear();
  }

  // The busy slot's request failed: answer its client with `status`, reset, serve the queue.
  void fail_upstream(std::size_t index, int status, const std::string& body) {
    const std::uint64_t id = upstreams_[index].client;
    upstreams_[index].client = 0;
    reset_upstream(index);
    if (id != 0) complete(id, status, body);
    next_in_queue(index);
  }

  void next_in_queue(std::size_t index) {
    while (!queue_.empty() && upstreams_[index].client == 0) {
      const std::uint64_t id = queue_.front();
      queue_.pop_front();
      if (clients_.count(id)) send_upstream(index, id);
    }
  }

  void expire_upstreams() {
    const std::int64_t now = util::monotonic_ns();
    for (std::size_t i = 0; i < upstreams_.size(); ++i) {
      if (upstreams_[i].client != 0 && upstreams_[i].deadline_ns <= now) {
        fail_upstream(i, 504, "proxy: the upstream timed out\n");
      }
    }
  }

  const Options& options_;
  util::ScopedFd listen_;
  util::ScopedFd stop_;
  util::ScopedFd ep_;
  std::uint16_t port_;
  sockaddr_in upstream_addr_{};
  std::thread thread_;
  // Owned by the loop thread from start() until stop() joins it.
  std::vector<Upstream> upstreams_;
  std::deque<std::uint64_t> queue_;  // clients waiting for a free upstream connection, FIFO
  std::unordered_map<std::uint64_t, std::unique_ptr<Client>> clients_;
  std::vector<std::uint64_t> to_serve_;  // clients whose answer came: flush, read on
  std::uint64_t next_client_ = kFirstClientId;
  std::unordered_map<std::string, std::string> cache_;  // --cache on: query key -> body
};

}  // namespace

util::Result<std::unique_ptr<Server>> start_proxy(const Options& options) {
  auto listen_fd = listen_socket(options);
  if (!listen_fd) return listen_fd.error();
  auto server = std::make_unique<ProxyServer>(options, std::move(*listen_fd));
  auto started = server->start();
  if (!started) return started.error();
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace chokepoint::lab
