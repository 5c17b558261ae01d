// Scenario-specific evidence that each bottleneck is real (and its fix works), plus protocol
// edge cases of the lab's HTTP server. Every test starts its own lab on port 0.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "integration/lab/lab_test_util.h"
#include "lab/http_client.h"
#include "support/http.h"
#include "support/lab_process.h"
#include "util/scoped_fd.h"

namespace chokepoint::lab_test {
namespace {

using test_support::http_get;
using test_support::http_get_keepalive;
using test_support::LabProcess;
using Clock = std::chrono::steady_clock;

std::string make_temp_dir() {
  std::string templ = "/tmp/lab-test.XXXXXX";
  EXPECT_NE(mkdtemp(templ.data()), nullptr);
  return templ;
}

std::int64_t file_size(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

TEST(LabDisk, DataFileGrowsByOneRecordPerRequest) {
  for (const char* mode : {"per-request", "batch", "async"}) {
    SCOPED_TRACE(mode);
    std::string dir = make_temp_dir();
    auto lab = LabProcess::start({"--scenario", "disk", "--commit", mode, "--data-dir", dir,
                                  "--record-bytes", "256", "--port", "0"});
    ASSERT_TRUE(lab) << lab.error().message;
    auto r = http_get_keepalive(lab->port(), "/?k=9", 25);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->back().body, "disk committed seq=25\n");
    auto code = lab->stop();
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, 0);
    EXPECT_EQ(file_size(dir + "/disk.dat"), 25 * 256);
    EXPECT_TRUE(std::filesystem::exists(dir)) << "a user's --data-dir is kept";
    std::filesystem::remove_all(dir);
  }
}

// The fsync scenario's file is opened O_DSYNC (the sync happens inside write(2)); its fix,
// --commit async, opens it without.
TEST(LabFsync, DataFileIsODsyncAndGrowsByOneRecordPerRequest) {
  for (const char* mode : {"per-request", "batch", "async"}) {
    SCOPED_TRACE(mode);
    std::string dir = make_temp_dir();
    auto lab = LabProcess::start({"--scenario", "fsync", "--commit", mode, "--data-dir", dir,
                                  "--record-bytes", "128", "--port", "0"});
    ASSERT_TRUE(lab) << lab.error().message;
    auto r = http_get_keepalive(lab->port(), "/?k=9", 10);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->back().body, "fsync committed seq=10\n");
    // /proc/PID/fdinfo/FD "flags:" is octal (proc(5)); find the fd of dsync.dat.
    bool found = false;
    const std::string fd_dir = "/proc/" + std::to_string(lab->pid()) + "/fd";
    for (const auto& e : std::filesystem::directory_iterator(fd_dir)) {
      std::error_code ec;
      if (std::filesystem::read_symlink(e.path(), ec).string() != dir + "/dsync.dat") continue;
      std::ifstream info("/proc/" + std::to_string(lab->pid()) + "/fdinfo/" +
                         e.path().filename().string());
      std::string key, flags;
      while (info >> key >> flags && key != "flags:") {
      }
      const long value = std::stol(flags, nullptr, 8);
      EXPECT_EQ((value & O_DSYNC) == O_DSYNC, std::string(mode) != "async") << flags;
      found = true;
    }
    EXPECT_TRUE(found) << "dsync.dat is not open";
    auto code = lab->stop();
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, 0);
    EXPECT_EQ(file_size(dir + "/dsync.dat"), 10 * 128);
    std::filesystem::remove_all(dir);
  }
}

