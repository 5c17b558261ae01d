#include "lab/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <queue>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include "lab/http.h"
#include "lab/worker_pool.h"
#include "util/clock.h"
#include "util/scoped_fd.h"

namespace chokepoint::lab {

util::Result<util::ScopedFd> listen_socket(const Options& o) {
  util::ScopedFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return util::errno_error("socket");
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(o.port);
  inet_pton(AF_INET, o.bind_address.c_str(), &addr.sin_addr);
  std::string where = o.bind_address + ":" + std::to_string(o.port);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    return util::errno_error("cannot listen on " + where, err,
                             err == EADDRINUSE ? "the port is in use; pick another --port, or "
                                                 "--port 0 for a free one"
                                               : "check --bind (an address of this host)");
  }
  // listen(2): the kernel silently caps the backlog at net.core.somaxconn.
  if (listen(fd.get(), o.backlog) != 0) return util::errno_error("listen on " + where);
  return fd;
}

std::uint16_t bound_port(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void epoll_add(int ep, int fd, std::uint32_t events, std::uint64_t tag) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = tag;
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

namespace {

// Read buffer cap per connection: beyond this we stop reading until requests are answered.
constexpr std::size_t kMaxBufferedIn = kMaxHeadBytes + kMaxBodyBytes + std::size_t{64} * 1024;
// Unsent response bytes beyond which a connection stops parsing new requests.
constexpr std::size_t kMaxBufferedOut = 4 << 20;

enum class Route { kWork, kHealth, kNotFound, kBadMethod };

Route route(const Request& req) {
  if (req.method != "GET") return Route::kBadMethod;
  if (req.path == "/") return Route::kWork;
  if (req.path == "/health") return Route::kHealth;
  return Route::kNotFound;
}

Response simple_response(Route r) {
  Response resp;
  switch (r) {
    case Route::kHealth:
      resp.body = kOkBody;
      break;
    case Route::kNotFound:
      resp.status = 404;
      resp.body = "not found\n";
      break;
    default:
      resp.status = 405;
      resp.body = "only GET is served\n";
      break;
  }
  return resp;
}

Response parse_error_response(ParseStatus st) {
  Response resp;
  resp.status = http_status_for(st);
  resp.body = std::string(reason_phrase(resp.status)) + "\n";
  return resp;
}

// Accepts connections until stop_fd becomes readable, sleeping accept_delay_ms between
// accept() calls (the backlog scenario's slow acceptor). The sleep is a poll on stop_fd, so
// shutdown does not wait for it.
void accept_loop(int listen_fd, int stop_fd, std::int64_t accept_delay_ms,
                 const std::function<void(int)>& on_conn) {
  set_thread_name("lab-acceptor");
  for (;;) {
    pollfd fds[2] = {{listen_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents) return;
    if (!(fds[0].revents & POLLIN)) continue;
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      // EMFILE and friends: back off instead of spinning on a full queue.
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
        pollfd s{stop_fd, POLLIN, 0};
        poll(&s, 1, 10);
      }
      continue;
    }
    on_conn(fd);
    if (accept_delay_ms > 0) {
      pollfd s{stop_fd, POLLIN, 0};
      if (poll(&s, 1, static_cast<int>(accept_delay_ms)) > 0) return;
    }
  }
}

// ===============================================================================================
// threads model
class ThreadsServer : public Server {
 public:
  ThreadsServer(const Options& o, Handler& h, util::ScopedFd listen_fd, int pool_threads)
      : options_(o),
        handler_(h),
        listen_(std::move(listen_fd)),
        stop_fd_(eventfd(0, EFD_CLOEXEC)),
        pool_(pool_threads, "lab-worker"),
        port_(bound_port(listen_.get())) {
    acceptor_ = std::thread([this] {
      accept_loop(listen_.get(), stop_fd_.get(), options_.accept_delay_ms,
                  [this](int fd) { start_connection(fd); });
    });
  }
  ~ThreadsServer() override { stop(); }

  std::uint16_t port() const override { return port_; }
  int workers() const override { return pool_.size(); }

  void stop() override {
    {
      std::lock_guard<std::mutex> lock(conns_mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    conns_cv_.notify_all();  // wakes connection threads sleeping in wait_delay()
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t w = write(stop_fd_.get(), &one, sizeof(one));
    if (acceptor_.joinable()) acceptor_.join();
    std::unique_lock<std::mutex> lock(conns_mu_);
    // Wake every connection thread blocked in recv or send (shutdown(2) makes them return).
    for (auto& [id, fd] : conns_) shutdown(fd, SHUT_RDWR);
    conns_cv_.wait(lock, [this] { return conns_.empty(); });
    lock.unlock();
    pool_.stop();
  }

 private:
  void start_connection(int fd) {
    std::lock_guard<std::mutex> lock(conns_mu_);
    std::uint64_t id = ++next_id_;
    conns_[id] = fd;
    // Detached: the thread deregisters itself; stop() waits for the registry to empty.
    try {
      std::thread([this, id, fd] { serve(id, fd); }).detach();
    } catch (const std::system_error&) {
      // Out of threads (RLIMIT_NPROC, memory): refuse this connection, keep serving the others.
      conns_.erase(id);
      close(fd);
    }
  }

  bool send_all(int fd, std::string& head, const std::string* shared) {
    iovec iov[2];
    std::size_t head_off = 0, body_off = 0;
    std::size_t body_size = shared ? shared->size() : 0;
    while (head_off < head.size() || body_off < body_size) {
      int n = 0;
      if (head_off < head.size()) iov[n++] = {head.data() + head_off, head.size() - head_off};
      if (body_off < body_size) {
        iov[n++] = {const_cast<char*>(shared->data()) + body_off, body_size - body_off};
      }
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<std::size_t>(n);
      ssize_t sent = sendmsg(fd, &msg, MSG_NOSIGNAL);
      if (sent < 0 && errno == EINTR) continue;
      if (sent <= 0) return false;
      auto s = static_cast<std::size_t>(sent);
      std::size_t from_head = std::min(s, head.size() - head_off);
      head_off += from_head;
      body_off += s - from_head;
    }
    head.clear();
    return true;
  }

  Response run_work(std::string_view query) {
    std::promise<Response> promise;
    std::future<Response> result = promise.get_future();
    pool_.submit([&] { promise.set_value(handler_.handle(query)); });
    return result.get();
  }

  // Sleeps for a delayed answer (upstream role) unless the server stops first.
  void wait_delay(std::int64_t delay_ns) {
    std::unique_lock<std::mutex> lock(conns_mu_);
    conns_cv_.wait_for(lock, std::chrono::nanoseconds(delay_ns), [this] { return stopped_; });
  }

  void serve(std::uint64_t id, int fd) {
    set_thread_name("lab-conn");
    set_nodelay(fd);
    std::string in;
    std::string out;
    char buf[16384];
    bool open = true;
    bool peer_closed = false;
    while (open) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n < 0 && errno == EINTR) continue;
      peer_closed = n == 0;
      if (n <= 0) break;
      in.append(buf, static_cast<std::size_t>(n));
      std::size_t off = 0;
      while (open) {
        Request req;
        ParseResult pr = parse_request(std::string_view(in).substr(off), req);
        if (pr.status == ParseStatus::kIncomplete) break;
        Response resp;
        bool keep_alive = false;
        if (pr.status != ParseStatus::kComplete) {
          resp = parse_error_response(pr.status);
        } else {
          off += pr.consumed;
          keep_alive = req.keep_alive;
          Route r = route(req);
          resp = r == Route::kWork ? run_work(req.query) : simple_response(r);
        }
        if (resp.delay_ns > 0) wait_delay(resp.delay_ns);
        append_response_head(out, resp.status, resp.body_size(), keep_alive);
        if (resp.shared_body) {
          if (!send_all(fd, out, resp.shared_body)) open = false;
        } else {
          out.append(resp.body);
        }
        if (!keep_alive) open = false;
      }
      in.erase(0, off);
      if (!out.empty() && !send_all(fd, out, nullptr)) break;
    }
    std::lock_guard<std::mutex> lock(conns_mu_);
    if (peer_closed && handler_.keeps_closed_connections()) {
      leaked_.emplace_back(fd);  // conn-leak: CLOSE_WAIT until the server stops
    } else {
      close(fd);
    }
    conns_.erase(id);
    conns_cv_.notify_all();
  }

  const Options& options_;
  Handler& handler_;
  util::ScopedFd listen_;
  util::ScopedFd stop_fd_;
  WorkerPool pool_;
  std::uint16_t port_;
  std::thread acceptor_;
  std::mutex conns_mu_;
  std::condition_variable conns_cv_;
  std::unordered_map<std::uint64_t, int> conns_;  // guarded by conns_mu_: id -> socket
  std::vector<util::ScopedFd> leaked_;            // guarded by conns_mu_: conn-leak's sockets
  std::uint64_t next_id_ = 0;                     // guarded by conns_mu_
  bool stopped_ = false;                          // guarded by conns_mu_
};

// ===============================================================================================
// epoll model

struct OutSegment {
  std::string owned;
  const std::string* shared = nullptr;
  std::size_t off = 0;
  std::size_t size() const { return shared ? shared->size() : owned.size(); }
  const char* data() const { return shared ? shared->data() : owned.data(); }
};

struct Conn {
  std::uint64_t id = 0;
  util::ScopedFd fd;
  std::string in;
  std::size_t in_off = 0;
  std::deque<OutSegment> out;
  std::size_t out_bytes = 0;
  bool pending = false;            // a request is with the pool or a timer; parse nothing else
  bool pending_keep_alive = true;  // that request's keep-alive
  Response delayed;                // the answer waiting for its timer
  bool closing = false;            // close once the output is flushed
  bool peer_closed = false;        // read returned 0: answer what is buffered, then close
  bool broken = false;             // read or write failed: close now
  bool read_full = false;          // stopped reading at kMaxBufferedIn
};

struct Completion {
  std::uint64_t conn_id;
  Response response;
};

struct Timer {
  std::int64_t deadline_ns;
  std::uint64_t conn_id;
  bool operator>(const Timer& o) const { return deadline_ns > o.deadline_ns; }
};

constexpr std::uint64_t kListenId = 1;
constexpr std::uint64_t kWakeId = 2;
constexpr std::uint64_t kStopId = 3;
constexpr std::uint64_t kFirstConnId = 16;

class EventLoop;

// The loops of one server and the round-robin cursor that spreads new connections over them.
struct LoopGroup {
  std::vector<std::unique_ptr<EventLoop>> loops;
  std::atomic<std::size_t> next{0};
};

class EventLoop {
 public:
  EventLoop(int index, LoopGroup& group, Handler& handler, WorkerPool* pool, int listen_fd,
            int stop_fd)
      : index_(index),
        group_(group),
        handler_(handler),
        pool_(pool),
        ep_(epoll_create1(EPOLL_CLOEXEC)),
        wake_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    add(wake_.get(), EPOLLIN, kWakeId);
    add(stop_fd, EPOLLIN, kStopId);
    // EPOLLEXCLUSIVE: one loop wakes per new connection instead of all of them (epoll_ctl(2)).
    if (listen_fd >= 0) add(listen_fd, EPOLLIN | EPOLLEXCLUSIVE, kListenId);
    listen_fd_ = listen_fd;
  }

  void start() {
    thread_ = std::thread([this] { run(); });
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

  // Thread-safe: hand a result or a new connection to this loop and wake it.
  void post_completion(Completion c) {
    {
      std::lock_guard<std::mutex> lock(inbox_mu_);
      completions_.push_back(std::move(c));
    }
    wake();
  }
  void post_connection(int fd) {
    {
      std::lock_guard<std::mutex> lock(inbox_mu_);
      new_fds_.push_back(fd);
    }
    wake();
  }

 private:
  void add(int fd, std::uint32_t events, std::uint64_t id) { epoll_add(ep_.get(), fd, events, id); }
  void wake() {
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t w = write(wake_.get(), &one, sizeof(one));
  }

  void run() {
    set_thread_name("lab-loop-" + std::to_string(index_));
    epoll_event events[256];
    for (;;) {
      int timeout_ms = -1;
      if (!timers_.empty()) {
        std::int64_t left = timers_.top().deadline_ns - util::monotonic_ns();
        timeout_ms = left <= 0 ? 0 : static_cast<int>((left + util::kNsPerMs - 1) / util::kNsPerMs);
      }
      int n = epoll_wait(ep_.get(), events, 256, timeout_ms);
      if (n < 0 && errno != EINTR) break;
      for (int i = 0; i < n; ++i) {
        std::uint64_t id = events[i].data.u64;
        if (id == kStopId) {
          conns_.clear();  // closes every socket
          return;
        }
        if (id == kListenId) {
          accept_ready();
        } else if (id == kWakeId) {
          drain_inbox();
        } else {
          auto it = conns_.find(id);
          if (it != conns_.end()) service(*it->second);
        }
      }
      fire_timers();
    }
  }

  // Whichever loop wakes accepts, but connections go round-robin to every loop: otherwise the
  // first loop to wake takes a whole burst (wrk connects all at once) and the others sit idle.
  void accept_ready() {
    for (int i = 0; i < 64; ++i) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0 && (errno == EMFILE || errno == ENFILE) && spare_fd_.valid()) {
        // Out of descriptors: the listening socket stays readable (level-triggered), so the
        // loop would spin. Free the spare, accept and drop the connection, take the spare back.
        spare_fd_.reset();
        int dropped = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (dropped >= 0) close(dropped);
        spare_fd_.reset(open("/dev/null", O_RDONLY | O_CLOEXEC));
        continue;
      }
      if (fd < 0) return;  // EAGAIN: another loop took it, or the queue is empty
      EventLoop& target = *group_.loops[group_.next.fetch_add(1) % group_.loops.size()];
      if (&target == this) {
        add_connection(fd);
      } else {
        target.post_connection(fd);
      }
    }
  }

  void add_connection(int fd) {
    set_nodelay(fd);
    auto conn = std::make_unique<Conn>();
    conn->id = next_id_++;
    conn->fd.reset(fd);
    conn->in.reserve(4096);
    add(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, conn->id);
    conns_.emplace(conn->id, std::move(conn));
  }

  void drain_inbox() {
    std::uint64_t value;
    [[maybe_unused]] ssize_t r = read(wake_.get(), &value, sizeof(value));
    std::vector<Completion> done;
    std::vector<int> fds;
    {
      std::lock_guard<std::mutex> lock(inbox_mu_);
      done.swap(completions_);
      fds.swap(new_fds_);
    }
    for (int fd : fds) {
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
      add_connection(fd);
    }
    for (Completion& c : done) {
      auto it = conns_.find(c.conn_id);
      if (it == conns_.end()) continue;  // the client went away meanwhile
      finish_pending(*it->second, c.response);
    }
  }

  void fire_timers() {
    std::int64_t now = util::monotonic_ns();
    while (!timers_.empty() && timers_.top().deadline_ns <= now) {
      Timer t = timers_.top();
      timers_.pop();
      auto it = conns_.find(t.conn_id);
      if (it == conns_.end()) continue;
      Conn& c = *it->second;
      Response r = std::move(c.delayed);
      r.delay_ns = 0;
      finish_pending(c, r);
    }
  }

  void finish_pending(Conn& c, const Response& r) {
    c.pending = false;
    append_response(c, r, c.pending_keep_alive);
    service(c);
  }

  void append_response(Conn& c, const Response& r, bool keep_alive) {
    if (c.out.empty() || c.out.back().shared) c.out.emplace_back();
    std::string& tail = c.out.back().owned;
    std::size_t before = tail.size();
    append_response_head(tail, r.status, r.body_size(), keep_alive);
    if (r.shared_body) {
      c.out_bytes += tail.size() - before;
      OutSegment seg;
      seg.shared = r.shared_body;
      c.out.push_back(std::move(seg));
      c.out_bytes += r.shared_body->size();
    } else {
      tail.append(r.body);
      c.out_bytes += tail.size() - before;
    }
    if (!keep_alive) c.closing = true;
  }

  void read_available(Conn& c) {
    c.read_full = false;
    for (;;) {
      std::size_t buffered = c.in.size() - c.in_off;
      if (buffered >= kMaxBufferedIn) {
        c.read_full = true;
        return;
      }
      std::size_t old = c.in.size();
      std::size_t want = std::max<std::size_t>(16384, c.in.capacity() - old);
      c.in.resize(old + want);
      ssize_t n = recv(c.fd.get(), c.in.data() + old, want, 0);
      c.in.resize(old + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
      if (n > 0) continue;
      if (n == 0) {
        c.peer_closed = true;
      } else if (errno == EINTR) {
        continue;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        c.broken = true;
      }
      return;
    }
  }

  void process_requests(Conn& c) {
    while (!c.pending && !c.closing && c.out_bytes < kMaxBufferedOut) {
      Request req;
      ParseResult pr = parse_request(std::string_view(c.in).substr(c.in_off), req);
      if (pr.status == ParseStatus::kIncomplete) break;
      if (pr.status != ParseStatus::kComplete) {
        append_response(c, parse_error_response(pr.status), false);
        break;
      }
      c.in_off += pr.consumed;
      Route r = route(req);
      if (r != Route::kWork) {
        append_response(c, simple_response(r), req.keep_alive);
        continue;
      }
      if (pool_ != nullptr) {
        c.pending = true;
        c.pending_keep_alive = req.keep_alive;
        pool_->submit([this, id = c.id, query = std::string(req.query)] {
          post_completion(Completion{id, handler_.handle(query)});
        });
        break;
      }
      Response resp = handler_.handle(req.query);
      if (resp.delay_ns > 0) {
        c.pending = true;
        c.pending_keep_alive = req.keep_alive;
        timers_.push(Timer{util::monotonic_ns() + resp.delay_ns, c.id});
        c.delayed = std::move(resp);
        break;
      }
      append_response(c, resp, req.keep_alive);
    }
    // Compact the input buffer once everything parsed is gone, or when the dead prefix is large.
    if (c.in_off == c.in.size()) {
      c.in.clear();
      c.in_off = 0;
    } else if (c.in_off > 65536) {
      c.in.erase(0, c.in_off);
      c.in_off = 0;
    }
  }

  // Writes as much queued output as the socket takes. False when the connection is broken.
  bool flush(Conn& c) {
    while (c.out_bytes > 0) {
      iovec iov[64];
      int n = 0;
      for (auto it = c.out.begin(); it != c.out.end() && n < 64; ++it) {
        if (it->size() > it->off) {
          iov[n++] = {const_cast<char*>(it->data()) + it->off, it->size() - it->off};
        }
      }
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<std::size_t>(n);
      ssize_t sent = sendmsg(c.fd.get(), &msg, MSG_NOSIGNAL);
      if (sent < 0) {
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK;  // EPOLLOUT (edge) will call us again
      }
      auto s = static_cast<std::size_t>(sent);
      c.out_bytes -= s;
      while (!c.out.empty()) {
        OutSegment& front = c.out.front();
        std::size_t left = front.size() - front.off;
        if (s < left) {
          front.off += s;
          break;
        }
        s -= left;
        if (c.out.size() == 1 && !front.shared) {
          front.owned.clear();  // keep the capacity for the next responses
          front.off = 0;
          break;
        }
        c.out.pop_front();
      }
    }
    return true;
  }

  // Reads, answers and writes what it can on one connection; closes it when it is done.
  void service(Conn& c) {
    for (;;) {
      if (!c.peer_closed && !c.broken) read_available(c);
      process_requests(c);
      if (c.broken || !flush(c)) {
        conns_.erase(c.id);
        return;
      }
      bool out_empty = c.out_bytes == 0;
      if (!c.pending && out_empty && c.peer_closed && !c.closing &&
          handler_.keeps_closed_connections()) {
        // conn-leak: forget the connection but keep its socket open (CLOSE_WAIT).
        epoll_ctl(ep_.get(), EPOLL_CTL_DEL, c.fd.get(), nullptr);
        leaked_.push_back(std::move(c.fd));
        conns_.erase(c.id);
        return;
      }
      if (!c.pending && out_empty && (c.closing || c.peer_closed)) {
        conns_.erase(c.id);
        return;
      }
      // Stopped reading at the buffer cap and made room since: read again (edge-triggered
      // epoll will not report data that was already there).
      if (c.read_full && !c.pending && !c.closing && c.in.size() - c.in_off < kMaxBufferedIn &&
          c.out_bytes < kMaxBufferedOut) {
        continue;
      }
      return;
    }
  }

  int index_;
  LoopGroup& group_;
  Handler& handler_;
  WorkerPool* pool_;  // null when the handler runs inline
  util::ScopedFd ep_;
  util::ScopedFd wake_;
  util::ScopedFd spare_fd_{open("/dev/null", O_RDONLY | O_CLOEXEC)};  // see accept_ready()
  int listen_fd_ = -1;
  std::thread thread_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Conn>> conns_;  // loop thread only
  std::vector<util::ScopedFd> leaked_;  // conn-leak: sockets the clients closed, kept open
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  std::uint64_t next_id_ = kFirstConnId;
  std::mutex inbox_mu_;
  std::vector<Completion> completions_;  // guarded by inbox_mu_
  std::vector<int> new_fds_;             // guarded by inbox_mu_
};

