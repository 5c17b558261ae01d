// OS limits of issue 19 on real programs, each near its limit and then healthy (or fixed), through
// `chokepoint diagnose --json`:
// - conntrack: limits_holder fills the connection tracking table of a network namespace the test
//   creates (a ct rule there makes netfilter track it) past nf_conntrack_max, then keeps adding
//   flows, so the kernel evicts entries during the window; a namespace with a few thousand entries
//   stays silent. nf_conntrack_max itself is the host's (read-only inside a namespace): it is
//   read, never changed.
// - rlimits: limits_holder sets RLIMIT_NPROC, RLIMIT_MEMLOCK and RLIMIT_STACK, becomes an unused
//   uid, and starts threads until pthread_create fails with EAGAIN, locks memory and recurses
//   near each limit; with room under each limit (8 MiB of memlock, the kernel's default hard
//   limit, which a process without CAP_SYS_RESOURCE cannot raise) the same program is silent.
// - the accept queue: the lab's slow acceptor (backlog scenario) with its acceptor stalled, and
//   then accepting promptly (the fix).
// - SYN flood: limits_holder sends SYNs from spoofed addresses over a raw socket to the lab in a
//   test network namespace with tcp_syncookies=0 and tcp_max_syn_backlog=256 there; the answers
//   go to a route on the namespace's veth that nothing answers. A healthy listener with real
//   connections is silent.
// Every run is bounded: a 2 s diagnosis each, 20 s for the whole file here.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "limits_support.h"
#include "support/background.h"
#include "support/cli.h"
#include "support/lab_process.h"
#include "support/netns.h"
#include "util/scoped_fd.h"

