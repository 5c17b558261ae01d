// DwarfUnwinder: one libdwfl Dwfl per process, attached to our own thread callbacks that serve
// the registers and stack bytes of the sample being unwound.
#include "symbolize/dwarf_unwind.h"

#include <elfutils/libdwfl.h>
#include <fmt/format.h>
#include <gelf.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace chokepoint::symbolize {

namespace {

using Clock = std::chrono::steady_clock;

// A pc in no module may belong to a library loaded after the maps were read; they are read again
// then, but not more often than this: reading maps takes the target's mmap lock.
constexpr auto kRereportInterval = std::chrono::seconds(1);

// A failed read this far above the stack pointer is taken for a read of the stack beyond the copy
// (8 MiB: the default stack rlimit), not of some other memory.
constexpr std::uint64_t kStackReachBytes = 8ull << 20;

constexpr std::uint64_t kAbi64 = 2;  // PERF_SAMPLE_REGS_ABI_64
constexpr int kDwarfSp = 7;
constexpr int kDwarfPc = 16;

// perf's register number (PERF_REG_X86_*, <asm/perf_regs.h>) behind each DWARF register 0..16.
constexpr std::array<int, kX86_64DwarfRegisters> kPerfRegOfDwarf = {
    0,                               // rax <- PERF_REG_X86_AX
    3,                               // rdx <- DX
    2,                               // rcx <- CX
    1,                               // rbx <- BX
    4,                               // rsi <- SI
    5,                               // rdi <- DI
    6,                               // rbp <- BP
    7,                               // rsp <- SP
    16, 17, 18, 19, 20, 21, 22, 23,  // r8..r15 <- R8..R15
    8,                               // return address column: the pc <- IP
};

// What the thread callbacks need while one sample is unwound. Owned by the Process, pointed to by
// the Dwfl's callback argument.
struct UnwindContext {
  const UserState* state = nullptr;
  X86_64DwarfRegisters regs{};
  std::vector<std::uint64_t>* ips = nullptr;
  bool read_past_copy = false;
  bool read_failed = false;  // any memory read that could not be served
  bool depth_limit = false;
};

// Reads 8 bytes at runtime address `addr` from a read-only PT_LOAD segment of the module's file:
// what was mapped there is still what the file holds (writable segments may have changed).
bool read_from_file(Dwfl* dwfl, Dwarf_Addr addr, Dwarf_Word* result) {
  Dwfl_Module* mod = dwfl_addrmodule(dwfl, addr);
  if (mod == nullptr) return false;
  Dwarf_Addr bias = 0;
  Elf* elf = dwfl_module_getelf(mod, &bias);
  if (elf == nullptr || addr < bias) return false;
  const std::uint64_t vaddr = addr - bias;
  std::size_t phnum = 0;
  if (elf_getphdrnum(elf, &phnum) != 0) return false;
  for (std::size_t i = 0; i < phnum; ++i) {
    GElf_Phdr ph;
    if (gelf_getphdr(elf, static_cast<int>(i), &ph) == nullptr) continue;
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) != 0) continue;
    if (vaddr < ph.p_vaddr || ph.p_filesz < 8 || vaddr - ph.p_vaddr > ph.p_filesz - 8) continue;
    std::size_t size = 0;
    const char* raw = elf_rawfile(elf, &size);
    const std::uint64_t off = ph.p_offset + (vaddr - ph.p_vaddr);
    if (raw == nullptr || off > size || size - off < 8) return false;
    std::memcpy(result, raw + off, 8);
    return true;
  }
  return false;
}

pid_t next_thread(Dwfl*, void*, void**) {
  return 0;  // threads are asked for by tid (get_thread); there is nothing to enumerate
}

bool get_thread(Dwfl*, pid_t, void* dwfl_arg, void** thread_argp) {
  *thread_argp = dwfl_arg;
  return true;
}

bool memory_read(Dwfl* dwfl, Dwarf_Addr addr, Dwarf_Word* result, void* arg) {
  auto* ctx = static_cast<UnwindContext*>(arg);
  const auto stack = ctx->state->stack;
  const std::uint64_t sp = ctx->regs[kDwarfSp];
  if (addr >= sp && addr - sp <= stack.size() && stack.size() - (addr - sp) >= 8) {
    std::memcpy(result, stack.data() + (addr - sp), 8);
    return true;
  }
  if (read_from_file(dwfl, addr, result)) return true;
  // Above the copy: when the copy was cut at the requested size (not at the stack's top), a
  // larger copy would have held it.
  if (addr >= sp + stack.size() && addr - sp < kStackReachBytes &&
      stack.size() >= ctx->state->stack_requested_bytes) {
    ctx->read_past_copy = true;
  }
  ctx->read_failed = true;
  return false;
}

