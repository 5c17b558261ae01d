#pragma once
// x86-64 call-site decoding: what a return address on a stack says about the call that pushed it.
// One owner for it (docs/architecture.md): the futex stack scanner (collect/sampler/futex_stack.h)
// names the libc wait a service called with it, and the tracers here prove the caller of a
// frameless leaf with it (call_leads_to). Pure, except that code is read through a ReadMemory.
// x86-64 encodings only: elsewhere nothing decodes, and every proof fails (the caller is left
// out, never guessed).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>

namespace chokepoint::symbolize {
class Symbolizer;
}  // namespace chokepoint::symbolize

namespace chokepoint::collect::bpf {

// `before` holds the 8 code bytes that end at return address `ret`. A `call rel32` (e8) there
// gives its target as kDirect; a `call *disp32(%rip)` (ff 15) gives the address of the pointer it
// calls through as kThroughPointer. Any other form (a call through a register or a computed
// address, or bytes that are no call) gives nullopt.
struct CallTarget {
  enum class Kind { kDirect, kThroughPointer };
  Kind kind = Kind::kDirect;
  std::uint64_t address = 0;
};
std::optional<CallTarget> decode_call_before(std::uint64_t ret,
                                             std::span<const std::uint8_t, 8> before);
// A PLT stub at `stub` (its first 16 bytes): `jmp *disp32(%rip)` (ff 25), optionally after
// endbr64 (f3 0f 1e fa) and a bnd prefix (f2), as .plt.sec and -z now .plt.got entries are.
// Returns the address of the GOT slot it jumps through.
std::optional<std::uint64_t> decode_plt_stub(std::uint64_t stub,
                                             std::span<const std::uint8_t, 16> code);

// Reads `size` bytes of the traced process's memory at `address` into `out`; false when it
// cannot (unmapped, the process exited).
using ReadMemory = std::function<bool(std::uint64_t address, void* out, std::size_t size)>;

// The entry of the function that the call ending at `ret` enters: a direct call's target, or,
// through a PLT stub or a GOT slot (-fno-plt), the address the dynamic linker stored there.
// nullopt when no call precedes `ret` that can be decoded, or its pointer cannot be read.
std::optional<std::uint64_t> called_function(std::uint64_t ret, const ReadMemory& read);

// Which function holds a code address, as a key that is equal for two addresses of the same
// function ("read in /usr/lib/.../libc.so.6"); nullopt when no symbol covers it (a stripped
// binary, glibc's internal __lll_lock_wait, which .dynsym does not list).
using FunctionAt = std::function<std::optional<std::string>(std::uint64_t address)>;

// Without a symbol for the leaf, how far into a function its blocking instruction may lie; and
// how much of the called function is searched for the call that leads on to the leaf.
inline constexpr std::uint64_t kLeafSpanBytes = 1024;
inline constexpr std::size_t kCalleeScanBytes = 1024;
// Calls followed from the called function to the leaf (pthread_mutex_unlock jumps to
// __pthread_mutex_unlock_usercnt, which calls __lll_lock_wake: 2), and callees followed per
// function below the first (only those symbols name).
inline constexpr int kMaxCallDepth = 2;
inline constexpr std::size_t kMaxCalleesFollowed = 8;

// True when `ret` can be the return address of the call that led to `ip` (the user ip of a
// thread blocked, or stopped, in a frameless leaf): the call before `ret` enters a function F
// (called_function), and F is the leaf, or calls it:
//   - F is the leaf: function_at(F) == function_at(ip) (read, fdatasync, epoll_wait: the service
//     called the leaf itself);
//   - F calls or jumps to the leaf: a `call rel32` or `jmp rel32` in F's first kCalleeScanBytes
//     (and within F, where function_at names F) targets an entry E that is the leaf as above
//     (pthread_mutex_lock calling __lll_lock_wait, sem_wait's tail jump into its slow path), or
//     a function function_at names that does so in turn, kMaxCallDepth calls down at most
//     (pthread_mutex_unlock -> __pthread_mutex_unlock_usercnt -> __lll_lock_wake).
// "Is the leaf" compares the functions function_at names; only when it has no symbol for ip does
// it fall back to E <= ip < E + kLeafSpanBytes, which cannot tell the leaf from a function that
// starts less than kLeafSpanBytes before it.
// Stale words are what this rejects: a return address left in a slot the leaf reserved but never
// wrote (glibc's read keeps one such slot), from an earlier thread on a reused stack, comes after
// a call to some other function. Calls through a register or a computed address (ff /2 other
// than ff 15) are never accepted: their target cannot be proven from the code, and a stale return
// address after one is as likely as after a direct call; a wrong caller would be wrong evidence,
// a missing one only a shorter stack.
bool call_leads_to(std::uint64_t ret, std::uint64_t ip, const ReadMemory& read,
                   const FunctionAt& function_at);

// A ReadMemory over process `tgid` (process_vm_readv: root or the same user).
ReadMemory process_memory(int tgid);

// A FunctionAt over process `tgid`: the function `symbolizer` names (with its module), nullopt
// when it cannot name one. REQUIRES: symbolizer outlives the result.
FunctionAt symbolized_function_at(symbolize::Symbolizer& symbolizer, int tgid);

}  // namespace chokepoint::collect::bpf