namespace chokepoint::os_limits_test {
namespace {

using test_support::Background;
using test_support::chokepoint_bin;
using test_support::LabProcess;

nlohmann::json diagnose(pid_t pid) {
  return test_support::diagnose_json(pid, "2s");
}

std::vector<std::string> findings(const nlohmann::json& j, const std::string& resource,
                                  const std::string& text) {
  return test_support::findings_about(j, resource, text);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Waits (up to 20 s) until the holder names itself "limits-ready".
bool wait_ready(pid_t pid) {
  const std::string comm = "/proc/" + std::to_string(pid) + "/comm";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (read_file(comm) == "limits-ready\n") return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::uint64_t host_conntrack_max() {
  std::ifstream in("/proc/sys/net/netfilter/nf_conntrack_max");
  std::uint64_t v = 0;
  in >> v;
  return v;
}

util::Result<void> in_netns(const test_support::TestNetns& net, const std::string& tool,
                            const std::vector<std::string>& args) {
  std::vector<std::string> all = {"netns", "exec", net.name(), test_support::sbin_tool(tool)};
  all.insert(all.end(), args.begin(), args.end());
  return test_support::run_tool("ip", all);
}

void conntrack(bool full) {
  if (std::string why = test_support::netns_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const std::uint64_t max = host_conntrack_max();
  ASSERT_GT(max, 0u) << "this kernel has no nf_conntrack (net.netfilter.nf_conntrack_max)";
  auto n = test_support::TestNetns::create();
  ASSERT_TRUE(n) << "cannot create a network namespace: " << n.error().message;
  auto& net = *n;
  // Netfilter tracks a namespace's flows once a rule there uses conntrack.
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"add", "table", "inet", "chokepoint_test"},
           {"add", "chain", "inet", "chokepoint_test", "out", "{", "type", "filter", "hook",
            "output", "priority", "0", ";", "}"},
           {"add", "rule", "inet", "chokepoint_test", "out", "ct", "state", "new", "counter"}}) {
    auto r = in_netns(net, "nft", args);
    ASSERT_TRUE(r) << r.error().message;
  }
  // Past the limit by 5%, then 3,000 new flows a second; or a few thousand and nothing more.
  const std::uint64_t fill = full ? max + max / 20 : 3000;
  const std::string per_s = full ? "3000" : "0";
  auto holder =
      Background::start(test_support::sbin_tool("ip"),
                        net.exec_args(LIMITS_HOLDER, {"conntrack", std::to_string(fill), per_s}));
  ASSERT_TRUE(holder) << holder.error().message;
  ASSERT_TRUE(wait_ready(holder->pid())) << "the holder never filled the table";
  auto j = diagnose(holder->pid());
  ASSERT_TRUE(j.contains("tcp") && j["tcp"].contains("conntrack")) << j.dump(1);
  const auto& ct = j["tcp"]["conntrack"];
  EXPECT_EQ(ct["max"], max) << ct.dump(1);
  const auto found = findings(j, "connections", "connection tracking table");
  if (full) {
    // At the limit: an eviction and the next insert race with the read.
    EXPECT_GE(ct["count"].get<std::uint64_t>(), max - max / 100)
        << "the namespace's count, not the host's: " << ct.dump(1);
    EXPECT_GT(ct["early_drop_window"].get<std::uint64_t>(), 1000u) << ct.dump(1);
    ASSERT_EQ(found.size(), 1u) << j["findings"].dump(1);
    EXPECT_NE(found[0].find(" entries of net.netfilter.nf_conntrack_max " + std::to_string(max) +
                            " (100%); the table was full during the window"),
              std::string::npos)
        << found[0];
    EXPECT_NE(found[0].find("unreplied entries evicted"), std::string::npos) << found[0];
    EXPECT_NE(found[0].find("NOTRACK"), std::string::npos) << found[0];
  } else {
    EXPECT_GE(ct["count"].get<std::uint64_t>(), 3000u) << ct.dump(1);
    EXPECT_LT(ct["count"].get<std::uint64_t>(), 10000u) << ct.dump(1);
    EXPECT_EQ(ct["early_drop_window"], 0) << ct.dump(1);
    EXPECT_TRUE(found.empty()) << found[0];
  }
}

TEST(OsLimits, ConntrackTableFull) {
  conntrack(true);
}

TEST(OsLimits, ConntrackTableWithRoomIsSilent) {
  conntrack(false);
}

// A uid no one else runs as, so RLIMIT_NPROC's count is the holder's own tasks.
constexpr const char* kHolderUid = "42917";

std::uint64_t status_field(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stoull(line.substr(key.size() + 1));
  }
  return 0;
}

void rlimits(bool near) {
  // NPROC MEMLOCK_BYTES LOCK_BYTES STACK_BYTES STACK_USE_BYTES MAX_THREADS UID
  const std::vector<std::string> args =
      near ? std::vector<std::string>{"rlimits", "24",     "8388608", "7340032",
                                      "1048576", "870400", "1000",    kHolderUid}
           : std::vector<std::string>{"rlimits", "4096",  "8388608", "1048576",
                                      "8388608", "65536", "8",       kHolderUid};
  auto holder = Background::start(LIMITS_HOLDER, args);
  ASSERT_TRUE(holder) << holder.error().message;
  ASSERT_TRUE(wait_ready(holder->pid())) << "the holder never got ready";
  // Near: pthread_create failed with EAGAIN at 24 tasks (it would have gone on to 1,000).
  EXPECT_EQ(status_field(holder->pid(), "Threads"), near ? 24u : 9u);
  auto j = diagnose(holder->pid());
  ASSERT_TRUE(j.contains("rlimits")) << j.dump(1);
  ASSERT_EQ(j["rlimits"].size(), 1u) << j["rlimits"].dump(1);
  const auto& r = j["rlimits"][0];
  EXPECT_EQ(r["uid"], std::stoi(kHolderUid)) << r.dump(1);
  EXPECT_EQ(r["uid_tasks"], near ? 24 : 9) << r.dump(1);
  EXPECT_FALSE(r["nproc_exempt"].get<bool>()) << "a non-root uid without capabilities";
  EXPECT_FALSE(r["memlock_exempt"].get<bool>());
  const auto nproc = findings(j, "rlimits", "RLIMIT_NPROC");
  const auto memlock = findings(j, "rlimits", "RLIMIT_MEMLOCK");
  const auto stack = findings(j, "rlimits", "RLIMIT_STACK");
  if (near) {
    EXPECT_EQ(r["nproc_soft"], 24) << r.dump(1);
    EXPECT_EQ(r["locked_bytes"], 7340032) << r.dump(1);
    ASSERT_EQ(nproc.size(), 1u) << j["findings"].dump(1);
    EXPECT_NE(nproc[0].find("uid 42917 runs 24 tasks (processes and threads) against the "
                            "RLIMIT_NPROC of pid " +
                            std::to_string(holder->pid()) + " (limits-ready), 24 (100%)"),
              std::string::npos)
        << nproc[0];
    EXPECT_NE(nproc[0].find("EAGAIN"), std::string::npos) << nproc[0];
    EXPECT_NE(nproc[0].find("LimitNPROC="), std::string::npos) << nproc[0];
    ASSERT_EQ(memlock.size(), 1u) << j["findings"].dump(1);
    EXPECT_NE(memlock[0].find("7.0 MiB of memory locked (VmLck) of its RLIMIT_MEMLOCK 8.0 MiB"),
              std::string::npos)
        << memlock[0];
    ASSERT_EQ(stack.size(), 1u) << j["findings"].dump(1);
    EXPECT_NE(stack[0].find("of its RLIMIT_STACK 1.0 MiB"), std::string::npos) << stack[0];
  } else {
    EXPECT_TRUE(nproc.empty()) << nproc[0];
    EXPECT_TRUE(memlock.empty()) << memlock[0];
    EXPECT_TRUE(stack.empty()) << stack[0];
  }
  ::kill(holder->pid(), SIGTERM);
  auto code = holder->wait(5000);
  ASSERT_TRUE(code) << code.error().message;
  EXPECT_EQ(*code, 0);
}

TEST(OsLimits, RlimitsNearNprocMemlockAndStack) {
  rlimits(true);
}

TEST(OsLimits, RlimitsRaisedAreSilent) {
  rlimits(false);
}

// Non-blocking connects to 127.0.0.1:port, kept open while the object lives.
class Connections {
 public:
  Connections(std::uint16_t port, int count) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < count; ++i) {
      util::ScopedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!fd.valid()) continue;
      (void)::connect(fd.get(), reinterpret_cast<const sockaddr*>(&to), sizeof to);
      fds_.push_back(std::move(fd));
    }
  }
  std::size_t size() const { return fds_.size(); }

 private:
  std::vector<util::ScopedFd> fds_;
};

