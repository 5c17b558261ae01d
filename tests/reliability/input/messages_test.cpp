// Issue 18 items 5, 6 and 7 against the real binary: bounded input files, option values with one
// clear range, and messages that say what happened (a hint per load failure class, no 0.000
// percentiles without responses, plurals, the unprivileged whole-host profile).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/background.h"
#include "support/cli.h"
#include "support/files.h"

namespace chokepoint::reliability {
namespace {

using test_support::ExitResult;
using test_support::expect_cli_error;
using test_support::read_file;
using test_support::run_chokepoint;
using test_support::TempDir;

// A loopback server that misbehaves one way: never answers, resets every connection, or answers
// in another protocol. Runs until destroyed.
class BadServer {
 public:
  enum class Mode { kSilent, kReset, kNotHttp };
  explicit BadServer(Mode mode) : mode_(mode) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd_, 128) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "cannot listen on loopback";
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~BadServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    for (int c : held_) ::close(c);
    ::close(fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }

 private:
  void serve() {
    while (!stop_) {
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      if (mode_ == Mode::kSilent) {
        held_.push_back(c);
        continue;
      }
      char buf[4096];
      (void)::recv(c, buf, sizeof buf, 0);
      if (mode_ == Mode::kNotHttp) {
        const char reply[] = "SSH-2.0-OpenSSH_9.2\r\n\r\n";
        (void)::send(c, reply, sizeof reply - 1, MSG_NOSIGNAL);
      } else {
        linger l{1, 0};  // close with RST
        ::setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      }
      ::close(c);
    }
  }
  Mode mode_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::vector<int> held_;
  std::thread thread_;
};

std::string hint_of(const ExitResult& r) {
  const auto at = r.stderr_text.find("hint: ");
  return at == std::string::npos ? "" : r.stderr_text.substr(at);
}

TEST(LoadMessages, EachFailureClassHasItsOwnHint) {
  auto refused = run_chokepoint({"load", "http://127.0.0.1:1/", "-d", "500ms", "-c", "1"});
  expect_cli_error(refused, 1, "nothing accepted connections at 127.0.0.1:1");
  BadServer reset(BadServer::Mode::kReset);
  auto r = run_chokepoint({"load", reset.url(), "-d", "500ms", "-c", "2"});
  expect_cli_error(r, 1, "reset or closed connections before a complete response");
  BadServer not_http(BadServer::Mode::kNotHttp);
  auto p = run_chokepoint({"load", not_http.url(), "-d", "500ms", "-c", "2"});
  expect_cli_error(p, 1, "does not answer in HTTP/1.1");
  EXPECT_NE(hint_of(refused), hint_of(r));
  EXPECT_NE(hint_of(r), hint_of(p));
  for (const auto* run : {&refused, &r, &p}) {
    EXPECT_EQ(run->stdout_text.find("0.000  p90"), std::string::npos) << run->stdout_text;
  }
}

TEST(LoadMessages, SilentServerAtAFixedRate) {
  BadServer silent(BadServer::Mode::kSilent);
  auto r = run_chokepoint(
      {"load", silent.url(), "--rate", "100", "-d", "1s", "--timeout", "300ms", "-c", "4"});
  expect_cli_error(r, 1, "sent no complete response within --timeout 0.3 s");
  // Not "rerun with --connections 1 or more": the pool is not what failed.
  EXPECT_EQ(r.stdout_text.find("--connections"), std::string::npos) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("latency    no successful requests"), std::string::npos)
      << r.stdout_text;
  EXPECT_EQ(r.stdout_text.find("p50 0.000"), std::string::npos) << r.stdout_text;
  auto j = run_chokepoint({"load", silent.url(), "--rate", "50", "-d", "500ms", "--timeout",
                           "200ms", "-c", "2", "--json"});
  const auto json = nlohmann::json::parse(j.stdout_text);
  EXPECT_TRUE(json["latency_ms"]["p99"].is_null()) << json.dump();
  EXPECT_EQ(json["latency_ms"]["count"], 0);
}

TEST(LoadMessages, CountsAgreeWithTheirNouns) {
  auto r = run_chokepoint({"load", "http://127.0.0.1:1/", "-d", "300ms", "-c", "1", "-t", "1"});
  EXPECT_NE(r.stdout_text.find("1 thread, 1 HTTP/1.1 connection\n"), std::string::npos)
      << r.stdout_text;
}

TEST(DiagnoseMessages, OneThreadAndTheLoadFailureHint) {
  auto sleeper = test_support::Background::start("sleep", {"30"});
  ASSERT_TRUE(sleeper) << sleeper.error().message;
  const std::string pid = std::to_string(sleeper->pid());
  auto r = run_chokepoint({"diagnose", "--pid", pid, "-d", "1s", "--no-stacks", "--load",
                           "http://127.0.0.1:1/", "--warmup", "0s"},
                          60);
  // "pid N (sleep), 1.0 s, 1 thread": the pid once, the noun singular.
  EXPECT_NE(r.stdout_text.find("pid " + pid + " (sleep), 1.0 s, 1 thread\n"), std::string::npos)
      << r.stdout_text;
  expect_cli_error(r, 1, "nothing accepted connections at 127.0.0.1:1");
}

