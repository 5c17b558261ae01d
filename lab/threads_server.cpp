// chokepoint-lab's threads model (server.h): one acceptor thread, one thread per connection doing
// blocking reads and writes, the scenario's work on a WorkerPool.
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "lab/http.h"
#include "lab/server_models.h"
#include "lab/worker_pool.h"
#include "util/scoped_fd.h"

namespace chokepoint::lab {
namespace {

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

}  // namespace

std::unique_ptr<Server> start_threads_server(const Options& o, Handler& handler,
                                             util::ScopedFd listen_fd, int pool_threads) {
  return std::make_unique<ThreadsServer>(o, handler, std::move(listen_fd), pool_threads);
}

}  // namespace chokepoint::lab