bool set_initial_registers(Dwfl_Thread* thread, void* thread_arg) {
  auto* ctx = static_cast<UnwindContext*>(thread_arg);
  if (!dwfl_thread_state_registers(thread, 0, kX86_64DwarfRegisters, ctx->regs.data())) {
    return false;
  }
  dwfl_thread_state_register_pc(thread, ctx->regs[kDwarfPc]);
  return true;
}

int on_frame(Dwfl_Frame* frame, void* arg) {
  auto* ctx = static_cast<UnwindContext*>(arg);
  Dwarf_Addr pc = 0;
  bool activation = false;
  if (!dwfl_frame_pc(frame, &pc, &activation)) return DWARF_CB_ABORT;
  if (pc == 0) return DWARF_CB_ABORT;  // the end of a chain some code marks with a zero
  // Callers are return addresses, looked up at pc - 1 downstream; an interrupted caller (a signal
  // frame) is at its exact pc, so it is stored one above to survive that.
  if (!ctx->ips->empty() && activation) ++pc;
  ctx->ips->push_back(pc);
  if (ctx->ips->size() >= DwarfUnwinder::kMaxFrames) {
    ctx->depth_limit = true;
    return DWARF_CB_ABORT;
  }
  return DWARF_CB_OK;
}

const Dwfl_Callbacks kProcCallbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = nullptr,
    .debuginfo_path = nullptr,
};

const Dwfl_Thread_Callbacks kThreadCallbacks = {
    .next_thread = next_thread,
    .get_thread = get_thread,
    .memory_read = memory_read,
    .set_initial_registers = set_initial_registers,
    .detach = nullptr,
    .thread_detach = nullptr,
};

}  // namespace

std::optional<X86_64DwarfRegisters> x86_64_dwarf_registers(std::uint64_t perf_mask,
                                                           std::span<const std::uint64_t> values) {
  if (static_cast<std::size_t>(__builtin_popcountll(perf_mask)) != values.size()) {
    return std::nullopt;
  }
  X86_64DwarfRegisters out{};
  for (int d = 0; d < kX86_64DwarfRegisters; ++d) {
    const int bit = kPerfRegOfDwarf[static_cast<std::size_t>(d)];
    if ((perf_mask >> bit & 1) == 0) return std::nullopt;
    // Values come in ascending bit order: this one's index is the count of lower bits set.
    const std::uint64_t lower = perf_mask & ((std::uint64_t{1} << bit) - 1);
    out[static_cast<std::size_t>(d)] =
        values[static_cast<std::size_t>(__builtin_popcountll(lower))];
  }
  return out;
}

struct DwarfUnwinder::Process {
  Dwfl* dwfl = nullptr;
  std::string failure;  // why dwfl is null
  Clock::time_point reported_at{};
  UnwindContext ctx;
  ~Process() {
    if (dwfl != nullptr) dwfl_end(dwfl);
  }
};

util::Result<std::unique_ptr<DwarfUnwinder>> DwarfUnwinder::create() {
#if defined(__x86_64__)
  return std::unique_ptr<DwarfUnwinder>(new DwarfUnwinder());
#else
  return util::Error{"DWARF unwinding is only implemented for x86-64",
                     "use --call-graph fp, with the code built with -fno-omit-frame-pointer",
                     ENOTSUP};
#endif
}

DwarfUnwinder::~DwarfUnwinder() = default;

DwarfUnwinder::Process* DwarfUnwinder::process_for(int pid, bool refresh) {
  auto& slot = processes_[pid];
  if (slot && !refresh) return slot.get();
  auto p = std::make_unique<Process>();
  p->reported_at = Clock::now();
  Dwfl* dwfl = dwfl_begin(&kProcCallbacks);
  if (dwfl == nullptr) {
    p->failure = dwfl_errmsg(-1);
  } else {
    dwfl_report_begin(dwfl);
    const int rc = dwfl_linux_proc_report(dwfl, pid);
    dwfl_report_end(dwfl, nullptr, nullptr);
    if (rc != 0) {
      p->failure = rc > 0 ? std::string("cannot read its mappings: ") + std::strerror(rc)
                          : std::string(dwfl_errmsg(-1));
      dwfl_end(dwfl);
    } else if (!dwfl_attach_state(dwfl, nullptr, pid, &kThreadCallbacks, &p->ctx)) {
      p->failure = dwfl_errmsg(-1);
      dwfl_end(dwfl);
    } else {
      p->dwfl = dwfl;
    }
  }
  // A refresh that failed (the process exited) keeps the old, working Dwfl.
  if (slot && slot->dwfl != nullptr && p->dwfl == nullptr) {
    slot->reported_at = p->reported_at;
    return slot.get();
  }
  slot = std::move(p);
  return slot.get();
}

