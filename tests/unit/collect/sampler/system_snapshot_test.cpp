// take_system_snapshot (collect/sampler/system_snapshot.h): the network counters are read once
// per network namespace and shared by the targets in it, on a /proc root of the test's making
// (processes that share a namespace file) and on the real one (a namespace the test creates).
#include "collect/sampler/system_snapshot.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "collect/netlink/sock_diag.h"
#include "collect/procfs/proc_fs.h"
#include "support/files.h"
#include "support/loopback.h"
#include "support/netns.h"
#include "support/spawn.h"
#include "util/scoped_fd.h"

namespace chokepoint::collect::sampler {
namespace {

constexpr std::int64_t kLongReuseNs = 10'000'000'000;  // longer than any test's steps

TargetSpec pid_target(int pid) {
  TargetSpec t;
  t.kind = TargetSpec::Kind::kPid;
  t.pid = pid;
  return t;
}

void write_file(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

// /proc/PID/net of a process whose namespace counted `passive_opens` accepted connections.
void write_net_files(const std::string& root, int pid, int passive_opens) {
  const std::string dir = root + "/" + std::to_string(pid) + "/net/";
  write_file(dir + "snmp",
             "Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails "
             "EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\n"
             "Tcp: 1 200 120000 -1 16 " +
                 std::to_string(passive_opens) + " 0 2 0 1777 1396 7 0 3 0\n");
  write_file(dir + "netstat", "TcpExt: ListenOverflows ListenDrops\nTcpExt: 4 " +
                                  std::to_string(passive_opens) + "\n");
  write_file(dir + "sockstat", "sockets: used 13\nTCP: inuse 1 orphan 0 tw " +
                                   std::to_string(passive_opens) + " alloc 1 mem 195\n");
}

// Processes 100 and 200 share a namespace (their ns/net are one inode, as the kernel's are for
// processes in one namespace); 300 has its own. Each process's files hold its own numbers, so a
// snapshot shows whose files were read.
TEST(SystemSnapshot, TargetsInOneNetworkNamespaceReadItsCountersOnce) {
  test_support::TempDir root("chokepoint-netns");
  ASSERT_FALSE(root.path.empty());
  write_file(root.path + "/100/ns/net", "");
  std::filesystem::create_directories(root.path + "/200/ns");
  std::filesystem::create_hard_link(root.path + "/100/ns/net", root.path + "/200/ns/net");
  write_file(root.path + "/300/ns/net", "");
  write_net_files(root.path, 100, 100);
  write_net_files(root.path, 200, 200);
  write_net_files(root.path, 300, 300);
  const procfs::ProcFs proc(root.path);

  auto first = take_system_snapshot(proc, pid_target(100), kLongReuseNs);
  ASSERT_TRUE(first.has_net);
  EXPECT_EQ(first.passive_opens, 100u);
  EXPECT_EQ(first.tcp_retrans_segs, 7u);
  EXPECT_EQ(first.listen_overflows, 4u);
  EXPECT_EQ(first.listen_drops, 100u);
  EXPECT_EQ(first.tcp_time_wait, 100u);

  // 200's own files were not read: its namespace's reading is 100's.
  auto same_ns = take_system_snapshot(proc, pid_target(200), kLongReuseNs);
  ASSERT_TRUE(same_ns.has_net);
  EXPECT_EQ(same_ns.passive_opens, 100u);
  EXPECT_EQ(same_ns.listen_drops, 100u);
  EXPECT_EQ(same_ns.tcp_time_wait, 100u);

  auto other_ns = take_system_snapshot(proc, pid_target(300), kLongReuseNs);
  ASSERT_TRUE(other_ns.has_net);
  EXPECT_EQ(other_ns.passive_opens, 300u);
  EXPECT_EQ(other_ns.tcp_time_wait, 300u);

  // Without sharing, or once the reading is older than reuse_ns, the files are read.
  EXPECT_EQ(take_system_snapshot(proc, pid_target(200), 0).passive_opens, 200u);
  EXPECT_EQ(take_system_snapshot(proc, pid_target(200), 1).passive_opens, 200u);

  // A process whose namespace cannot be found is read, not shared (nor taken for another's).
  write_net_files(root.path, 400, 400);
  EXPECT_EQ(take_system_snapshot(proc, pid_target(400), kLongReuseNs).passive_opens, 400u);
}

// `count` connections to `listener` accepted and closed: the namespace's Tcp.PassiveOpens grows
// by count.
void accept_connections(int listener, const sockaddr_in& addr, int count) {
  for (int i = 0; i < count; ++i) {
    util::ScopedFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(client.valid());
    ASSERT_EQ(::connect(client.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
    util::ScopedFd accepted(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(accepted.valid());
  }
}

// On the real /proc: this test, the host and a process in a namespace the test made. The host and
// this process are one namespace, so a snapshot of either within reuse_ns of the other's takes its
// reading (the connections accepted between the two do not show); the other namespace's are its
// own (nothing was accepted in it).
TEST(SystemSnapshot, EachNetworkNamespaceHasItsOwnReading) {
  if (std::string why = test_support::netns_unavailable(); !why.empty()) GTEST_SKIP() << why;
  auto net = test_support::TestNetns::create();
  ASSERT_TRUE(net) << "cannot create a network namespace: " << net.error().message;
  // `ip netns exec` execs sleep in place: the pid is the sleeper's once it entered the namespace.
  std::vector<std::string> argv = {test_support::sbin_tool("ip")};
  for (auto& a : net->exec_args("sleep", {"30"})) argv.push_back(std::move(a));
  auto sleeper = test_support::spawn_process(argv);
  ASSERT_TRUE(sleeper) << sleeper.error().message;
  struct Reap {
    pid_t pid;
    ~Reap() {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reap{*sleeper};
  const auto ours = netlink::netns_inode_of(getpid());
  ASSERT_TRUE(ours) << ours.error().message;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    auto theirs = netlink::netns_inode_of(*sleeper);
    ASSERT_TRUE(theirs) << theirs.error().message;
    if (*theirs != *ours) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "ip netns exec did not enter it";
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  sockaddr_in addr{};
  util::ScopedFd listener = test_support::listen_on_loopback(16, &addr);
  ASSERT_TRUE(listener.valid());
  accept_connections(listener.get(), addr, 3);

  const procfs::ProcFs proc;
  auto host = take_system_snapshot(proc, TargetSpec{}, kLongReuseNs);
  ASSERT_TRUE(host.has_net);
  ASSERT_TRUE(host.passive_opens.has_value());
  EXPECT_GE(*host.passive_opens, 3u);

  accept_connections(listener.get(), addr, 5);
  auto self_shared = take_system_snapshot(proc, pid_target(getpid()), kLongReuseNs);
  ASSERT_TRUE(self_shared.has_net);
  EXPECT_EQ(self_shared.passive_opens, host.passive_opens) << "the host's reading, not a new one";
  auto self_own = take_system_snapshot(proc, pid_target(getpid()), 0);
  ASSERT_TRUE(self_own.passive_opens.has_value());
  EXPECT_GE(*self_own.passive_opens, *host.passive_opens + 5);

  auto other = take_system_snapshot(proc, pid_target(*sleeper), kLongReuseNs);
  ASSERT_TRUE(other.has_net);
  EXPECT_EQ(other.passive_opens, 0u) << "a new namespace accepted nothing";
  EXPECT_EQ(other.tcp_retrans_segs, 0u);
}

}  // namespace
}  // namespace chokepoint::collect::sampler
