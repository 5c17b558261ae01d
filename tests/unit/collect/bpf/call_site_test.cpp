// call_leads_to (collect/bpf/call_site.h) on code laid out in a fake address space: which words
// above a blocked thread's stack pointer are proven to be the return address of the call that led
// to the leaf it blocks in, and which are rejected (a stale return address after a call to another
// function, a call through a register, memory that cannot be read). The tracers' use of it on a
// real reused stack is OffCpuTracer.ReaderOnAReusedStackIsNotGivenAStaleCaller.

#include "collect/bpf/call_site.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <vector>

namespace chokepoint::collect::bpf {
namespace {

// No symbols: the proofs fall back to code spans.
const FunctionAt kNoSymbols = [](std::uint64_t) { return std::nullopt; };

// Bytes at addresses; a read succeeds only inside one region, as process_vm_readv does.
class FakeMemory {
 public:
  void put(std::uint64_t address, std::vector<std::uint8_t> bytes) {
    regions_[address] = std::move(bytes);
  }
  void put_word(std::uint64_t address, std::uint64_t word) {
    std::vector<std::uint8_t> b(8);
    std::memcpy(b.data(), &word, 8);
    put(address, b);
  }
  // A PLT stub at `stub` (endbr64; bnd jmp *slot(%rip)) and its GOT slot, holding `function`.
  void put_plt(std::uint64_t stub, std::uint64_t slot, std::uint64_t function) {
    const auto disp = static_cast<std::int32_t>(slot - (stub + 11));
    std::vector<std::uint8_t> code = {0xf3, 0x0f, 0x1e, 0xfa, 0xf2, 0xff, 0x25, 0,
                                      0,    0,    0,    0x0f, 0x1f, 0x44, 0x00, 0x00};
    std::memcpy(&code[7], &disp, 4);
    put(stub, code);
    put_word(slot, function);
  }
  // A function at `function`, `bytes` long, whose one branch (op e8 call or e9 jmp, rel32) at
  // +0x10 goes to `target`; nops elsewhere.
  void put_branch(std::uint64_t function, std::size_t bytes, std::uint8_t op,
                  std::uint64_t target) {
    std::vector<std::uint8_t> code(bytes, 0x90);
    const auto rel = static_cast<std::int32_t>(target - (function + 0x10 + 5));
    code[0x10] = op;
    std::memcpy(&code[0x11], &rel, 4);
    put(function, code);
  }
  // `call rel32` (e8) ending at `ret`, calling `target`.
  void put_call(std::uint64_t ret, std::uint64_t target) {
    const auto rel = static_cast<std::int32_t>(static_cast<std::int64_t>(target - ret));
    std::vector<std::uint8_t> b = {0x48, 0x89, 0xc7, 0xe8, 0, 0, 0, 0};
    std::memcpy(&b[4], &rel, 4);
    put(ret - 8, b);
  }
  ReadMemory reader() const {
    return [this](std::uint64_t address, void* out, std::size_t size) {
      auto it = regions_.upper_bound(address);
      if (it == regions_.begin()) return false;
      --it;
      if (address + size > it->first + it->second.size()) return false;
      std::memcpy(out, it->second.data() + (address - it->first), size);
      return true;
    };
  }

