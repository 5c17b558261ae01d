#include "collect/bpf/call_site.h"

#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "profile/profile.h"
#include "symbolize/symbolizer.h"

namespace chokepoint::collect::bpf {
namespace {

std::int32_t rel32(const std::uint8_t* p) {
  std::int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

std::uint64_t add_rel32(std::uint64_t base, const std::uint8_t* p) {
  return base + static_cast<std::uint64_t>(static_cast<std::int64_t>(rel32(p)));
}

// Whether the function entered at `entry` is the one holding `ip`, whose name is `leaf` (nullopt:
// no symbol covers ip).
bool is_leaf(std::uint64_t entry, std::uint64_t ip, const std::optional<std::string>& leaf,
             const FunctionAt& function_at) {
  if (leaf) return function_at(entry) == leaf;
  return entry <= ip && ip - entry < kLeafSpanBytes;
}

}  // namespace

std::optional<CallTarget> decode_call_before(std::uint64_t ret,
                                             std::span<const std::uint8_t, 8> before) {
  // call rel32: e8 xx xx xx xx, ending at ret.
  if (before[3] == 0xe8) return CallTarget{CallTarget::Kind::kDirect, add_rel32(ret, &before[4])};
  // call *disp32(%rip): ff 15 xx xx xx xx, ending at ret (-fno-plt calls through the GOT).
  if (before[2] == 0xff && before[3] == 0x15) {
    return CallTarget{CallTarget::Kind::kThroughPointer, add_rel32(ret, &before[4])};
  }
  return std::nullopt;
}

std::optional<std::uint64_t> decode_plt_stub(std::uint64_t stub,
                                             std::span<const std::uint8_t, 16> code) {
  std::size_t i = 0;
  if (code[0] == 0xf3 && code[1] == 0x0f && code[2] == 0x1e && code[3] == 0xfa) i = 4;  // endbr64
  if (code[i] == 0xf2) ++i;                                                             // bnd
  if (i + 6 > code.size() || code[i] != 0xff || code[i + 1] != 0x25) return std::nullopt;
  return add_rel32(stub + i + 6, &code[i + 2]);
}

namespace {

// The function a PLT stub at `stub` jumps to: the address the dynamic linker stored in its GOT
// slot. nullopt when `stub` is no PLT stub, or its slot cannot be read or is empty.
std::optional<std::uint64_t> through_plt(std::uint64_t stub, const ReadMemory& read) {
  std::array<std::uint8_t, 16> code{};
  if (!read(stub, code.data(), code.size())) return std::nullopt;
  auto got = decode_plt_stub(stub, code);
  std::uint64_t function = 0;
  if (!got || !read(*got, &function, sizeof(function)) || function == 0) return std::nullopt;
  return function;
}

}  // namespace

std::optional<std::uint64_t> called_function(std::uint64_t ret, const ReadMemory& read) {
#if !defined(__x86_64__)
  (void)ret, (void)read;
  return std::nullopt;  // the decoder knows x86-64 call and PLT encodings only
#else
  std::array<std::uint8_t, 8> before{};
  if (ret < before.size() || !read(ret - before.size(), before.data(), before.size())) {
    return std::nullopt;
  }
  auto call = decode_call_before(ret, before);
  if (!call) return std::nullopt;
  if (call->kind == CallTarget::Kind::kDirect) {
    // A call into a PLT stub goes on through its GOT slot (nullopt when the slot cannot be
    // read); any other target is the function.
    std::array<std::uint8_t, 16> stub{};
    if (!read(call->address, stub.data(), stub.size()) || !decode_plt_stub(call->address, stub)) {
      return call->address;
    }
    return through_plt(call->address, read);
  }
  std::uint64_t function = 0;
  if (!read(call->address, &function, sizeof(function)) || function == 0) return std::nullopt;
  return function;
#endif
}

namespace {

// Whether the function entered at `entry` is the leaf or reaches it through calls or jmps rel32
// in its first kCalleeScanBytes, at most `depth` more functions down (kMaxCallDepth).
bool reaches(std::uint64_t entry, std::uint64_t ip, const std::optional<std::string>& leaf,
             const ReadMemory& read, const FunctionAt& function_at, int depth) {
  if (is_leaf(entry, ip, leaf, function_at)) return true;
  if (depth == 0) return false;
  // A call or jmp rel32 anywhere in the function's first bytes. The scan is not
  // instruction-aligned: a misaligned e8/e9 whose rel32 happens to land in the leaf is a chance
  // of about 2^-22 per byte.
  std::vector<std::uint8_t> code(kCalleeScanBytes);
  std::size_t got = code.size();
  while (got >= 64 && !read(entry, code.data(), got)) got /= 2;  // near a mapping's end
  if (got < 64) return false;
  // Where symbols give the function's extent, a call past its end belongs to the next function.
  const std::optional<std::string> self = function_at(entry);
  std::vector<std::uint64_t> next;
  for (std::size_t i = 0; i + 5 <= got; ++i) {
    if (code[i] != 0xe8 && code[i] != 0xe9) continue;
    std::uint64_t target = add_rel32(entry + i + 5, &code[i + 1]);
    if (target == entry || (self && function_at(entry + i) != self)) continue;
    // A library calls exported functions, its own too, through its PLT: operator new[] jumps
    // to operator new@plt, which calls malloc@plt.
    target = through_plt(target, read).value_or(target);
    if (is_leaf(target, ip, leaf, function_at)) return true;
    // Only targets the symbols name are followed (a misaligned byte's target is not).
    if (depth > 1 && next.size() < kMaxCalleesFollowed && function_at(target) &&
        std::find(next.begin(), next.end(), target) == next.end()) {
      next.push_back(target);
    }
  }
  for (std::uint64_t target : next) {
    if (reaches(target, ip, leaf, read, function_at, depth - 1)) return true;
  }
  return false;
}

}  // namespace

bool call_leads_to(std::uint64_t ret, std::uint64_t ip, const ReadMemory& read,
                   const FunctionAt& function_at) {
  auto entry = called_function(ret, read);
  if (!entry) return false;
  return reaches(*entry, ip, function_at(ip), read, function_at, kMaxCallDepth);
}

ReadMemory process_memory(int tgid) {
  return [tgid](std::uint64_t address, void* out, std::size_t size) {
    iovec local{out, size};
    iovec remote{reinterpret_cast<void*>(address), size};
    return ::process_vm_readv(tgid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(size);
  };
}

FunctionAt symbolized_function_at(symbolize::Symbolizer& symbolizer, int tgid) {
  return [&symbolizer, tgid](std::uint64_t address) -> std::optional<std::string> {
    const profile::Frame f = symbolizer.user(tgid, address);
    if (!f.unresolved.empty() || f.name.empty()) return std::nullopt;
    return f.name + '\n' + f.module;
  };
}

}  // namespace chokepoint::collect::bpf
