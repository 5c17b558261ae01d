// chokepoint-lab's epoll model (server.h): event loops sharing one listening socket, handlers
// inline, blocking handlers on a WorkerPool whose results come back through each loop's eventfd,
// delayed answers on a timer.
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <deque>
#include <mutex>
#include <queue>
#include <thread>
#include <unordered_map>
#include <vector>

#include "lab/http.h"
#include "lab/server_models.h"
#include "lab/worker_pool.h"
#include "util/clock.h"
#include "util/scoped_fd.h"

namespace chokepoint::lab {
namespace {

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

std::unique_ptr<Server> start_epoll_server(const Options& o, Handler& handler,
                                           util::ScopedFd listen_fd, int pool_threads) {
  return std::make_unique<EpollServer>(o, handler, std::move(listen_fd), pool_threads);
}

}  // namespace chokepoint::lab