 private:
  std::map<std::uint64_t, std::vector<std::uint8_t>> regions_;
};

// A library's leaf (read) at 0x7000'0000, blocked 0x4c bytes in; the service's text at 0x1000.
constexpr std::uint64_t kRead = 0x7000'0000, kBlockedIp = kRead + 0x4c;
constexpr std::uint64_t kOther = 0x7000'8000;  // another library function (nanosleep)

TEST(CallSite, DirectCallIntoTheLeafLeadsToIt) {
  FakeMemory m;
  m.put_call(0x1234, kRead);
  EXPECT_TRUE(call_leads_to(0x1234, kBlockedIp, m.reader(), kNoSymbols));
  EXPECT_EQ(called_function(0x1234, m.reader()), std::optional<std::uint64_t>(kRead));
}

// The service calls read@plt; the stub jumps through the GOT slot the dynamic linker filled.
TEST(CallSite, CallThroughAPltStubFollowsItsGotSlot) {
  FakeMemory m;
  const std::uint64_t stub = 0x5000, slot = 0x9000;
  m.put_call(0x1234, stub);
  // endbr64; bnd jmp *disp32(%rip), disp from the end of the 11-byte jmp.
  const auto disp = static_cast<std::int32_t>(slot - (stub + 11));
  std::vector<std::uint8_t> code = {0xf3, 0x0f, 0x1e, 0xfa, 0xf2, 0xff, 0x25, 0,
                                    0,    0,    0,    0x0f, 0x1f, 0x44, 0x00, 0x00};
  std::memcpy(&code[7], &disp, 4);
  m.put(stub, code);
  m.put_word(slot, kRead);
  EXPECT_TRUE(call_leads_to(0x1234, kBlockedIp, m.reader(), kNoSymbols));
  // The same call, with the thread blocked in another function: not its caller.
  EXPECT_FALSE(call_leads_to(0x1234, kOther + 0x20, m.reader(), kNoSymbols));
}

// -fno-plt: call *disp32(%rip) through the GOT.
TEST(CallSite, CallThroughTheGotWithoutAPlt) {
  FakeMemory m;
  const std::uint64_t slot = 0x9000;
  const auto disp = static_cast<std::int32_t>(slot - 0x1234);
  std::vector<std::uint8_t> b = {0x90, 0x90, 0xff, 0x15, 0, 0, 0, 0};
  std::memcpy(&b[4], &disp, 4);
  m.put(0x1234 - 8, b);
  m.put_word(slot, kRead);
  EXPECT_TRUE(call_leads_to(0x1234, kBlockedIp, m.reader(), kNoSymbols));
}

// pthread_mutex_lock (kLock) calls __lll_lock_wait (kWait), where the thread sleeps: the service's
// call to pthread_mutex_lock leads there one call deeper. A jmp (a tail call) counts the same.
TEST(CallSite, ACallOneLevelDeeperLeadsToTheLeaf) {
  FakeMemory m;
  const std::uint64_t kLock = 0x7000'4000, kWait = 0x7000'2000;
  m.put_call(0x1234, kLock);
  std::vector<std::uint8_t> lock(0x200, 0x90);
  const auto rel = static_cast<std::int32_t>(kWait - (kLock + 0x10d + 5));
  lock[0x10d] = 0xe8;
  std::memcpy(&lock[0x10e], &rel, 4);
  m.put(kLock, lock);
  EXPECT_TRUE(call_leads_to(0x1234, kWait + 0x30, m.reader(), kNoSymbols));
  lock[0x10d] = 0xe9;  // jmp rel32
  m.put(kLock, lock);
  EXPECT_TRUE(call_leads_to(0x1234, kWait + 0x30, m.reader(), kNoSymbols));
  // Not a leaf pthread_mutex_lock reaches: rejected.
  EXPECT_FALSE(call_leads_to(0x1234, kOther + 0x30, m.reader(), kNoSymbols));
}

// The stale word of the bug (issue 16): a return address left by an earlier thread on a reused
// stack, after its call to another function, is no caller of the leaf; the real one further up
// is.
TEST(CallSite, AStaleReturnAddressAfterACallToAnotherFunctionIsRejected) {
  FakeMemory m;
  m.put_call(0x1100, kOther);  // the dead frame's call to nanosleep
  m.put(kOther, std::vector<std::uint8_t>(0x100, 0x90));
  m.put_call(0x1234, kRead);  // the live call to read
  EXPECT_FALSE(call_leads_to(0x1100, kBlockedIp, m.reader(), kNoSymbols));
  EXPECT_TRUE(call_leads_to(0x1234, kBlockedIp, m.reader(), kNoSymbols));
}

// Decided: a call through a register or a computed address is never proven (its target is not in
// the code), nor is a word with no call before it, nor one whose code cannot be read.
TEST(CallSite, CallsWhoseTargetCannotBeProvenAreRejected) {
  FakeMemory m;
  m.put(0x1234 - 8, {0, 0, 0, 0, 0, 0, 0xff, 0xd0});        // call *%rax
  m.put(0x2234 - 8, {0, 0, 0xff, 0x54, 0x24, 0x08, 0, 0});  // not a call ending there
  m.put(0x3234 - 8, {0, 0, 0, 0xff, 0x50, 0x18, 0x90, 0x90});
  EXPECT_FALSE(call_leads_to(0x1234, kBlockedIp, m.reader(), kNoSymbols));
  EXPECT_FALSE(call_leads_to(0x2234, kBlockedIp, m.reader(), kNoSymbols));
  EXPECT_FALSE(call_leads_to(0x3234, kBlockedIp, m.reader(), kNoSymbols));
  EXPECT_FALSE(call_leads_to(0x4234, kBlockedIp, m.reader(), kNoSymbols));  // unmapped
  EXPECT_FALSE(call_leads_to(4, kBlockedIp, m.reader(), kNoSymbols));
  // The GOT slot cannot be read: not proven either.
  const auto disp = static_cast<std::int32_t>(0x9000 - 0x5234);
  std::vector<std::uint8_t> b = {0x90, 0x90, 0xff, 0x15, 0, 0, 0, 0};
  std::memcpy(&b[4], &disp, 4);
  m.put(0x5234 - 8, b);
  EXPECT_FALSE(call_leads_to(0x5234, kBlockedIp, m.reader(), kNoSymbols));
}

// With symbols, "is the leaf" compares function names, not a span: a stale call to read is not
// taken for the caller of a thread blocked in write, which glibc 2.36 places 0xa0 bytes after
// read, as the span alone would take it.
TEST(CallSite, SymbolsTellNeighbouringFunctionsApart) {
  FakeMemory m;
  const std::uint64_t kWrite = kRead + 0xa0;
  m.put_call(0x1100, kRead);  // stale: the dead frame's call to read
  m.put(kRead, std::vector<std::uint8_t>(0x100, 0x90));
  m.put_call(0x1234, kWrite);  // live: the call to write
  const FunctionAt names = [](std::uint64_t a) -> std::optional<std::string> {
    if (a >= kRead && a < kRead + 0xa0) return "read";
    if (a >= kRead + 0xa0 && a < kRead + 0x140) return "write";
    return std::nullopt;
  };
  const std::uint64_t in_write = kWrite + 0x0e;
  EXPECT_TRUE(call_leads_to(0x1100, in_write, m.reader(), kNoSymbols));  // the span's blind spot
  EXPECT_FALSE(call_leads_to(0x1100, in_write, m.reader(), names));
  EXPECT_TRUE(call_leads_to(0x1234, in_write, m.reader(), names));
  EXPECT_TRUE(call_leads_to(0x1100, kBlockedIp, m.reader(), names));
}

// A call to the leaf in the bytes after the called function's end is the next function's call:
// with symbols that name the callee, it proves nothing.
TEST(CallSite, ACallPastTheCalleesEndIsNotTheCallees) {
  FakeMemory m;
  const std::uint64_t kHelper = 0x7000'4000;  // 0x40 bytes long
  m.put_call(0x1234, kHelper);
  std::vector<std::uint8_t> code(0x200, 0x90);
  const auto rel = static_cast<std::int32_t>(kRead - (kHelper + 0x80 + 5));
  code[0x80] = 0xe8;  // in the function after kHelper
  std::memcpy(&code[0x81], &rel, 4);
  m.put(kHelper, code);
  const FunctionAt names = [](std::uint64_t a) -> std::optional<std::string> {
    if (a >= kRead && a < kRead + 0xa0) return "read";
    if (a >= kHelper && a < kHelper + 0x40) return "helper";
    if (a >= kHelper + 0x40 && a < kHelper + 0x200) return "next";
    return std::nullopt;
  };
  EXPECT_FALSE(call_leads_to(0x1234, kBlockedIp, m.reader(), names));
  EXPECT_TRUE(call_leads_to(0x1234, kBlockedIp, m.reader(), kNoSymbols));  // the span's limit
}

// pthread_mutex_unlock jumps to an internal function that calls __lll_lock_wake: two levels down,
// followed because the symbols name the function in between; a third level is not searched.
TEST(CallSite, ATailJumpAndACallTwoLevelsDownLeadToTheLeaf) {
  FakeMemory m;
  const std::uint64_t kUnlock = 0x7000'4000, kUsercnt = 0x7000'5000, kWake = 0x7000'2000;
  m.put_call(0x1234, kUnlock);
  auto put_branch = [&](std::uint64_t function, std::uint8_t op, std::uint64_t target) {
    m.put_branch(function, 0x100, op, target);
  };
  put_branch(kUnlock, 0xe9, kUsercnt);
  put_branch(kUsercnt, 0xe8, kWake);
  const FunctionAt names = [&](std::uint64_t a) -> std::optional<std::string> {
    if (a >= kUnlock && a < kUnlock + 0x100) return "unlock";
    if (a >= kUsercnt && a < kUsercnt + 0x100) return "usercnt";
    if (a >= kWake && a < kWake + 0x100) return "wake";
    return std::nullopt;
  };
  EXPECT_TRUE(call_leads_to(0x1234, kWake + 0x20, m.reader(), names));
  // One more level between: beyond kMaxCallDepth.
  const std::uint64_t kExtra = 0x7000'6000;
  put_branch(kUsercnt, 0xe8, kExtra);
  put_branch(kExtra, 0xe8, kWake);
  const FunctionAt more = [&](std::uint64_t a) -> std::optional<std::string> {
    if (a >= kExtra && a < kExtra + 0x100) return "extra";
    return names(a);
  };
  EXPECT_FALSE(call_leads_to(0x1234, kWake + 0x20, m.reader(), more));
}

// The memory tracer's leaf: `new char[n]` calls operator new[] (through the program's PLT), which
// jumps to operator new through its own library's PLT, which calls malloc through the PLT again,
// where the uprobe stops the thread. The callees' PLT stubs are followed to their functions.
TEST(CallSite, CalleesCalledThroughTheirLibrarysPltLeadToTheLeaf) {
  FakeMemory m;
  const std::uint64_t kNewArray = 0x7100'95d0, kNew = 0x7100'9570, kMalloc = 0x7200'0000;
  const std::uint64_t kNewPlt = 0x7100'08d0, kMallocPlt = 0x7100'0df0;
  const std::uint64_t kProgramPlt = 0x5000;
  m.put_call(0x1234, kProgramPlt);
  m.put_plt(kProgramPlt, 0x9000, kNewArray);
  m.put_plt(kNewPlt, 0x7100'f000, kNew);
  m.put_plt(kMallocPlt, 0x7100'f008, kMalloc);
  auto put_branch = [&](std::uint64_t function, std::uint8_t op, std::uint64_t target) {
    m.put_branch(function, 0x40, op, target);
  };
  put_branch(kNewArray, 0xe9, kNewPlt);  // jmp operator new@plt
  put_branch(kNew, 0xe8, kMallocPlt);    // call malloc@plt
  m.put(kMalloc, std::vector<std::uint8_t>(0x40, 0x90));
  const FunctionAt names = [&](std::uint64_t a) -> std::optional<std::string> {
    if (a >= kNewArray && a < kNewArray + 0x40) return "operator new[]";
    if (a >= kNew && a < kNew + 0x40) return "operator new";
    if (a >= kMalloc && a < kMalloc + 0x40) return "malloc";
    return std::nullopt;  // the PLT stubs have no name
  };
  EXPECT_TRUE(call_leads_to(0x1234, kMalloc, m.reader(), names));
  // A thread stopped in another function: not reached.
  EXPECT_FALSE(call_leads_to(0x1234, kOther, m.reader(), names));
}

}  // namespace
}  // namespace chokepoint::collect::bpf