// The lab's slow acceptor with a backlog of 8: stalled (one accept a minute), 32 clients fill
// the queue; accepting every millisecond (the fix), the same clients are all taken.
void accept_queue(bool stalled) {
  auto lab = LabProcess::start({"--scenario", "backlog", "--backlog", "8", "--accept-delay-ms",
                                stalled ? "60000" : "1", "--port", "0"});
  ASSERT_TRUE(lab) << lab.error().message;
  Connections clients(lab->port(), 32);
  ASSERT_EQ(clients.size(), 32u);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto j = diagnose(lab->pid());
  ASSERT_TRUE(j.contains("tcp")) << j.dump(1);
  const auto full = findings(j, "connections", "accept queue");
  if (stalled) {
    ASSERT_EQ(full.size(), 1u) << j["findings"].dump(1) << j["tcp"].dump(1);
    EXPECT_NE(
        full[0].find("the accept queue of 127.0.0.1:" + std::to_string(lab->port()) + " is full"),
        std::string::npos)
        << full[0];
    EXPECT_NE(full[0].find("with a backlog of 8"), std::string::npos) << full[0];
    EXPECT_NE(full[0].find("the service asked listen() for 8"), std::string::npos) << full[0];
  } else {
    EXPECT_TRUE(full.empty()) << full[0];
  }
}