UnwindStop DwarfUnwinder::unwind(int pid, int tid, const UserState& state,
                                 std::vector<std::uint64_t>& ips) {
  ips.clear();
  ++stats_.unwinds;
  auto count = [this, &ips](UnwindStop stop) {
    stats_.frames += ips.size();
    switch (stop) {
      case UnwindStop::kComplete:
        ++stats_.complete;
        break;
      case UnwindStop::kStackCopyTooSmall:
        ++stats_.stack_copy_too_small;
        break;
      case UnwindStop::kNoUnwindInfo:
        ++stats_.no_unwind_info;
        break;
      case UnwindStop::kDepthLimit:
        ++stats_.depth_limit;
        break;
      case UnwindStop::kNoUserState:
        ++stats_.no_user_state;
        break;
      case UnwindStop::kProcessUnknown:
        ++stats_.process_unknown;
        break;
    }
    return stop;
  };
  if (state.abi != kAbi64) return count(UnwindStop::kNoUserState);
  auto regs = x86_64_dwarf_registers(state.regs_mask, state.regs);
  if (!regs) return count(UnwindStop::kNoUserState);
  const std::uint64_t pc = (*regs)[kDwarfPc];
  if (state.stack.empty()) {
    ips.push_back(pc);
    return count(UnwindStop::kNoUserState);
  }
  Process* p = process_for(pid, false);
  if (p->dwfl != nullptr && dwfl_addrmodule(p->dwfl, pc) == nullptr &&
      Clock::now() - p->reported_at >= kRereportInterval) {
    p = process_for(pid, true);
  }
  if (p->dwfl == nullptr) {
    ips.push_back(pc);
    return count(UnwindStop::kProcessUnknown);
  }
  UnwindContext& ctx = p->ctx;
  ctx.state = &state;
  ctx.regs = *regs;
  ctx.ips = &ips;
  ctx.read_past_copy = false;
  ctx.read_failed = false;
  ctx.depth_limit = false;
  const int rc = dwfl_getthread_frames(p->dwfl, tid, on_frame, &ctx);
  ctx.state = nullptr;
  ctx.ips = nullptr;
  if (ips.empty()) ips.push_back(pc);
  if (ctx.depth_limit) return count(UnwindStop::kDepthLimit);
  // libdwfl ends an unwind without an error (rc 0) when the return address turns out undefined,
  // which is both how the outermost frame is marked and what a failed memory read leaves
  // behind: our own read flags tell the two apart.
  if (ctx.read_past_copy) return count(UnwindStop::kStackCopyTooSmall);
  if (ctx.read_failed) {
    ++errors_["a CFI rule read memory outside the stack copy and the binaries"];
    return count(UnwindStop::kNoUnwindInfo);
  }
  if (rc == 0 || rc == DWARF_CB_ABORT) return count(UnwindStop::kComplete);  // abort: a zero pc
  ++errors_[dwfl_errmsg(-1)];
  return count(UnwindStop::kNoUnwindInfo);
}

std::vector<std::string> DwarfUnwinder::notes() const {
  std::vector<std::string> out;
  const UnwindStats& s = stats_;
  if (s.unwinds == 0) return out;
  out.push_back(fmt::format(
      "DWARF unwinding: {} of {} user stacks unwound to their outermost frame ({} frames in all)",
      s.complete, s.unwinds, s.frames));
  if (s.stack_copy_too_small > 0) {
    out.push_back(fmt::format(
        "{} user stacks stopped early: their frames reach beyond the copied user stack; pass a "
        "larger copy, e.g. --call-graph dwarf,32768 (at most 65528)",
        s.stack_copy_too_small));
  }
  if (s.no_unwind_info > 0) {
    std::string why;
    std::uint64_t listed = 0;
    for (const auto& [message, n] : errors_) {
      if (listed++ == 3) break;
      why += fmt::format("{}{} x '{}'", why.empty() ? "" : ", ", n, message);
    }
    out.push_back(fmt::format(
        "{} user stacks stopped early where a pc had no usable unwind information (JIT code, "
        "an unreadable binary or a bad CFI rule: {})",
        s.no_unwind_info, why));
  }
  if (s.depth_limit > 0) {
    out.push_back(fmt::format("{} user stacks were cut at {} frames", s.depth_limit, kMaxFrames));
  }
  if (s.no_user_state > 0) {
    out.push_back(fmt::format(
        "{} samples carried no usable user registers or stack (kernel threads, 32-bit tasks, or "
        "a stack the kernel could not copy): only their sampled pc is kept",
        s.no_user_state));
  }
  if (s.process_unknown > 0) {
    out.push_back(fmt::format(
        "{} samples came from processes whose mappings could not be read for unwinding (they "
        "exited first): only their sampled pc is kept",
        s.process_unknown));
  }
  return out;
}

}  // namespace chokepoint::symbolize