TEST(OptionValues, OneRangeForEveryDuration) {
  for (const char* sub : {"load", "diagnose", "profile"}) {
    std::vector<std::string> base = {sub};
    if (std::string(sub) == "load") base.push_back("http://127.0.0.1:1/");
    for (const char* d : {"99999h", "1e15h", "169h"}) {
      auto args = base;
      args.insert(args.end(), {"--duration", d});
      expect_cli_error(run_chokepoint(args), 2, "is out of range");
    }
    for (const char* d : {"0x10s", "inf", "nan", "1e", "-1s", "2 s"}) {
      auto args = base;
      args.insert(args.end(), {"--duration", d});
      expect_cli_error(run_chokepoint(args), 2, "is not a duration");
    }
    // -d 0 is the same mistake everywhere.
    auto zero = base;
    zero.insert(zero.end(), {"-d", "0"});
    expect_cli_error(run_chokepoint(zero), 2, "--duration must be above 0");
  }
  expect_cli_error(run_chokepoint({"load", "http://127.0.0.1:1/", "--timeout", "168h", "-d", "1ms",
                                   "--rate", "0x10"}),
                   2, "is not a rate");
}

TEST(OptionValues, PidOutOfRangeIsAClearError) {
  for (const char* sub : {"diagnose", "profile", "knee"}) {
    std::vector<std::string> args = {sub, "--pid", "99999999999"};
    if (std::string(sub) == "knee") args = {sub, "http://127.0.0.1:1/", "--pid", "99999999999"};
    auto r = run_chokepoint(args);
    expect_cli_error(r, 2, "--pid '99999999999' is not a process id");
    EXPECT_EQ(r.stderr_text.find("Could not convert"), std::string::npos) << r.stderr_text;
  }
}

TEST(ProfileMessages, OneOutputGivenTwiceIsAUsageError) {
  TempDir d{"chokepoint-twice"};
  const std::string svg = d.path + "/x.svg";
  auto r = run_chokepoint(
      {"profile", "--pid", std::to_string(getpid()), "-d", "200ms", "-o", svg, "-o", svg});
  expect_cli_error(r, 2, "is given twice");
  EXPECT_FALSE(std::filesystem::exists(svg));
  expect_cli_error(run_chokepoint({"profile", "--pid", std::to_string(getpid()), "-d", "200ms",
                                   "-o", svg, "-o", d.path + "/./x.svg"}),
                   2, "is given twice");
  auto once = run_chokepoint(
      {"profile", "--pid", std::to_string(getpid()), "-d", "300ms", "-o", svg, "--threads"});
  ASSERT_EQ(once.exit_code, 0) << once.stderr_text;
  EXPECT_NE(once.stderr_text.find(" and wrote 1 output in "), std::string::npos)
      << once.stderr_text;
}

// Restores kernel.perf_event_paranoid when the test ends.
class ParanoidAt {
 public:
  explicit ParanoidAt(int value) : old_(read_file(kPath)) { std::ofstream(kPath) << value << "\n"; }
  ~ParanoidAt() { std::ofstream(kPath) << old_; }

 private:
  static constexpr const char* kPath = "/proc/sys/kernel/perf_event_paranoid";
  std::string old_;
};

TEST(ProfileMessages, UnprivilegedWholeHostSaysWhy) {
  ASSERT_EQ(geteuid(), 0u) << "needs root to switch to an unprivileged user";
  ParanoidAt paranoid(2);
  auto r = test_support::run_to_exit({"--reuid=65534", "--regid=65534", "--clear-groups",
                                      test_support::chokepoint_bin(), "profile", "-d", "500ms"},
                                     "/usr/bin/setpriv", std::chrono::seconds(30));
  ASSERT_TRUE(r) << r.error().message;
  expect_cli_error(*r, 1, "perf_event_open");
  EXPECT_EQ(r->stderr_text.find("belongs to another user"), std::string::npos) << r->stderr_text;
  EXPECT_NE(r->stderr_text.find("whole host"), std::string::npos) << r->stderr_text;
  EXPECT_NE(r->stderr_text.find("perf_event_paranoid is 2"), std::string::npos) << r->stderr_text;
}

TEST(UslInput, DevZeroEndsWithASizeError) {
  const auto start = std::chrono::steady_clock::now();
  auto r = run_chokepoint({"usl", "/dev/zero"}, 20);
  expect_cli_error(r, 1, "holds more than 1 MiB");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(UslInput, DirectoryAndLargeFile) {
  TempDir d{"chokepoint-usl-input"};
  expect_cli_error(run_chokepoint({"usl", d.path}), 1, "is a directory");
  const std::string big = d.path + "/big.csv";
  {
    std::ofstream out(big);
    for (int i = 0; i < 250000; ++i) out << "1,10\n";  // 1.25 MB of rows: past the cap
  }
  expect_cli_error(run_chokepoint({"usl", big}), 1, "is larger than 1 MiB");
}

TEST(LoadInput, BodyFileIsBounded) {
  const auto start = std::chrono::steady_clock::now();
  expect_cli_error(
      run_chokepoint({"load", "http://127.0.0.1:1/", "-d", "1s", "--body-file", "/dev/zero"}), 2,
      "--body-file: '/dev/zero' holds more than 64 MiB");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  expect_cli_error(
      run_chokepoint({"load", "http://127.0.0.1:1/", "-d", "1s", "--body-file", "/tmp"}), 2,
      "is a directory");
}

TEST(UslInput, ByteOrderMarkKeepsTheFirstRow) {
  TempDir d{"chokepoint-usl-bom"};
  const std::string csv = d.path + "/bom.csv";
  std::ofstream(csv) << "\xEF\xBB\xBF"
                        "1,100\n2,190\n4,340\n8,560\n";
  auto r = run_chokepoint({"usl", csv, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(nlohmann::json::parse(r.stdout_text)["points"].size(), 4u);
  const std::string three = d.path + "/three.csv";
  std::ofstream(three) << "1,100,7\n2,190\n4,340\n8,560\n";
  expect_cli_error(run_chokepoint({"usl", three}), 1, "line 1:");
}

}  // namespace
}  // namespace chokepoint::reliability
