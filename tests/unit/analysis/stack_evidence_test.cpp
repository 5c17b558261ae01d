#include "analysis/stack_evidence.h"

#include <gtest/gtest.h>

#include "analysis/rules/rule.h"

namespace chokepoint::analysis {
namespace {

using profile::Frame;
using profile::FrameKind;
using profile::Profile;
using profile::Stack;

const char* kLibc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
const char* kLab = "/work/build/bin/chokepoint-lab";

Frame user(std::string name, std::string module = kLab, std::string file = "", int line = 0) {
  return Frame{std::move(name), FrameKind::kUser, std::move(module), std::move(file), line, ""};
}
Frame kernel(std::string name) {
  return Frame{std::move(name), FrameKind::kKernel, "[kernel]", "", 0, ""};
}
Frame root() {
  return Frame{"chokepoint-lab (42)", FrameKind::kProcess, "", "", 0, ""};
}
Frame marker() {
  return Frame{profile::kWokenByMarker, FrameKind::kProcess, "", "", 0, ""};
}

Stack mutex_wait(std::uint64_t ns, std::string where, std::vector<Frame> waker = {}) {
  Stack s;
  s.frames = {root(),
              user("start_thread", kLibc),
              user(std::move(where), kLab, "lab/scenarios.cpp", 150),
              user("pthread_mutex_lock", kLibc),
              user("__lll_lock_wait", kLibc),
              kernel("__x64_sys_futex"),
              kernel("futex_wait"),
              kernel("schedule")};
  if (!waker.empty()) {
    s.frames.push_back(marker());
    s.frames.insert(s.frames.end(), waker.begin(), waker.end());
  }
  s.value = ns;
  s.count = 1;
  return s;
}

Stack condvar_wait(std::uint64_t ns) {
  Stack s;
  s.frames = {root(),
              user("start_thread", kLibc),
              user("WorkerPool::run", kLab),
              user("std::condition_variable::wait", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"),
              user("pthread_cond_wait", kLibc),
              kernel("__x64_sys_futex"),
              kernel("futex_wait"),
              kernel("schedule")};
  s.value = ns;
  return s;
}

Stack fsync_wait(std::uint64_t ns) {
  Stack s;
  s.frames = {root(),
              user("lab_commit_record", kLab, "lab/scenarios.cpp", 190),
              user("fdatasync", kLibc),
              kernel("__x64_sys_fdatasync"),
              kernel("ext4_sync_file"),
              kernel("jbd2_log_wait_commit"),
              kernel("schedule")};
  s.value = ns;
  return s;
}

Stack poll_upstream(std::uint64_t ns) {
  Stack s;
  s.frames = {root(),
              user("lab_call_upstream", kLab),
              user("poll", kLibc),
              kernel("__x64_sys_poll"),
              kernel("do_sys_poll"),
              kernel("schedule")};
  s.value = ns;
  return s;
}

Stack page_fault(std::uint64_t ns) {
  Stack s;
  s.frames = {root(),
              user("lab_paging_read", kLab),
              kernel("exc_page_fault"),
              kernel("handle_mm_fault"),
              kernel("filemap_fault"),
              kernel("io_schedule")};
  s.value = ns;
  return s;
}

Profile off_cpu(std::vector<Stack> stacks) {
  Profile p;
  p.off_cpu = true;
  p.weight = profile::Weight::kNanoseconds;
  p.stacks = std::move(stacks);
  return p;
}

TEST(OffCpuResource, ClassifiesByKernelAndUserFrames) {
  EXPECT_EQ(offcpu_resource(mutex_wait(1, "LabStore::update")), Verdict::kLock);
  EXPECT_EQ(offcpu_resource(condvar_wait(1)), Verdict::kNone);  // a parked pool thread is idle
  EXPECT_EQ(offcpu_resource(fsync_wait(1)), Verdict::kDisk);
  EXPECT_EQ(offcpu_resource(poll_upstream(1)), Verdict::kNetwork);
  EXPECT_EQ(offcpu_resource(page_fault(1)),
            Verdict::kMemory);  // io_schedule under a fault is memory
  Stack sleep;
  sleep.frames = {root(), user("main"), kernel("__x64_sys_clock_nanosleep"), kernel("schedule")};
  EXPECT_EQ(offcpu_resource(sleep), Verdict::kNone);
  // A waker stack after the marker does not change what the blocked part waited on.
  EXPECT_EQ(offcpu_resource(mutex_wait(1, "f", {kernel("tcp_sendmsg"), user("g")})),
            Verdict::kLock);
}

TEST(OwnCodeFrame, SkipsSystemLibrariesAndKernel) {
  auto s = mutex_wait(1, "LabStore::update");
  const Frame* f = own_code_frame(s.frames);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->name, "LabStore::update");
  EXPECT_EQ(own_code_frame({user("write", kLibc), kernel("schedule")}), nullptr);
}

TEST(StackEvidence, LockNamesTheFunctionAndWhoReleasedIt) {
  Profile p = off_cpu({
      mutex_wait(780'000'000, "LabStore::update",
                 {user("LabStore::update", kLab), kernel("futex_wake")}),
      mutex_wait(220'000'000, "LabStore::get"),
      condvar_wait(5'000'000'000),  // idle pool threads: not lock time
      fsync_wait(1'000'000'000),
  });
  auto ev = stack_evidence(Verdict::kLock, nullptr, &p);
  ASSERT_EQ(ev.lines.size(), 2u);
  EXPECT_EQ(ev.lines[0],
            "78% of lock wait (0.78 thread-seconds in off-CPU stacks) is under LabStore::update "
            "(scenarios.cpp:150), "
            "released by LabStore::update");
  EXPECT_EQ(ev.lines[1].rfind("22% of lock wait", 0), 0u) << ev.lines[1];
  EXPECT_NEAR(ev.covered_s, 1.0, 1e-9);
}

TEST(StackEvidence, DiskNamesTheCallerOfFsync) {
  Profile p = off_cpu({fsync_wait(600'000'000), poll_upstream(100'000'000)});
  auto ev = stack_evidence(Verdict::kDisk, nullptr, &p);
  ASSERT_EQ(ev.lines.size(), 1u);
  EXPECT_NE(ev.lines[0].find("100% of disk wait"), std::string::npos) << ev.lines[0];
  EXPECT_NE(ev.lines[0].find("lab_commit_record (scenarios.cpp:190)"), std::string::npos);
}

TEST(StackEvidence, CpuNamesTheHottestOwnCode) {
  Profile p;
  p.frequency_hz = 99;
  Stack a;
  a.frames = {root(), user("main"), user("lab_cpu_hash_rounds")};
  a.value = 70;
  Stack b;
  b.frames = {root(), user("main"), user("lab_cpu_checksum"), user("memcpy", kLibc)};
  b.value = 30;
  p.stacks = {a, b};
  auto ev = stack_evidence(Verdict::kCpu, &p, nullptr);
  ASSERT_EQ(ev.lines.size(), 1u);
  EXPECT_EQ(ev.lines[0],
            "hottest code on CPU: lab_cpu_hash_rounds 70%, lab_cpu_checksum 30% (of 100 on-CPU "
            "samples at 99 Hz)");
}

TEST(StackEvidence, NamesReadAsCodeNotAsSignatures) {
  Stack s = mutex_wait(1'000, "x");
  s.frames[2] = user(
      "chokepoint::lab::(anonymous namespace)::LabStore::update(std::__cxx11::basic_string<char, "
      "std::char_traits<char>, std::allocator<char> > const&)",
      kLab, "/usr/include/c++/12/bits/std_mutex.h", 100);
  Profile p = off_cpu({s});
  auto ev = stack_evidence(Verdict::kLock, nullptr, &p);
  ASSERT_EQ(ev.lines.size(), 1u);
  EXPECT_EQ(ev.lines[0],
            "100% of lock wait (0.00 thread-seconds in off-CPU stacks) is under "
            "chokepoint::lab::LabStore::update");
}

TEST(StackEvidence, OneFunctionIsOneAnswerAcrossLinesAndClones) {
  Profile p = off_cpu({fsync_wait(930), fsync_wait(70)});
  p.stacks[1].frames[1].line = 189;
  p.stacks[1].frames[1].name = "lab_commit_record [clone .isra.0]";
  auto ev = stack_evidence(Verdict::kDisk, nullptr, &p);
  ASSERT_EQ(ev.lines.size(), 1u);
  EXPECT_EQ(ev.lines[0],
            "100% of disk wait (0.00 thread-seconds in off-CPU stacks) is under lab_commit_record "
            "(scenarios.cpp:190)");
}

TEST(StackEvidence, NothingWithoutProfilesOrMatchingStacks) {
  EXPECT_TRUE(stack_evidence(Verdict::kCpu, nullptr, nullptr).lines.empty());
  EXPECT_TRUE(stack_evidence(Verdict::kLock, nullptr, nullptr).lines.empty());
  Profile p = off_cpu({condvar_wait(1'000)});
  EXPECT_TRUE(stack_evidence(Verdict::kLock, nullptr, &p).lines.empty());
}

// On-CPU samples with thread frames: each thread's hottest own code, and the wait-for chain whose
// root is that thread on a CPU names it in its evidence.
Frame thread_frame(const char* name) {
  return Frame{name, FrameKind::kThread, "", "", 0, ""};
}

Stack on_cpu(const char* thread, std::vector<Frame> leaf, std::uint64_t samples) {
  Stack s;
  s.frames = {root(), thread_frame(thread), user("start_thread", kLibc)};
  s.frames.insert(s.frames.end(), leaf.begin(), leaf.end());
  s.value = samples;
  s.count = samples;
  return s;
}

Profile threaded_profile() {
  Profile p;
  p.frequency_hz = 199;
  p.stacks = {
      on_cpu("lab-stage (77)", {user("lab_cpu_hash_rounds(int)", kLab, "lab/cpu_work.cpp", 40)},
             90),
      on_cpu("lab-stage (77)", {user("Stage::loop", kLab), user("memcpy", kLibc)}, 10),
      on_cpu("lab-worker (78)", {user("Handler::handle", kLab)}, 5),
      on_cpu("[79]", {user("memcpy", kLibc)}, 3),  // no own code: left out
  };
  return p;
}

TEST(ThreadFunctions, EachThreadsHottestOwnCodeWithItsShare) {
  const auto f = thread_functions(threaded_profile());
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f.at(77).function, "lab_cpu_hash_rounds (cpu_work.cpp:40)");
  EXPECT_DOUBLE_EQ(f.at(77).share, 0.9);
  EXPECT_EQ(f.at(78).function, "Handler::handle");
  EXPECT_DOUBLE_EQ(f.at(78).share, 1.0);
}

TEST(ThreadFunctions, AChainsRootOnACpuIsNamedInItsEvidence) {
  model::WaitChain chain;
  chain.steps = {{42, 78, "lab-worker", 202, 0x10}};
  chain.root_pid = 42;
  chain.root_tid = 77;
  chain.root_comm = "lab-stage";
  chain.root_resource = model::Resource::kOnCpu;
  chain.root_share = 0.93;
  Diagnosis d;
  Bottleneck b;
  b.resource = Verdict::kCpu;
  b.kind = BottleneckKind::kSerial;
  b.chains = {chain};
  b.evidence = {"the target used 1.00 of 2 allowed cores",
                "thread 'lab-worker' (tid 78) waits for thread 'lab-stage' (tid 77), which is on "
                "CPU 93% of the time (8 threads waited for it, 60% of busy time; wait-for graph)"};
  d.bottlenecks = {b};
  name_chain_roots(d, thread_functions(threaded_profile()));
  const Bottleneck& named = d.bottlenecks.front();
  EXPECT_EQ(named.chains[0].root_function, "lab_cpu_hash_rounds (cpu_work.cpp:40)");
  EXPECT_EQ(named.evidence[0], "the target used 1.00 of 2 allowed cores");
  EXPECT_EQ(named.evidence[1],
            "thread 'lab-worker' (tid 78) waits for thread 'lab-stage' (tid 77), which is on CPU "
            "93% of the time, 90% of it in lab_cpu_hash_rounds (cpu_work.cpp:40) (8 threads "
            "waited for it, 60% of busy time; wait-for graph)");
  // A root off the CPU (in disk) keeps its chain as it was.
  d.bottlenecks[0].chains[0].root_function.clear();
  d.bottlenecks[0].chains[0].root_resource = model::Resource::kDisk;
  name_chain_roots(d, thread_functions(threaded_profile()));
  EXPECT_TRUE(d.bottlenecks[0].chains[0].root_function.empty());
}

TEST(ChainText, AGroupOfShortLivedThreadsIsOneOrMany) {
  model::WaitChain chain;
  chain.steps = {{42, 78, "lab-worker", 202, 0x10}};
  chain.root_pid = 42;
  chain.root_short_lived = 1;
  chain.root_resource = model::Resource::kOnCpu;
  chain.root_share = 1.0;
  EXPECT_EQ(rules::chain_text(chain),
            "thread 'lab-worker' (tid 78) waits for 1 short-lived thread (it started and ended "
            "between two samples), which was on a CPU or runnable (not blocked) 100% of its life");
  chain.root_short_lived = 56;
  chain.root_comm = "lab-joined";
  chain.root_resource = model::Resource::kDisk;
  chain.root_share = 0.4;
  EXPECT_EQ(rules::chain_text(chain),
            "thread 'lab-worker' (tid 78) waits for 56 short-lived threads like 'lab-joined' "
            "(each started and ended between two samples), which were blocked in disk 40% of "
            "their lives");
  // With their split, its other states of a tenth or more, largest first.
  const auto ms = std::int64_t{1'000'000};
  chain.root_resource = model::Resource::kIdle;
  chain.root_share = 0.43;
  chain.root_split[model::Resource::kIdle] = 43 * ms;
  chain.root_split[model::Resource::kOnCpu] = 41 * ms;
  chain.root_split[model::Resource::kLock] = 11 * ms;
  chain.root_split[model::Resource::kSleep] = 5 * ms;
  EXPECT_EQ(rules::chain_text(chain),
            "thread 'lab-worker' (tid 78) waits for 56 short-lived threads like 'lab-joined' "
            "(each started and ended between two samples), which were blocked in idle 43% of "
            "their lives (on a CPU or runnable 41%, blocked in lock 11%)");
}

}  // namespace
}  // namespace chokepoint::analysis