TEST(OsLimits, AcceptQueueOfAStalledAcceptorIsFull) {
  accept_queue(true);
}

TEST(OsLimits, AcceptQueueOfAPromptAcceptorIsSilent) {
  accept_queue(false);
}

// The lab in a test namespace with SYN cookies off and a SYN queue of 256 there. Flooded: 400
// SYNs from spoofed sources whose SYN-ACKs go to a route on the namespace's veth that nothing
// answers (no traffic leaves the namespace's link), so ~192 stay half-open; healthy: 32 real
// connections from inside the namespace.
void syn_flood(bool flooded) {
  if (std::string why = test_support::netns_unavailable(); !why.empty()) GTEST_SKIP() << why;
  auto n = test_support::TestNetns::create();
  ASSERT_TRUE(n) << "cannot create a network namespace: " << n.error().message;
  auto& net = *n;
  auto tuned = in_netns(
      net, "sysctl", {"-q", "-w", "net.ipv4.tcp_syncookies=0", "net.ipv4.tcp_max_syn_backlog=256"});
  ASSERT_TRUE(tuned) << tuned.error().message;
  auto routed = in_netns(net, "ip", {"route", "add", "198.18.0.0/15", "dev", net.ns_interface()});
  ASSERT_TRUE(routed) << routed.error().message;
  auto lab =
      LabProcess::start(net.exec_args(test_support::default_lab_binary(),
                                      {"--scenario", "none", "--bind", net.ns_ip(), "--port", "0"}),
                        test_support::sbin_tool("ip"));
  ASSERT_TRUE(lab) << lab.error().message;
  if (flooded) {
    auto sent =
        in_netns(net, LIMITS_HOLDER, {"syn", net.ns_ip(), std::to_string(lab->port()), "400"});
    ASSERT_TRUE(sent) << sent.error().message;
  } else {
    auto load = Background::start(
        "wrk",
        {"-t1", "-c32", "-d2s", "http://" + net.ns_ip() + ":" + std::to_string(lab->port()) + "/"});
    ASSERT_TRUE(load) << load.error().message;
  }
  auto j = diagnose(lab->pid());
  ASSERT_TRUE(j.contains("tcp")) << j.dump(1);
  EXPECT_EQ(j["tcp"]["tcp_syncookies"], 0) << "the namespace's, not ours";
  EXPECT_EQ(j["tcp"]["tcp_max_syn_backlog"], 256);
  const auto flood = findings(j, "connections", "SYN_RECV");
  if (flooded) {
    ASSERT_EQ(flood.size(), 1u) << j["findings"].dump(1) << j["tcp"].dump(1);
    // ~192: the queue of 256 keeps a quarter for peers proven earlier.
    EXPECT_NE(flood[0].find(" on " + net.ns_ip() + ":" + std::to_string(lab->port()) + " from "),
              std::string::npos)
        << flood[0];
    EXPECT_NE(flood[0].find(" client addresses (the most from one: 1 from 198.18."),
              std::string::npos)
        << flood[0];
    EXPECT_NE(flood[0].find("spoofed addresses"), std::string::npos) << flood[0];
    EXPECT_GE(j["tcp"]["states"]["SYN_RECV"].get<std::uint64_t>(), 150u) << j["tcp"].dump(1);
    EXPECT_NE(flood[0].find("net.ipv4.tcp_max_syn_backlog is 256, tcp_syncookies 0"),
              std::string::npos)
        << flood[0];
    EXPECT_NE(flood[0].find("sysctl -w net.ipv4.tcp_syncookies=1"), std::string::npos) << flood[0];
  } else {
    EXPECT_TRUE(flood.empty()) << flood[0];
  }
}

TEST(OsLimits, SynFloodFromSpoofedSources) {
  syn_flood(true);
}

TEST(OsLimits, HealthyListenerHasNoSynFlood) {
  syn_flood(false);
}

}  // namespace
}  // namespace chokepoint::os_limits_test
