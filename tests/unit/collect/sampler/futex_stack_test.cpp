// The stack scan that tells rwlock and semaphore waits from parked threads, on stacks recorded
// from real threads (glibc 2.36, Debian 12): the first 16 words above the sp that
// /proc/TID/syscall showed for a thread blocked in each call, with libc's load address and the
// .dynsym functions those words fall in. Stale return addresses from dead frames (_IO_file_sync,
// _IO_do_write) are in them, as they are on real stacks.
#include "collect/sampler/futex_stack.h"

#include <gtest/gtest.h>

#include <sys/syscall.h>
#include <unistd.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <fstream>
#include <optional>
#include <shared_mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "collect/procfs/proc_fs.h"
#include "model/wait.h"
#include "symbolize/parsers.h"
#include "util/clock.h"

namespace chokepoint::collect::sampler {
namespace {

constexpr std::uint64_t kLibcBase = 0x7f9d74e1e000;
constexpr std::uint64_t kTextStart = 0x7f9d74e44000, kTextEnd = 0x7f9d74f9a000;

struct Sym {
  std::uint64_t start, size;
  const char* name;
};
// As readelf --dyn-syms names them; the internal futex helpers have no entry (stripped).
const Sym kSyms[] = {{0x80120, 225, "_IO_file_sync@@GLIBC_2.2.5"},
                     {0x81fc0, 38, "_IO_do_write@@GLIBC_2.2.5"},
                     {0x883f0, 688, "pthread_cond_wait@@GLIBC_2.3.2"},
                     {0x88990, 745, "pthread_cond_clockwait@GLIBC_2.30"},
                     {0x8ab80, 15, "pthread_join@@GLIBC_2.34"},
                     {0x8e7b0, 472, "__pthread_rwlock_rdlock@GLIBC_2.2.5"},
                     {0x8f260, 934, "__pthread_rwlock_wrlock@GLIBC_2.2.5"},
                     {0xd3d50, 106, "sleep@@GLIBC_2.2.5"},
                     {0xd3e40, 49, "nanosleep@@GLIBC_2.2.5"}};

int lookups = 0;
std::optional<std::string> recorded_libc(std::uint64_t address) {
  if (address < kTextStart || address >= kTextEnd) return std::nullopt;
  ++lookups;
  const std::uint64_t vaddr = address - kLibcBase;
  for (const auto& s : kSyms) {
    if (vaddr >= s.start && vaddr < s.start + s.size) return std::string(s.name);
  }
  return std::nullopt;
}

std::optional<std::string> scan(const std::vector<std::uint64_t>& words, int max_lookups = 8) {
  return find_futex_waiter(words, recorded_libc, max_lookups);
}

TEST(FindFutexWaiter, RecordedRwlockWaitersNameTheirFunction) {
  // pthread_rwlock_rdlock on a write-locked rwlock: "202 0x55cab9ed6248 0x189 0x3".
  EXPECT_EQ(scan({0x0, 0x0, 0x0, 0x0, 0x0, 0x55cab9ed6240, 0x0, 0x7f9d74eac956, 0x55cad6259eb0, 0x0,
                  0xffffffffffffff60, 0x7f9d750d44a3, 0x0, 0x7f9d74d3d6c0, 0x0, 0x7f9d74ea71f5}),
            "pthread_rwlock_rdlock");
  // pthread_rwlock_wrlock, with a stale _IO_file_sync return address nearer the sp.
  EXPECT_EQ(scan({0x7f9d74ff2760, 0x7f9d74e9e1c8, 0x0, 0x0, 0x0, 0x55cab9ed6240, 0x55cab9ed624c,
                  0x7f9d74ead38c, 0x0, 0x55cad625a000, 0x0, 0xffffffffffffff60, 0x0, 0x7ffe634061c0,
                  0x7f9d6f7ff000, 0x7f9d750d44a3}),
            "pthread_rwlock_wrlock");
  // std::shared_mutex::lock (libstdc++ over pthread_rwlock_t), two stale libc words first.
  EXPECT_EQ(scan({0x7f9d6effe000, 0x7f9d74e9ffd9, 0x7f9d74ff2760, 0x7f9d74e9e1c8, 0x0,
                  0x55cab9ed6200, 0x55cab9ed620c, 0x7f9d74ead38c, 0x7f9d74fee5e0, 0x55cad625a150,
                  0x0, 0xffffffffffffff60, 0x0, 0x7ffe634061c0, 0x7f9d6effe000, 0x55cab9ed2e80}),
            "pthread_rwlock_wrlock");
  // std::shared_mutex::lock_shared.
  EXPECT_EQ(scan({0x0, 0x0, 0x0, 0x7f9d74ff2760, 0x7f9d74fee5e0, 0x55cab9ed6200, 0x0,
                  0x7f9d74eac956, 0x55cab9ed6200, 0x0, 0xffffffffffffff60, 0x55cab9ed2ee8,
                  0x55cad625a2a0, 0x7f9d750d44a3, 0x0, 0x7f9d6effd6c0}),
            "pthread_rwlock_rdlock");
}

TEST(FindFutexWaiter, RecordedCondvarWaitersAreConditionVariables) {
  // std::condition_variable::wait: pthread_cond_wait.
  EXPECT_EQ(scan({0x0, 0x189, 0x55cab9ed6188, 0x0, 0x0, 0x55cab9ed6160, 0x0, 0x7f9d74ea65d8, 0x0,
                  0x0, 0x0, 0x0, 0x0, 0x7f9d6d7f9e10, 0x7f9d74ea6360, 0x7f9d6d7f9e30}),
            "pthread_cond_wait");
  // wait_for: pthread_cond_clockwait.
  EXPECT_EQ(
      scan({0x0, 0x89, 0x55cab9ed6188, 0x7f9d6cff8e90, 0x0, 0x55cab9ed6160, 0x0, 0x7f9d74ea6baf,
            0x2, 0x0, 0x1, 0x7f9d6cff8e90, 0x1, 0x7f9d6cff8e00, 0x7f9d74ea6360, 0x7f9d6cff8e20}),
      "pthread_cond_clockwait");
}

TEST(FindFutexWaiter, TailCalledEntryPointsLeaveNothingToName) {
  // glibc 2.36's sem_wait and pthread_join jump to internal functions, so no word on the stack is
  // inside them; the answer is unknown (the wait stays idle), never a guess.
  lookups = 0;
  EXPECT_EQ(scan({0x0, 0x189, 0x55cab9ed61e0, 0x0, 0x0, 0x55cab9ed61e0, 0x0, 0x7f9d74eaed90,
                  0x7f9d74eaece0, 0x55cab9ed61e0, 0x0, 0x0, 0x0, 0x7d924390c52ce300, 0x55cad625a3f0,
                  0x0}),
            std::nullopt);
  EXPECT_EQ(lookups, 2);  // only the two words inside libc's text were named
  EXPECT_EQ(scan({0x0, 0x109, 0x7f9d6bff7990, 0x0, 0x0, 0x7f9d6bff76c0, 0x0, 0x7f9d74ea8ce3, 0x0,
                  0x0, 0x7f9d74ea8b90, 0x7f9d6bff7ce0, 0x0, 0x0, 0x0, 0x7d924390c52ce300}),
            std::nullopt);
}

TEST(FindFutexWaiter, LookupsAreBounded) {
  // With room for one lookup, the stale _IO_file_sync word uses it up.
  lookups = 0;
  EXPECT_EQ(scan({0x7f9d74ff2760, 0x7f9d74e9e1c8, 0x0, 0x0, 0x0, 0x55cab9ed6240, 0x55cab9ed624c,
                  0x7f9d74ead38c},
                 1),
            std::nullopt);
  EXPECT_EQ(lookups, 1);
  EXPECT_EQ(scan({}), std::nullopt);
}

TEST(LibcCodeRanges, OnlyGlibcExecutableMappings) {
  const auto maps = symbolize::parse_maps(
      "55cab9ed1000-55cab9ed3000 r-xp 00001000 fd:01 100 /tmp/probe\n"
      "7f9d74e1e000-7f9d74e44000 r--p 00000000 fd:01 200 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
      "7f9d74e44000-7f9d74f9a000 r-xp 00026000 fd:01 200 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
      "7f9d75000000-7f9d75001000 r-xp 00001000 fd:01 300 /usr/lib/x86_64-linux-gnu/libcap.so.2\n"
      "7f9d75100000-7f9d75110000 r-xp 00001000 fd:01 400 /lib/x86_64-linux-gnu/libpthread-2.31.so\n"
      "7ffe63400000-7ffe63421000 rw-p 00000000 00:00 0 [stack]\n");
  const auto ranges = libc_code_ranges(maps);
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0].start, kTextStart);
  EXPECT_EQ(ranges[0].end, kTextEnd);
  EXPECT_EQ(ranges[1].start, 0x7f9d75100000u);
}

