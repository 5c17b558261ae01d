// The DWARF unwinder: perf's register numbering mapped to DWARF's, and real unwinds of this test's
// own stack (registers from getcontext, the stack copied as perf would copy it), symbolized.
#include "symbolize/dwarf_unwind.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "symbolize/symbolizer.h"

namespace chokepoint::symbolize {
namespace {

constexpr std::uint64_t kMask = 0x1ffull | (0xffull << 16);  // ax..ip, r8..r15

TEST(X86_64DwarfRegisters, MapsPerfNumberingToDwarfNumbering) {
  // Values in ascending bit order: ax bx cx dx si di bp sp ip r8 .. r15.
  std::vector<std::uint64_t> v = {0xa0, 0xb0, 0xc0, 0xd0, 0x51, 0xd1, 0xb9, 0x59, 0x19,
                                  8,    9,    10,   11,   12,   13,   14,   15};
  auto r = x86_64_dwarf_registers(kMask, v);
  ASSERT_TRUE(r);
  const X86_64DwarfRegisters want = {0xa0,                             // 0 rax
                                     0xd0,                             // 1 rdx
                                     0xc0,                             // 2 rcx
                                     0xb0,                             // 3 rbx
                                     0x51,                             // 4 rsi
                                     0xd1,                             // 5 rdi
                                     0xb9,                             // 6 rbp
                                     0x59,                             // 7 rsp
                                     8,    9, 10, 11, 12, 13, 14, 15,  // r8..r15
                                     0x19};                            // 16: the pc (ip)
  EXPECT_EQ(*r, want);
}

TEST(X86_64DwarfRegisters, ExtraRegistersInTheMaskAreSkipped) {
  // flags (bit 9) and cs (bit 10) sit between ip and r8.
  const std::uint64_t mask = kMask | (1ull << 9) | (1ull << 10);
  std::vector<std::uint64_t> v(19);
  std::iota(v.begin(), v.end(), 0);
  auto r = x86_64_dwarf_registers(mask, v);
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)[16], 8u);   // ip: bit 8, index 8
  EXPECT_EQ((*r)[8], 11u);   // r8: bit 16, after 9 lower bits plus flags and cs
  EXPECT_EQ((*r)[15], 18u);  // r15
}

TEST(X86_64DwarfRegisters, MissingRegistersOrValuesAreRefused) {
  std::vector<std::uint64_t> v(17);
  EXPECT_FALSE(x86_64_dwarf_registers(kMask & ~(1ull << 6), std::span(v).first(16)));  // no bp
  EXPECT_FALSE(x86_64_dwarf_registers(kMask, std::span(v).first(16)));  // a value short
  EXPECT_FALSE(x86_64_dwarf_registers(0, {}));
}

// The state of the thread right after getcontext() returned in capture_here(), as perf would
// sample it: registers in perf order, and `copy_bytes` of stack from the stack pointer up.
struct Captured {
  std::size_t copy_bytes = 0;  // asked for (in a struct: getcontext would clobber an argument)
  std::vector<std::uint64_t> regs;
  std::vector<std::uint8_t> stack;
};

// Copies raw stack bytes as the kernel does. The stack holds AddressSanitizer's redzones in
// sanitizer builds, which the kernel's copy reads too: not a bug here, so not instrumented, and
// byte by byte through a volatile pointer so the loop is not turned into an intercepted memcpy.
__attribute__((no_sanitize_address)) void copy_stack(const std::uint8_t* from, std::size_t n,
                                                     std::vector<std::uint8_t>& to) {
  to.resize(n);
  const volatile std::uint8_t* src = from;
  for (std::size_t i = 0; i < n; ++i) to[i] = src[i];
}

// noinline and called through a chain, so there is a known stack to find.
[[gnu::noinline]] void capture_here(Captured& out) {
  ucontext_t uc;
  getcontext(&uc);
  const auto& g = uc.uc_mcontext.gregs;
  auto u = [&g](int r) { return static_cast<std::uint64_t>(g[r]); };
  out.regs = {u(REG_RAX), u(REG_RBX), u(REG_RCX), u(REG_RDX), u(REG_RSI), u(REG_RDI),
              u(REG_RBP), u(REG_RSP), u(REG_RIP), u(REG_R8),  u(REG_R9),  u(REG_R10),
              u(REG_R11), u(REG_R12), u(REG_R13), u(REG_R14), u(REG_R15)};
  // This frame is above the saved stack pointer and stays intact while we copy. Like the kernel,
  // copy no further than the top of the stack.
  const auto* sp = reinterpret_cast<const std::uint8_t*>(u(REG_RSP));  // NOLINT
  std::size_t n = out.copy_bytes;
  pthread_attr_t attr;
  void* stack_low = nullptr;
  std::size_t stack_size = 0;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstack(&attr, &stack_low, &stack_size);
    pthread_attr_destroy(&attr);
    const auto* top = static_cast<const std::uint8_t*>(stack_low) + stack_size;
    n = std::min<std::size_t>(n, static_cast<std::size_t>(top - sp));
  }
  copy_stack(sp, n, out.stack);
  asm volatile("" ::: "memory");
}
[[gnu::noinline]] void unwind_test_middle(Captured& out, std::size_t n) {
  out.copy_bytes = n;
  capture_here(out);
  asm volatile("" ::: "memory");  // not a tail call
}
[[gnu::noinline]] void unwind_test_outer(Captured& out, std::size_t n) {
  unwind_test_middle(out, n);
  asm volatile("" ::: "memory");
}