TEST(LabLog, SyncLogWritesOneLinePerRequest) {
  std::string dir = make_temp_dir();
  auto lab = LabProcess::start({"--scenario", "log", "--data-dir", dir, "--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  ASSERT_TRUE(http_get_keepalive(lab->port(), "/?k=3", 30));
  std::ifstream in(dir + "/requests.log");
  int lines = 0;
  for (std::string line; std::getline(in, line);) ++lines;
  EXPECT_EQ(lines, 30);
  EXPECT_EQ(*lab->stop(), 0);
  std::filesystem::remove_all(dir);
}

TEST(LabLeak, RssGrowsUnboundedAndPlateausWhenBounded) {
  constexpr int kRequests = 200;
  constexpr std::int64_t kBlock = 64 * 1024;
  auto leak = LabProcess::start({"--scenario", "leak", "--port", "0"});
  ASSERT_TRUE(leak) << leak.error().message;
  std::int64_t before = rss_bytes(leak->pid());
  ASSERT_TRUE(http_get_keepalive(leak->port(), "/?k=1", kRequests));
  std::int64_t grown = rss_bytes(leak->pid()) - before;
  EXPECT_GT(grown, kRequests * kBlock * 8 / 10) << "RSS grew by " << grown << " bytes";
  EXPECT_EQ(*leak->stop(), 0);

#if defined(__SANITIZE_ADDRESS__)
  // ASan keeps freed blocks in a quarantine (256 MiB by default), so RSS would keep growing
  // although the bounded lab frees what it evicts. Only the lab started below needs this.
  const char* asan = std::getenv("ASAN_OPTIONS");
  std::string asan_options =
      std::string(asan ? asan : "") + (asan && *asan ? ":" : "") + "quarantine_size_mb=0";
  setenv("ASAN_OPTIONS", asan_options.c_str(), 1);
#endif
  auto bounded = LabProcess::start(
      {"--scenario", "leak", "--bounded", "--leak-lru-entries", "32", "--port", "0"});
  ASSERT_TRUE(bounded) << bounded.error().message;
  lab::HttpClient client("127.0.0.1", bounded->port());
  auto send_unique = [&](int from, int count) {
    for (int i = from; i < from + count; ++i) {
      auto r = client.get("/?k=" + std::to_string(i), 5000);
      ASSERT_TRUE(r) << r.error().message;
      ASSERT_EQ(r->status, 200);
    }
  };
  send_unique(0, 100);  // fills the LRU (32 x 64 KiB) and warms the allocator
  std::int64_t plateau = rss_bytes(bounded->pid());
  send_unique(100, kRequests);
  std::int64_t after = rss_bytes(bounded->pid());
  EXPECT_LT(after - plateau, kRequests * kBlock / 4)
      << "bounded RSS went from " << plateau << " to " << after;
  EXPECT_EQ(*bounded->stop(), 0);
}

TEST(LabPaging, MajorFaultsRiseUnboundedNotBounded) {
  if (!is_root()) GTEST_SKIP() << "the paging scenario needs root for its memory cgroup";
  auto measure = [](bool bounded) -> std::int64_t {
    std::vector<std::string> args = {"--scenario", "paging", "--memory-limit",
                                     "16777216",   "--port", "0"};
    if (bounded) args.push_back("--bounded");
    auto lab = LabProcess::start(args);
    EXPECT_TRUE(lab) << lab.error().message;
    if (!lab) return -1;
    EXPECT_TRUE(http_get_keepalive(lab->port(), "/?k=1", 150));  // warm up
    std::int64_t before = major_faults(lab->pid());
    EXPECT_TRUE(http_get_keepalive(lab->port(), "/?k=2", 150));
    std::int64_t faults = major_faults(lab->pid()) - before;
    EXPECT_EQ(*lab->stop(), 0);
    return faults;
  };
  std::int64_t unbounded = measure(false);
  std::int64_t bounded = measure(true);
  // 150 requests x 8 random pages over 64 MiB with 16 MiB of memory: most reads miss.
  EXPECT_GT(unbounded, 150 * 8 / 2) << "unbounded majflt " << unbounded;
  EXPECT_LT(bounded, unbounded / 4) << "bounded majflt " << bounded;
}

std::int64_t request_ms(lab::HttpClient& client) {
  auto t0 = Clock::now();
  auto r = client.get("/?k=5", 5000);
  EXPECT_TRUE(r) << r.error().message;
  if (r) {
    EXPECT_EQ(r->status, 200) << r->body;
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

TEST(LabUpstream, SequentialCallsAddUpAndFixesRemoveThem) {
  constexpr int kDelayMs = 40;
  auto up = LabProcess::start(
      {"--role", "upstream", "--delay-ms", std::to_string(kDelayMs), "--port", "0"});
  ASSERT_TRUE(up) << up.error().message;
  std::string where = "127.0.0.1:" + std::to_string(up->port());
  for (const char* model : {"epoll", "threads"}) {
    SCOPED_TRACE(model);
    auto best_of_3 = [&](std::vector<std::string> extra) {
      std::vector<std::string> args = {"--scenario", "upstream", "--upstream", where,
                                       "--model",    model,      "--port",     "0"};
      args.insert(args.end(), extra.begin(), extra.end());
      auto lab = LabProcess::start(args);
      EXPECT_TRUE(lab) << lab.error().message;
      if (!lab) return std::int64_t{-1};
      lab::HttpClient client("127.0.0.1", lab->port());
      std::int64_t best = INT64_MAX;
      for (int i = 0; i < 3; ++i) best = std::min(best, request_ms(client));
      EXPECT_EQ(*lab->stop(), 0);
      return best;
    };
    std::int64_t sequential = best_of_3({});
    std::int64_t concurrent = best_of_3({"--upstream-concurrent"});
    std::int64_t batch = best_of_3({"--upstream-batch"});
    EXPECT_GE(sequential, 3 * kDelayMs);
    EXPECT_GE(concurrent, kDelayMs);
    EXPECT_LT(concurrent, 2 * kDelayMs);
    EXPECT_GE(batch, kDelayMs);
    EXPECT_LT(batch, 2 * kDelayMs);
  }
  EXPECT_EQ(*up->stop(), 0);
}

// The proxy's one loop forwards over --upstream-pool connections: with a pool of 2 and a 100 ms
// upstream, 6 concurrent requests take 3 rounds; with a pool of 6, one. --cache on answers a
// repeated key without the upstream.
TEST(LabProxy, ThePoolBoundsConcurrencyAndTheCacheSkipsTheUpstream) {
  constexpr int kDelayMs = 100;
  auto up = LabProcess::start(
      {"--role", "upstream", "--delay-ms", std::to_string(kDelayMs), "--port", "0"});
  ASSERT_TRUE(up) << up.error().message;
  const std::string where = "127.0.0.1:" + std::to_string(up->port());
  auto six_at_once = [](std::uint16_t port) {
    std::vector<std::unique_ptr<lab::HttpClient>> clients;
    auto t0 = Clock::now();
    for (int i = 0; i < 6; ++i) {
      clients.push_back(std::make_unique<lab::HttpClient>("127.0.0.1", port));
      EXPECT_TRUE(clients.back()->send_get("/?k=" + std::to_string(i), 5000));
    }
    for (auto& c : clients) {
      auto r = c->read_response(5000);
      EXPECT_TRUE(r) << r.error().message;
      if (r) {
        EXPECT_EQ(r->body, "upstream delay_ms=100 batch=1\n");
      }
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  };
  for (const char* pool : {"2", "6"}) {
    SCOPED_TRACE(pool);
    auto proxy = LabProcess::start({"--scenario", "proxy", "--upstream", where, "--upstream-pool",
                                    pool, "--cache", "on", "--port", "0"});
    ASSERT_TRUE(proxy) << proxy.error().message;
    EXPECT_NE(proxy->ready_line().find("scenario=proxy model=epoll workers=1"), std::string::npos)
        << proxy->ready_line();
    const auto ms = six_at_once(proxy->port());
    if (std::string(pool) == "2") {
      EXPECT_GE(ms, 3 * kDelayMs);
    } else {
      EXPECT_GE(ms, kDelayMs);
      EXPECT_LT(ms, 2 * kDelayMs);
    }
    // Every key is cached now: the same six answer without waiting for the upstream.
    EXPECT_LT(six_at_once(proxy->port()), kDelayMs);
    EXPECT_EQ(*proxy->stop(), 0);
  }
  EXPECT_EQ(*up->stop(), 0);
}

// An upstream that is down answers 502; one slower than --upstream-timeout-ms, 504; the proxy
// keeps serving either way.
TEST(LabProxy, UpstreamFailuresAnswer502And504) {
  auto slow = LabProcess::start({"--role", "upstream", "--delay-ms", "2000", "--port", "0"});
  ASSERT_TRUE(slow) << slow.error().message;
  auto timed_out =
      LabProcess::start({"--scenario", "proxy", "--upstream-timeout-ms", "100", "--upstream",
                         "127.0.0.1:" + std::to_string(slow->port()), "--port", "0"});
  ASSERT_TRUE(timed_out) << timed_out.error().message;
  auto t0 = Clock::now();
  auto r = http_get(timed_out->port(), "/?k=1");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 504) << r->body;
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count(), 1000);
  auto health = http_get(timed_out->port(), "/health");
  ASSERT_TRUE(health) << health.error().message;
  EXPECT_EQ(health->body, "ok\n");
  EXPECT_EQ(*timed_out->stop(), 0);
  const std::uint16_t gone = slow->port();
  EXPECT_EQ(*slow->stop(), 0);

  auto down = LabProcess::start(
      {"--scenario", "proxy", "--upstream", "127.0.0.1:" + std::to_string(gone), "--port", "0"});
  ASSERT_TRUE(down) << down.error().message;
  for (int i = 0; i < 2; ++i) {
    auto e = http_get(down->port(), "/?k=1");
    ASSERT_TRUE(e) << e.error().message;
    EXPECT_EQ(e->status, 502) << e->body;
  }
  EXPECT_EQ(*down->stop(), 0);
}

TEST(LabUpstreamRole, ManyConcurrentDelayedRequestsOverlap) {
  auto up = LabProcess::start({"--role", "upstream", "--delay-ms", "200", "--port", "0"});
  ASSERT_TRUE(up) << up.error().message;
  std::vector<std::unique_ptr<lab::HttpClient>> clients;
  auto t0 = Clock::now();
  for (int i = 0; i < 50; ++i) {
    clients.push_back(std::make_unique<lab::HttpClient>("127.0.0.1", up->port()));
    ASSERT_TRUE(clients.back()->send_get("/?batch=4", 5000));
  }
  for (auto& c : clients) {
    auto r = c->read_response(5000);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->body, "upstream delay_ms=200 batch=4\n");
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  EXPECT_GE(ms, 200);
  EXPECT_LT(ms, 1000) << "50 delayed requests must wait on timers in parallel";
  EXPECT_EQ(*up->stop(), 0);
}

TEST(LabBacklog, SlowAcceptsOverflowTheListenQueue) {
  auto lab = LabProcess::start({"--scenario", "backlog", "--model", "threads", "--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  std::int64_t before = listen_overflows();
  ASSERT_GE(before, 0);
  // A burst of non-blocking connects; with backlog 1 and 20 ms between accepts most overflow.
  std::vector<util::ScopedFd> socks;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(lab->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < 64; ++i) {
    util::ScopedFd fd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socks.push_back(std::move(fd));
  }
  std::int64_t after = before;
  for (int i = 0; i < 40 && after == before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    after = listen_overflows();
  }
  EXPECT_GT(after, before) << "ListenOverflows did not rise";
  socks.clear();
  EXPECT_EQ(*lab->stop(), 0);
}

TEST(LabHttp, PipelinedRequestsAnswerInOrder) {
  for (const char* model : {"epoll", "threads"}) {
    SCOPED_TRACE(model);
    auto lab = LabProcess::start(
        {"--scenario", "lock", "--work-us", "50", "--model", model, "--port", "0"});
    ASSERT_TRUE(lab) << lab.error().message;
    lab::HttpClient client("127.0.0.1", lab->port());
    std::string burst;
    for (int i = 0; i < 5; ++i) burst += "GET /?k=p HTTP/1.1\r\nHost: x\r\n\r\n";
    // A request with a Content-Length body the server must skip, then /health.
    burst += "GET /?k=p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /health HTTP/1.1\r\n\r\n";
    ASSERT_TRUE(client.send_raw(burst, 5000));
    for (int i = 1; i <= 6; ++i) {
      auto r = client.read_response(5000);
      ASSERT_TRUE(r) << r.error().message;
      EXPECT_EQ(r->body, "lock key=k=p shard=0 count=" + std::to_string(i) + "\n");
    }
    auto health = client.read_response(5000);
    ASSERT_TRUE(health) << health.error().message;
    EXPECT_EQ(health->body, "ok\n");
    EXPECT_EQ(*lab->stop(), 0);
  }
}

TEST(LabHttp, MalformedRequestsGetErrorsAndClose) {
  auto lab = LabProcess::start({"--scenario", "none", "--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  struct Bad {
    std::string bytes;
    int status;
  };
  std::vector<Bad> bad = {
      {"GARBAGE\r\n\r\n", 400},
      {"GET / HTTP/1.1\nHost: x\n\n", 400},
      {"GET / HTTP/2.0\r\n\r\n", 501},
      {"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
      {"GET / HTTP/1.1\r\nX: " + std::string(9000, 'a') + "\r\n\r\n", 431},
      {"GET / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413},
      {"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405},
      {"GET /nope HTTP/1.1\r\n\r\n", 404},
  };
  for (const Bad& b : bad) {
    SCOPED_TRACE(b.bytes.substr(0, 40));
    lab::HttpClient client("127.0.0.1", lab->port());
    ASSERT_TRUE(client.send_raw(b.bytes, 5000));
    auto r = client.read_response(5000);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->status, b.status);
    if (b.status != 405 && b.status != 404) {
      EXPECT_FALSE(r->keep_alive);
    }
  }
  EXPECT_EQ(*lab->stop(), 0);
}

TEST(LabSignals, SigintStopsCleanlyUnderLoad) {
  for (const char* model : {"epoll", "threads"}) {
    SCOPED_TRACE(model);
    std::time_t started = std::time(nullptr) - 1;
    auto lab = LabProcess::start(
        {"--scenario", "cpu", "--work-us", "300", "--model", model, "--port", "0"});
    ASSERT_TRUE(lab) << lab.error().message;
    std::atomic<bool> done{false};
    std::vector<std::thread> load;
    for (int t = 0; t < 4; ++t) {
      load.emplace_back([&, port = lab->port()] {
        lab::HttpClient client("127.0.0.1", port);
        while (!done) {
          if (!client.get("/?k=1", 2000)) break;  // the server went away: expected
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    pid_t pid = lab->pid();
    auto t0 = Clock::now();
    auto code = lab->stop(SIGINT);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    done = true;
    for (auto& t : load) t.join();
    ASSERT_TRUE(code) << code.error().message;
    EXPECT_EQ(*code, 0);
    EXPECT_LT(ms, 1500);
    EXPECT_TRUE(temp_data_dirs(pid, started).empty());
  }
}

}  // namespace
}  // namespace chokepoint::lab_test
