#pragma once
// DWARF (CFI) unwinding of sampled user stacks, for code built without frame pointers: the
// registers and the copy of the top of the user stack that perf takes with each sample
// (PERF_SAMPLE_REGS_USER, PERF_SAMPLE_STACK_USER; collect/perf in DWARF mode) are walked with the
// call frame information of the mapped binaries (.eh_frame, else .debug_frame from a separate
// debug file) by libdwfl (elfutils): dwfl_attach_state() with our own thread callbacks, then
// dwfl_getthread_frames() per sample.
//
//   auto u = DwarfUnwinder::create();
//   std::vector<std::uint64_t> ips;
//   auto stop = (*u)->unwind(pid, tid, regs, stack, ips);  // ips: a callchain, leaf first
//
// Where it lives and why it keeps its own Dwfl: libdwfl unwinds inside one Dwfl per process whose
// modules sit at their runtime addresses (dwfl_linux_proc_report from /proc/PID/maps), and
// dwfl_attach_state() binds that Dwfl to the process once. The Symbolizer instead keeps one Dwfl
// per binary at its link-time addresses, shared by every process that maps it (by build-id), so
// it cannot host per-process thread state. The unwinder therefore owns one Dwfl per process,
// built the first time a sample of that process arrives (while it is alive) and rebuilt, at most
// once a second, when a sampled pc lies in no module (a library loaded since). Naming the frames
// stays the Symbolizer's job. Binaries are opened by the path /proc/PID/maps shows (libdwfl's
// dwfl_linux_proc_find_elf; the vDSO from the process's memory): a process in another mount
// namespace, or one whose binary was deleted, unwinds only where that path still leads to the
// same file, and the rest is counted as a stop, never silent.
//
// Memory the CFI rules read comes from the stack copy when it falls in [sp, sp + copied bytes),
// else from the read-only PT_LOAD segments of the module's file (never from the live process: it
// has moved on since the sample), else the read fails and the unwind stops there.
//
// Not thread-safe: one thread at a time (the sampling thread). x86-64 only; create() refuses
// elsewhere.

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "util/result.h"

namespace chokepoint::symbolize {

// DWARF register numbers of the x86-64 psABI (figure 3.36): rax, rdx, rcx, rbx, rsi, rdi, rbp,
// rsp, r8..r15, and 16, the return address column, which holds the pc of the initial frame.
inline constexpr int kX86_64DwarfRegisters = 17;
using X86_64DwarfRegisters = std::array<std::uint64_t, kX86_64DwarfRegisters>;

// Maps perf's user registers (values in ascending bit order of `perf_mask`, PERF_REG_X86_*
// numbering of <asm/perf_regs.h>) to DWARF numbering. nullopt when the mask lacks one of the 17
// registers or `values` does not hold one value per mask bit.
std::optional<X86_64DwarfRegisters> x86_64_dwarf_registers(std::uint64_t perf_mask,
                                                           std::span<const std::uint64_t> values);

// The user-space state of one sample.
struct UserState {
  std::uint64_t abi = 0;  // PERF_SAMPLE_REGS_ABI_*: only 2 (64-bit) can be unwound
  std::uint64_t regs_mask = 0;
  std::span<const std::uint64_t> regs;      // one value per bit of regs_mask, ascending
  std::span<const std::uint8_t> stack;      // bytes copied from the stack pointer upwards
  std::uint64_t stack_requested_bytes = 0;  // what was asked for: a full copy may be cut short
};

// Why an unwind ended. Every value but kComplete is a stack that may be missing outer frames.
enum class UnwindStop {
  kComplete,           // reached the outermost frame (the CFI marks its return address undefined)
  kStackCopyTooSmall,  // a CFI rule read above the copied bytes: pass a larger stack copy
  kNoUnwindInfo,       // no CFI for a pc (JIT code, a binary not readable), or a bad rule
  kDepthLimit,         // kMaxFrames frames: stopped there
  kNoUserState,        // no registers (a kernel thread), a 32-bit task, or an empty stack copy
  kProcessUnknown,     // the process's mappings could not be read (exited before its first sample)
};

// Counted per call of unwind().
struct UnwindStats {
  std::uint64_t unwinds = 0;
  std::uint64_t complete = 0;
  std::uint64_t stack_copy_too_small = 0;
  std::uint64_t no_unwind_info = 0;
  std::uint64_t depth_limit = 0;
  std::uint64_t no_user_state = 0;
  std::uint64_t process_unknown = 0;
  std::uint64_t frames = 0;
  // Stacks that were cut short: every stop but kComplete and kNoUserState (mostly kernel threads,
  // which have no user stack to miss; noted separately).
  std::uint64_t truncated() const {
    return stack_copy_too_small + no_unwind_info + depth_limit + process_unknown;
  }
};

class DwarfUnwinder {
 public:
  static constexpr std::size_t kMaxFrames = 127;  // kernel.perf_event_max_stack's default

  // ENOTSUP on an architecture other than x86-64.
  static util::Result<std::unique_ptr<DwarfUnwinder>> create();
  ~DwarfUnwinder();
  DwarfUnwinder(const DwarfUnwinder&) = delete;
  DwarfUnwinder& operator=(const DwarfUnwinder&) = delete;

  // Unwinds one sample of thread `tid` of process `pid` into `ips` (cleared first) in the form of
  // a perf callchain: innermost first, the first entry the sampled pc, every later entry a return
  // address (callers look it up at address - 1, as profile::StackAggregator does). A caller frame
  // that was itself interrupted (a signal frame: dwfl_frame_pc's isactivation) holds its exact pc
  // plus one, so that the same `- 1` lands on it. The frames found before a stop are kept.
  // REQUIRES: the process was alive when its first sample was passed in (its maps are read then).
  UnwindStop unwind(int pid, int tid, const UserState& state, std::vector<std::uint64_t>& ips);

  const UnwindStats& stats() const { return stats_; }
  // Plain sentences about stacks that stopped early and why, with what to do (for the notes).
  std::vector<std::string> notes() const;

 private:
  struct Process;
  DwarfUnwinder() = default;
  Process* process_for(int pid, bool refresh);

  std::map<int, std::unique_ptr<Process>> processes_;
  std::map<std::string, std::uint64_t> errors_;  // libdwfl's messages behind kNoUnwindInfo
  UnwindStats stats_;
};

}  // namespace chokepoint::symbolize