std::vector<std::string> names(const std::vector<std::uint64_t>& ips) {
  auto sym = Symbolizer::create();
  EXPECT_TRUE(sym);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < ips.size(); ++i) {
    out.push_back((*sym)->user(getpid(), i == 0 ? ips[i] : ips[i] - 1).name);
  }
  return out;
}

UserState state_of(const Captured& c) {
  return {.abi = 2,
          .regs_mask = kMask,
          .regs = c.regs,
          .stack = c.stack,
          .stack_requested_bytes = c.stack.size()};
}

TEST(DwarfUnwinder, UnwindsThisThreadsStackToItsOutermostFrame) {
  auto u = DwarfUnwinder::create();
  ASSERT_TRUE(u) << u.error().message;
  Captured c;
  unwind_test_outer(c, 16384);
  std::vector<std::uint64_t> ips;
  const int tid = static_cast<int>(syscall(SYS_gettid));
  auto stop = (*u)->unwind(getpid(), tid, state_of(c), ips);
  auto n = names(ips);
  std::string all;
  for (const auto& s : n) all += s + "\n";
  ASSERT_GE(n.size(), 4u) << all;
  EXPECT_NE(n[0].find("capture_here"), std::string::npos) << all;
  EXPECT_NE(n[1].find("unwind_test_middle"), std::string::npos) << all;
  EXPECT_NE(n[2].find("unwind_test_outer"), std::string::npos) << all;
  EXPECT_NE(all.find("\nmain\n"), std::string::npos) << all;
  EXPECT_EQ(stop, UnwindStop::kComplete) << all;
  EXPECT_EQ((*u)->stats().unwinds, 1u);
  EXPECT_EQ((*u)->stats().complete, 1u);
  EXPECT_EQ((*u)->stats().truncated(), 0u);
}

TEST(DwarfUnwinder, ATooSmallCopyStopsEarlyAndSaysWhy) {
  auto u = DwarfUnwinder::create();
  ASSERT_TRUE(u);
  Captured c;
  unwind_test_outer(c, 16);  // not even capture_here's return address
  std::vector<std::uint64_t> ips;
  auto stop = (*u)->unwind(getpid(), static_cast<int>(syscall(SYS_gettid)), state_of(c), ips);
  EXPECT_EQ(stop, UnwindStop::kStackCopyTooSmall);
  ASSERT_GE(ips.size(), 1u);  // the frames found are kept: at least the sampled pc
  EXPECT_EQ(ips[0], c.regs[8]);
  EXPECT_EQ((*u)->stats().stack_copy_too_small, 1u);
  EXPECT_EQ((*u)->stats().truncated(), 1u);
  bool noted = false;
  for (const auto& n : (*u)->notes()) noted |= n.find("--call-graph dwarf,") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST(DwarfUnwinder, NoUserStateKeepsNothingButThePc) {
  auto u = DwarfUnwinder::create();
  ASSERT_TRUE(u);
  Captured c;
  unwind_test_outer(c, 64);
  std::vector<std::uint64_t> ips;
  UserState kernel_thread = state_of(c);
  kernel_thread.abi = 0;
  EXPECT_EQ((*u)->unwind(getpid(), getpid(), kernel_thread, ips), UnwindStop::kNoUserState);
  EXPECT_TRUE(ips.empty());
  UserState no_stack = state_of(c);
  no_stack.stack = {};
  EXPECT_EQ((*u)->unwind(getpid(), getpid(), no_stack, ips), UnwindStop::kNoUserState);
  EXPECT_EQ(ips, std::vector<std::uint64_t>{c.regs[8]});
  EXPECT_EQ((*u)->stats().no_user_state, 2u);
  EXPECT_EQ((*u)->stats().truncated(), 0u);
}

TEST(DwarfUnwinder, AProcessThatIsGoneIsCountedNotFatal) {
  auto u = DwarfUnwinder::create();
  ASSERT_TRUE(u);
  Captured c;
  unwind_test_outer(c, 256);
  std::vector<std::uint64_t> ips;
  // pid_max is at most 2^22: this pid cannot exist.
  EXPECT_EQ((*u)->unwind(1 << 23, 1 << 23, state_of(c), ips), UnwindStop::kProcessUnknown);
  EXPECT_EQ(ips, std::vector<std::uint64_t>{c.regs[8]});
}

}  // namespace
}  // namespace chokepoint::symbolize
