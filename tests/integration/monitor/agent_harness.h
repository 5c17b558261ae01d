#pragma once
// What the agent tests share: a free loopback port, a running `chokepoint agent` that is scraped
// over real HTTP, a cgroup of the test's own, and waiting (bounded) for a scrape to say something.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/background.h"
#include "support/cli.h"
#include "support/http.h"

namespace chokepoint::monitor_test {

// A port nothing listens on now (bound to 0, read back, closed).
inline std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  ::close(fd);
  return ntohs(sa.sin_port);
}

// Polls `done` every 100 ms until it holds or `timeout` passes.
inline bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

// `chokepoint agent ARGS --listen 127.0.0.1:PORT`, killed at the end of the test.
struct Agent {
  std::uint16_t port = 0;
  std::optional<test_support::Background> process;

  static std::optional<Agent> start(std::vector<std::string> args) {
    Agent a;
    a.port = free_port();
    args.insert(args.begin(), "agent");
    // The tests' windows are 1-2 s: sample them as diagnose does (the agent's default is 1 s).
    args.insert(args.end(),
                {"--listen", "127.0.0.1:" + std::to_string(a.port), "--interval", "100ms"});
    auto p = test_support::Background::start(test_support::chokepoint_bin(), args);
    EXPECT_TRUE(p) << p.error().message;
    if (!p) return std::nullopt;
    a.process.emplace(std::move(*p));
    const bool up = wait_until([&] { return a.scrape().has_value(); }, std::chrono::seconds(10));
    EXPECT_TRUE(up) << "the agent never answered on port " << a.port;
    if (!up) return std::nullopt;
    return a;
  }

  std::optional<std::string> scrape() const {
    auto r = test_support::http_get(port, "/metrics", std::chrono::seconds(2));
    if (!r || r->status != 200) return std::nullopt;
    return r->body;
  }

  // Waits until a scrape holds `text`; returns that scrape (empty when it never did).
  std::string wait_for(const std::string& text, std::chrono::milliseconds timeout) const {
    std::string last;
    wait_until(
        [&] {
          auto s = scrape();
          if (s) last = *s;
          return s && s->find(text) != std::string::npos;
        },
        timeout);
    return last.find(text) != std::string::npos ? last : std::string();
  }
};

// A cgroup of the test's own, in the v2 hierarchy where there is one (unified/ on a hybrid host),
// else v1's pids controller. Its processes go back to the root before it is removed.
class TestCgroup {
 public:
  explicit TestCgroup(const std::string& name) {
    for (std::string base : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup", "/sys/fs/cgroup/pids"}) {
      if (std::filesystem::exists(base + "/cgroup.procs")) {
        root_ = base;
        path_ = base + "/" + name + "-" + std::to_string(getpid());
        break;
      }
    }
    create();
  }
  ~TestCgroup() { remove(); }
  TestCgroup(const TestCgroup&) = delete;
  TestCgroup& operator=(const TestCgroup&) = delete;

  const std::string& path() const { return path_; }
  bool create() { return !path_.empty() && (::mkdir(path_.c_str(), 0755) == 0 || errno == EEXIST); }
  bool add(pid_t pid) const {
    std::ofstream procs(path_ + "/cgroup.procs");
    procs << pid << std::endl;
    return static_cast<bool>(procs);
  }
  void remove() {
    if (path_.empty() || !std::filesystem::exists(path_)) return;
    std::ifstream procs(path_ + "/cgroup.procs");
    std::vector<int> pids;
    for (int pid = 0; procs >> pid;) pids.push_back(pid);
    for (int pid : pids) std::ofstream(root_ + "/cgroup.procs") << pid << std::endl;
    ::rmdir(path_.c_str());
  }

 private:
  std::string root_;
  std::string path_;
};

}  // namespace chokepoint::monitor_test