class EpollServer : public Server {
 public:
  EpollServer(const Options& o, Handler& h, util::ScopedFd listen_fd, int pool_threads)
      : listen_(std::move(listen_fd)),
        stop_fd_(eventfd(0, EFD_CLOEXEC)),
        port_(bound_port(listen_.get())) {
    if (pool_threads > 0) pool_ = std::make_unique<WorkerPool>(pool_threads, "lab-worker");
    // A slow acceptor (backlog scenario) is its own thread handing sockets to the loops; else
    // every loop accepts from the shared listening socket.
    bool own_acceptor = o.accept_delay_ms > 0;
    for (int i = 0; i < o.workers; ++i) {
      group_.loops.push_back(std::make_unique<EventLoop>(
          i, group_, h, pool_.get(), own_acceptor ? -1 : listen_.get(), stop_fd_.get()));
    }
    for (auto& loop : group_.loops) loop->start();
    if (own_acceptor) {
      acceptor_ = std::thread([this, delay = o.accept_delay_ms] {
        std::size_t next = 0;
        accept_loop(listen_.get(), stop_fd_.get(), delay, [this, &next](int fd) {
          group_.loops[next++ % group_.loops.size()]->post_connection(fd);
        });
      });
    }
  }
  ~EpollServer() override { stop(); }

