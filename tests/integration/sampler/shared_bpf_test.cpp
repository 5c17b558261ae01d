// The task iterator and the socket-order tracer are loaded once per process however many targets
// use them (collect/bpf/shared_object.h), and each target still sees only its own.
//
// Task iterator: two iterators alive at once share one loaded program (one load, the same kernel
// program id), each reads its own lab's threads only (exactly /proc/PID/task's), a host iterator
// on the same program sees both labs; once all are gone the next one loads afresh. Two samplers
// alive at once (two targets of the agent) load it once between them.
// Socket order: two tracers share one load; each lab's server-side socket is stamped while its
// tracer watches the lab, a process no tracer watches is not, and when one tracer is destroyed
// its lab leaves the kernel's target set (a new connection to it is not stamped) while the other
// tracer's lab still is.
//
// Needs root and kernel BTF; this machine has both, so the test fails (not skips) when they load
// but do not share.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "collect/bpf/socket_order.h"
#include "collect/bpf/task_iterator.h"
#include "collect/sampler/sampler.h"
#include "support/files.h"
#include "support/lab_process.h"
#include "support/offcpu_support.h"
#include "util/scoped_fd.h"

namespace chokepoint::collect {
namespace {

using test_support::LabProcess;

// The inodes of the process's sockets (/proc/PID/fd links "socket:[N]").
std::set<std::uint64_t> socket_inodes(int pid) {
  std::set<std::uint64_t> out;
  for (const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    std::error_code ec;
    const std::string target = std::filesystem::read_symlink(e.path(), ec).string();
    if (!ec && target.rfind("socket:[", 0) == 0) out.insert(std::stoull(target.substr(8)));
  }
  return out;
}

// A kept-open loopback connection to the lab that sent one keep-alive request and read its answer.
struct Connection {
  util::ScopedFd fd;
  std::uint64_t client_inode = 0;  // the test process's end
  std::uint64_t server_inode = 0;  // the lab's end (0: not found)
};

Connection request(const LabProcess& lab) {
  Connection c;
  const std::set<std::uint64_t> before = socket_inodes(lab.pid());
  const std::set<std::uint64_t> mine_before = socket_inodes(getpid());
  c.fd = util::ScopedFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  timeval tv{5, 0};
  setsockopt(c.fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(lab.port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(c.fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return c;
  const std::string req = "GET /?k=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  if (::write(c.fd.get(), req.data(), req.size()) != static_cast<ssize_t>(req.size())) return c;
  char buf[4096];
  if (::read(c.fd.get(), buf, sizeof(buf)) <= 0) return c;
  for (auto inode : socket_inodes(getpid())) {
    if (mine_before.count(inode) == 0) c.client_inode = inode;
  }
  for (auto inode : socket_inodes(lab.pid())) {
    if (before.count(inode) == 0) c.server_inode = inode;
  }
  return c;
}

// n of T (TaskIterator or SocketOrderTracer) created at once: one load between them, one kernel
// program id. Empty on a failed create (the failure is recorded).
template <typename T>
std::vector<std::unique_ptr<T>> create_sharing(std::size_t n) {
  const std::uint64_t loads0 = T::loads();
  std::vector<std::unique_ptr<T>> out;
  for (std::size_t i = 0; i < n; ++i) {
    auto created = T::create();
    if (!created) {
      ADD_FAILURE() << created.error().message << "\n" << created.error().hint;
      return {};
    }
    out.push_back(std::move(*created));
  }
  EXPECT_EQ(T::loads(), loads0 + 1);
  EXPECT_NE(out[0]->program_id(), 0u);
  for (const auto& t : out) EXPECT_EQ(t->program_id(), out[0]->program_id());
  return out;
}

TEST(SharedBpf, TaskIteratorsShareOneProgramAndReadTheirOwnThreads) {
  if (std::string why = test_support::offcpu_unavailable(); !why.empty()) GTEST_SKIP() << why;
  auto lab1 = LabProcess::start({"--scenario", "none", "--port", "0", "--workers", "6"});
  ASSERT_TRUE(lab1) << lab1.error().message;
  auto lab2 = LabProcess::start({"--scenario", "none", "--port", "0", "--workers", "9"});
  ASSERT_TRUE(lab2) << lab2.error().message;

  std::uint32_t first_id = 0;
  {
    auto its = create_sharing<bpf::TaskIterator>(3);
    ASSERT_EQ(its.size(), 3u);
    auto& a = its[0];
    auto& b = its[1];
    auto& host = its[2];
    first_id = a->program_id();

    ASSERT_TRUE(a->watch(lab1->pid()));
    ASSERT_TRUE(b->watch(lab2->pid()));
    host->set_all_tasks(true);
    std::vector<bpf::TaskRecord> ra, rb, rh;
    ASSERT_TRUE(a->read(ra));
    ASSERT_TRUE(b->read(rb));
    ASSERT_TRUE(host->read(rh));
    std::set<int> ta, tb, th;
    for (const auto& r : ra) {
      EXPECT_EQ(r.tgid, lab1->pid()) << r.tid;
      ta.insert(r.tid);
    }
    for (const auto& r : rb) {
      EXPECT_EQ(r.tgid, lab2->pid()) << r.tid;
      tb.insert(r.tid);
    }
    for (const auto& r : rh) th.insert(r.tid);
    // The labs' pools are idle: their threads are the same at both listings.
    EXPECT_EQ(ta, test_support::thread_ids(lab1->pid()));
    EXPECT_EQ(tb, test_support::thread_ids(lab2->pid()));
    EXPECT_GT(ta.size(), 6u);
    EXPECT_GT(tb.size(), 9u);
    for (int tid : ta) EXPECT_EQ(th.count(tid), 1u) << tid;
    for (int tid : tb) EXPECT_EQ(th.count(tid), 1u) << tid;
    EXPECT_GT(th.size(), ta.size() + tb.size());
  }
  // All let go: the program was unloaded, and the next iterator loads a new one.
  {
    const std::uint64_t loads0 = bpf::TaskIterator::loads();
    auto c = bpf::TaskIterator::create();
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(bpf::TaskIterator::loads(), loads0 + 1);
    EXPECT_NE((*c)->program_id(), first_id);
  }
  // Two samplers alive at once, as two targets of the agent: one load between them.
  {
    const std::uint64_t loads0 = bpf::TaskIterator::loads();
    auto options = [](int pid) {
      sampler::SamplerOptions o;
      o.target.kind = sampler::TargetSpec::Kind::kPid;
      o.target.pid = pid;
      o.duration_ns = 1'000'000'000;
      o.interval_ns = 100'000'000;
      return o;
    };
    auto s1 = sampler::Sampler::create(options(lab1->pid()));
    ASSERT_TRUE(s1) << s1.error().message;
    auto s2 = sampler::Sampler::create(options(lab2->pid()));
    ASSERT_TRUE(s2) << s2.error().message;
    EXPECT_EQ(bpf::TaskIterator::loads(), loads0 + 1);
  }
}

TEST(SharedBpf, SocketOrderTracersShareOneLoadAndStampTheirOwnProcesses) {
  if (std::string why = test_support::offcpu_unavailable(); !why.empty()) GTEST_SKIP() << why;
  auto lab1 = LabProcess::start({"--scenario", "none", "--port", "0"});
  ASSERT_TRUE(lab1) << lab1.error().message;
  auto lab2 = LabProcess::start({"--scenario", "none", "--port", "0"});
  ASSERT_TRUE(lab2) << lab2.error().message;

  auto tracers = create_sharing<bpf::SocketOrderTracer>(3);
  ASSERT_EQ(tracers.size(), 3u);
  auto& a = tracers[0];
  auto& b = tracers[1];
  auto& d = tracers[2];
  ASSERT_TRUE(a->watch(lab1->pid()));
  ASSERT_TRUE(b->watch(lab2->pid()));
  ASSERT_TRUE(d->watch(lab2->pid()));
  // Both tracers watching one process: it stays watched until both let go.
  ASSERT_TRUE(b->watch(lab1->pid()));

  Connection c1 = request(*lab1);
  Connection c2 = request(*lab2);
  ASSERT_NE(c1.server_inode, 0u);
  ASSERT_NE(c2.server_inode, 0u);
  ASSERT_NE(c1.client_inode, 0u);
  // The lab read the request and then answered it: a receive, then a send.
  for (const auto& [tracer, inode] :
       {std::pair{a.get(), c1.server_inode}, std::pair{b.get(), c2.server_inode}}) {
    SCOPED_TRACE(inode);
    auto o = tracer->lookup(inode);
    ASSERT_TRUE(o.has_value());
    EXPECT_GE(o->recvs, 1u);
    EXPECT_GE(o->sends, 1u);
    EXPECT_TRUE(o->sent_after_recv());
  }
  // The test process is nobody's target: its end of the connection is not stamped.
  EXPECT_FALSE(a->lookup(c1.client_inode).has_value());

  // b (watching lab1 and lab2) is destroyed: lab1 stays in the kernel's set while a watches
  // it, lab2 while d does.
  b.reset();
  Connection c3 = request(*lab1);
  ASSERT_NE(c3.server_inode, 0u);
  EXPECT_TRUE(a->lookup(c3.server_inode).has_value()) << "a still watches lab1";
  a.reset();  // d still holds the programs: the same load, lab2 still watched
  Connection c4 = request(*lab1);
  Connection c5 = request(*lab2);
  ASSERT_NE(c4.server_inode, 0u);
  ASSERT_NE(c5.server_inode, 0u);
  EXPECT_FALSE(d->lookup(c4.server_inode).has_value()) << "lab1 is nobody's target now";
  EXPECT_TRUE(d->lookup(c5.server_inode).has_value());
}

}  // namespace
}  // namespace chokepoint::collect