// This process's own libc: the table places pthread_rwlock_wrlock and sem_wait where the dynamic
// linker put them (the address of a libc function taken here is libc's own).
TEST(LoadWaitFunctions, PlacesTheKnownFunctionsOfTheMappedLibc) {
  std::ifstream in("/proc/self/maps");
  std::stringstream text;
  text << in.rdbuf();
  const auto ranges = libc_code_ranges(symbolize::parse_maps(text.str()));
  ASSERT_FALSE(ranges.empty());
  std::vector<WaitFunction> all;
  for (const auto& r : ranges) {
    const int fd = ::open(r.path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << r.path;
    auto w = load_wait_functions(fd, r);
    all.insert(all.end(), w.begin(), w.end());
    ::close(fd);
  }
  auto find = [&](const std::string& name) -> std::uint64_t {
    for (const auto& w : all) {
      if (w.name == name) return w.start;
    }
    return 0;
  };
  // libc's own definitions, from its handle: under ASan, &sem_wait is the sanitizer's interceptor.
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(libc, nullptr) << dlerror();
  auto in_libc = [&](const char* name) {
    return reinterpret_cast<std::uint64_t>(dlsym(libc, name));
  };
  EXPECT_EQ(find("pthread_rwlock_wrlock"), in_libc("pthread_rwlock_wrlock"));
  EXPECT_EQ(find("sem_wait"), in_libc("sem_wait"));
  EXPECT_EQ(find("pthread_cond_wait"), in_libc("pthread_cond_wait"));
  dlclose(libc);
  // Only known waits are kept: a few dozen entries, not libc's thousands.
  EXPECT_LT(all.size(), 64u);
  for (const auto& w : all) EXPECT_TRUE(model::futex_waiter_function(w.name)) << w.name;
}

// Bytes from objdump of this test binary: "aea8: e8 f3 f7 ff ff  call a6a0 <_ZdlPvm@plt>" and
// "a030: ff 25 ca 0f 0a 00  jmp *0xa0fca(%rip)  # ab000 <__printf_chk@GLIBC_2.3.4>".
TEST(DecodeCall, CallRel32AndCallThroughTheGot) {
  const std::array<std::uint8_t, 8> rel = {0x48, 0x89, 0xc7, 0xe8, 0xf3, 0xf7, 0xff, 0xff};
  auto call = decode_call_before(0xaead, rel);
  ASSERT_TRUE(call);
  EXPECT_EQ(call->kind, CallTarget::Kind::kDirect);
  EXPECT_EQ(call->address, 0xa6a0u);
  // -fno-plt: "ff 15 disp32", call *disp(%rip); the pointer is at ret + disp.
  const std::array<std::uint8_t, 8> got = {0x90, 0x90, 0xff, 0x15, 0x10, 0x00, 0x00, 0x00};
  call = decode_call_before(0x1000, got);
  ASSERT_TRUE(call);
  EXPECT_EQ(call->kind, CallTarget::Kind::kThroughPointer);
  EXPECT_EQ(call->address, 0x1010u);
  // Neither: a return address after a register call (ff d0) or a stale data word.
  const std::array<std::uint8_t, 8> other = {0, 0, 0, 0, 0, 0, 0xff, 0xd0};
  EXPECT_FALSE(decode_call_before(0x2000, other));
}

TEST(DecodeCall, PltStubs) {
  // Lazy-binding .plt entry: jmp *GOT; push; jmp.
  const std::array<std::uint8_t, 16> lazy = {0xff, 0x25, 0xca, 0x0f, 0x0a, 0x00, 0x68, 0,
                                             0,    0,    0,    0xe9, 0xe0, 0xff, 0xff, 0xff};
  EXPECT_EQ(decode_plt_stub(0xa030, lazy), std::optional<std::uint64_t>(0xab000));
  // .plt.sec with IBT: endbr64; bnd jmp *GOT.
  const std::array<std::uint8_t, 16> ibt = {0xf3, 0x0f, 0x1e, 0xfa, 0xf2, 0xff, 0x25, 0x00,
                                            0x01, 0x00, 0x00, 0x0f, 0x1f, 0x44, 0x00, 0x00};
  EXPECT_EQ(decode_plt_stub(0x5000, ibt), std::optional<std::uint64_t>(0x5000 + 11 + 0x100));
  const std::array<std::uint8_t, 16> code = {0x55, 0x48, 0x89, 0xe5};  // push %rbp; mov ...
  EXPECT_EQ(decode_plt_stub(0x6000, code), std::nullopt);
}

// The whole path on a live thread of this process: a writer queued on a std::shared_mutex.
// Thread `tid` of this process once it sleeps in futex ("202 addr op ..." in its syscall file),
// polled for up to a second; nullopt if it never does.
std::optional<procfs::SyscallState> wait_until_in_futex(int tid) {
  procfs::ProcFs proc("/proc");
  for (int i = 0; i < 500; ++i) {
    auto s = proc.read_task_syscall(getpid(), tid);
    if (s && s->kind == procfs::SyscallState::Kind::kInSyscall && s->nr == SYS_futex) return *s;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return std::nullopt;
}

TEST(FutexStackScanner, NamesALiveWriterQueuedOnASharedMutex) {
  std::shared_mutex mu;
  mu.lock();
  std::atomic<long> tid{0};
  std::thread writer([&] {
    tid = syscall(SYS_gettid);
    mu.lock();
    mu.unlock();
  });
  while (tid == 0) std::this_thread::yield();
  std::optional<procfs::SyscallState> sc = wait_until_in_futex(static_cast<int>(tid.load()));
  ASSERT_TRUE(sc) << "the writer never blocked in futex";
  FutexStackScanner scanner("/proc");
  const auto now = util::monotonic_ns();
  const std::string caller = scanner.caller(getpid(), sc->args[0], sc->sp, sc->pc, now);
  mu.unlock();
  writer.join();
  // The scanner reads this test's own process: a problem there is a failure, not a missing feature.
  ASSERT_EQ(scanner.problem(), "");
  EXPECT_EQ(caller, "pthread_rwlock_wrlock");
  EXPECT_EQ(model::classify_wait([&] {
              model::WaitObservation o;
              o.state = 'S';
              o.where = model::SyscallWhere::kInSyscall;
              o.syscall_nr = SYS_futex;
              o.args = sc->args;
              o.futex_caller = caller;
              return o;
            }())
                .resource,
            model::Resource::kLock);
  // The same futex and pc again: the cache answers, no second scan.
  EXPECT_EQ(scanner.caller(getpid(), sc->args[0], sc->sp, sc->pc, now + 1), caller);
  EXPECT_EQ(scanner.stats().scans, 1u);
  EXPECT_EQ(scanner.stats().cache_hits, 1u);
}

// glibc 2.36's sem_wait jumps into an unnamed function, so only the call site in this test names
// it: call rel32 -> sem_wait@plt -> jmp *GOT -> libc's sem_wait.
TEST(FutexStackScanner, NamesALiveSemWaitThroughItsCallSite) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "under ASan the call site calls the sanitizer's sem_wait interceptor (libasan), "
                  "not libc's, so there is no libc call to name";
#endif
  sem_t sem;
  ASSERT_EQ(sem_init(&sem, 0, 0), 0);
  std::atomic<long> tid{0};
  std::thread waiter([&] {
    tid = syscall(SYS_gettid);
    while (sem_wait(&sem) != 0) {
    }
  });
  while (tid == 0) std::this_thread::yield();
  std::optional<procfs::SyscallState> sc = wait_until_in_futex(static_cast<int>(tid.load()));
  FutexStackScanner scanner("/proc");
  std::string caller;
  if (sc) caller = scanner.caller(getpid(), sc->args[0], sc->sp, sc->pc, util::monotonic_ns());
  sem_post(&sem);
  waiter.join();
  sem_destroy(&sem);
  ASSERT_TRUE(sc) << "the waiter never blocked in futex";
  // The scanner reads this test's own process: a problem there is a failure, not a missing feature.
  ASSERT_EQ(scanner.problem(), "");
  EXPECT_EQ(caller, "sem_wait");
}

}  // namespace
}  // namespace chokepoint::collect::sampler
