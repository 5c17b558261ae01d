#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/spawn.h"

namespace chokepoint::loadtest {

namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

std::string chokepoint_binary() {
  return std::string(CHOKEPOINT_BIN_DIR) + "/chokepoint";
}

RunResult run(const std::vector<std::string>& argv_in, std::chrono::milliseconds deadline,
              const std::string& shell_prefix) {
  std::vector<std::string> argv = argv_in;
  if (!shell_prefix.empty()) {
    argv.insert(argv.begin(), {"/bin/sh", "-c", shell_prefix + "; exec \"$@\"", "sh"});
  }
  RunResult r;
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return r;
  const double start = now_s();
  const auto spawned = test_support::spawn_process(argv, out[1], err[1]);
  close(out[1]);
  close(err[1]);
  if (!spawned) {
    close(out[0]);
    close(err[0]);
    r.err = spawned.error().message;
    return r;
  }
  const pid_t pid = *spawned;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    const double left_ms = (start + deadline.count() / 1000.0 - now_s()) * 1000.0;
    if (left_ms <= 0) {
      r.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    if (poll(fds, 2, static_cast<int>(left_ms) + 1) < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  r.wall_s = now_s() - start;
  r.cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
            static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  r.max_rss_kb = ru.ru_maxrss;
  if (!r.timed_out && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  return r;
}

std::uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

static bool port_accepts(std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

bool NginxServer::start(std::string* why, int keepalive_requests, bool h2) {
  const char* candidates[] = {"/usr/sbin/nginx", "/usr/bin/nginx"};
  std::string nginx;
  for (const char* c : candidates)
    if (access(c, X_OK) == 0) nginx = c;
  if (nginx.empty()) {
    *why = "nginx is not installed (scripts/setup installs nginx-light)";
    return false;
  }
  char tmpl[] = "/tmp/chokepoint-load-nginx-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    *why = "mkdtemp failed";
    return false;
  }
  dir_ = tmpl;
  port_ = free_port();
  std::ofstream conf(dir_ + "/nginx.conf");
  conf << "daemon off;\nworker_processes 1;\npid " << dir_ << "/nginx.pid;\n"
       << "error_log " << dir_ << "/error.log;\n"
       << "events { worker_connections 4096; }\n"
       << "http {\n"
       << "  log_format lg '$uri $status $http_traceparent $server_protocol';\n"
       << "  access_log " << dir_ << "/access.log lg;\n"
       << "  client_body_temp_path " << dir_ << "/body;\n  proxy_temp_path " << dir_
       << "/proxy;\n  fastcgi_temp_path " << dir_ << "/fcgi;\n  uwsgi_temp_path " << dir_
       << "/uwsgi;\n  scgi_temp_path " << dir_ << "/scgi;\n"
       << "  keepalive_requests " << keepalive_requests << ";\n"
       << "  server {\n    listen 127.0.0.1:" << port_ << (h2 ? " http2" : "") << ";\n"
       << "    location = / { return 200 \"hello\\n\"; }\n"
       << "    location = /a { return 200 \"a\\n\"; }\n"
       << "    location = /b { return 200 \"b\\n\"; }\n"
       << "    location = /missing { return 404; }\n"
       << "    location = /error { return 500; }\n"
       << "  }\n}\n";
  conf.close();
  auto spawned = test_support::spawn_process({nginx, "-p", dir_, "-c", dir_ + "/nginx.conf"});
  if (!spawned) {
    *why = spawned.error().message;
    return false;
  }
  pid_ = *spawned;
  for (int i = 0; i < 100; ++i) {
    if (port_accepts(port_)) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      std::ifstream e(dir_ + "/error.log");
      std::stringstream ss;
      ss << e.rdbuf();
      *why = "nginx exited: " + ss.str();
      return false;
    }
    usleep(50'000);
  }
  *why = "nginx did not accept connections within 5 s";
  return false;
}

NginxServer::~NginxServer() {
  if (pid_ > 0) {
    kill(pid_, SIGQUIT);  // graceful stop; nginx's worker exits with the master
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      usleep(20'000);
    }
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string NginxServer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

std::vector<std::string> NginxServer::access_log() const {
  std::ifstream in(dir_ + "/access.log");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

HostileServer::HostileServer(Mode mode, int delay_ms) : mode_(mode), delay_ms_(delay_ms) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      listen(listen_fd_, 128) != 0) {
    close(listen_fd_);
    listen_fd_ = -1;
    return;
  }
  socklen_t len = sizeof a;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

HostileServer::~HostileServer() {
  stop_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  for (auto& w : workers_) w.thread.join();
  if (listen_fd_ >= 0) close(listen_fd_);
}

std::string HostileServer::url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/";
}

void HostileServer::accept_loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++connections_;
    // Join the connections that ended, so a client that reconnects in a loop cannot pile up
    // thousands of finished threads.
    for (std::size_t i = 0; i < workers_.size();) {
      if (workers_[i].done->load()) {
        workers_[i].thread.join();
        workers_[i] = std::move(workers_.back());
        workers_.pop_back();
      } else {
        ++i;
      }
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    workers_.push_back(Worker{std::thread([this, fd, done] {
                                serve(fd);
                                done->store(true);
                              }),
                              done});
  }
}

namespace {
// Waits up to timeout_ms for readable data; returns bytes read, 0 on EOF, -1 on timeout/error.
ssize_t read_some(int fd, char* buf, std::size_t len, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return -1;
  return recv(fd, buf, len, 0);
}
bool send_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, 100) <= 0) return false;
    const ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}
}  // namespace

void HostileServer::serve(int fd) {
  std::string in;
  char buf[4096];
  // Reads one request head (we never send bodies in these tests). False on EOF or stop.
  auto read_request = [&]() {
    while (!stop_) {
      const auto end = in.find("\r\n\r\n");
      if (end != std::string::npos) {
        in.erase(0, end + 4);
        return true;
      }
      const ssize_t n = read_some(fd, buf, sizeof buf, 50);
      if (n == 0) return false;
      if (n > 0) in.append(buf, static_cast<std::size_t>(n));
      if (n < 0 && errno != 0 && errno != EAGAIN && errno != EINTR) {
        // poll timeout leaves errno untouched; keep waiting
      }
    }
    return false;
  };
  // Idles until the peer closes or the server stops.
  auto linger_until_closed = [&]() {
    while (!stop_) {
      const ssize_t n = read_some(fd, buf, sizeof buf, 50);
      if (n == 0) return;
    }
  };
  switch (mode_) {
    case Mode::kResetMidBody:
      if (read_request()) {
        send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc");
        usleep(10'000);
        linger l{1, 0};  // close with RST (socket(7) SO_LINGER with a zero timeout)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      }
      break;
    case Mode::kGarbageStatus:
      while (read_request()) {
        if (!send_all(fd, "GARBAGE NOT HTTP\r\n\r\n")) break;
      }
      break;
    case Mode::kEndlessHeaders:
      if (read_request() && send_all(fd, "HTTP/1.1 200 OK\r\n")) {
        std::string h;
        for (int i = 0; i < 16; ++i) h += "X-Endless: " + std::string(240, 'x') + "\r\n";
        while (!stop_ && send_all(fd, h)) {
        }
      }
      break;
    case Mode::kBadChunked:
      while (read_request()) {
        if (!send_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n"))
          break;
      }
      break;
    case Mode::kInfiniteBody:
      if (read_request() &&
          send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000\r\n\r\n")) {
        const std::string chunk(16384, 'b');
        while (!stop_ && send_all(fd, chunk)) {
        }
      }
      break;
    case Mode::kSlowLoris:
      if (read_request()) {
        const std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        for (std::size_t i = 0; i < r.size() && !stop_; ++i) {
          if (!send_all(fd, r.substr(i, 1))) break;
          for (int t = 0; t < 20 && !stop_; ++t) usleep(50'000);  // 1 byte per second
        }
      }
      linger_until_closed();
      break;
    case Mode::kSilent:
      read_request();
      linger_until_closed();
      break;
    case Mode::kDelay:
      while (read_request()) {
        for (int t = 0; t < delay_ms_ && !stop_; t += 5) usleep(5'000);
        if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")) break;
      }
      break;
  }
  close(fd);
}

}  // namespace chokepoint::loadtest