  std::uint16_t port() const override { return port_; }
  int workers() const override { return static_cast<int>(group_.loops.size()); }

  void stop() override {
    if (stopped_.exchange(true)) return;
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t w = write(stop_fd_.get(), &one, sizeof(one));
    if (acceptor_.joinable()) acceptor_.join();
    for (auto& loop : group_.loops) loop->join();
    // Jobs still queued finish and post to loops that no longer run; their results are dropped.
    if (pool_) pool_->stop();
  }

 private:
  util::ScopedFd listen_;
  util::ScopedFd stop_fd_;
  std::uint16_t port_;
  std::unique_ptr<WorkerPool> pool_;
  LoopGroup group_;
  std::thread acceptor_;
  std::atomic<bool> stopped_{false};
};

}  // namespace

util::Result<std::unique_ptr<Server>> Server::start(const Options& o, Handler& handler) {
  auto listen_fd = listen_socket(o);
  if (!listen_fd) return listen_fd.error();
  std::optional<int> executor = handler.executor_threads();
  if (o.model == Model::kThreads) {
    // Blocking scenarios need more threads than cores to keep requests in flight, unless the
    // user sized the pool with --workers.
    int pool =
        executor.value_or(handler.blocking() && !o.workers_given ? o.blocking_workers : o.workers);
    return std::unique_ptr<Server>(new ThreadsServer(o, handler, std::move(*listen_fd), pool));
  }
  int pool = handler.blocking() ? executor.value_or(o.blocking_workers) : 0;
  return std::unique_ptr<Server>(new EpollServer(o, handler, std::move(*listen_fd), pool));
}

}  // namespace chokepoint::lab
