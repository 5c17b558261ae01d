#include "stacks/capture.h"

#include <fmt/format.h>
#include <sched.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "collect/procfs/proc_fs.h"
#include "collect/sampler/wait_observer.h"
#include "symbolize/dwarf_unwind.h"
#include "symbolize/parsers.h"
#include "util/clock.h"

namespace chokepoint::stacks {

namespace {

namespace procfs = collect::procfs;

// The registers DwarfUnwinder needs, in perf's layout (<asm/perf_regs.h>): AX BX CX DX SI DI BP
// SP IP are bits 0..8, R8..R15 bits 16..23; values come in ascending bit order.
constexpr std::uint64_t kPerfRegsMask = 0x1ffULL | (0xffULL << 16);
constexpr std::uint64_t kPerfSampleRegsAbi64 = 2;  // PERF_SAMPLE_REGS_ABI_64
// How long one thread is waited for before moving on to the next (it is taken later, when it
// stops): a thread blocked in a syscall stops within microseconds when it gets a CPU.
constexpr std::int64_t kFirstWaitNs = 20'000'000;
// Threads interrupted and not yet stopped at any time.
constexpr std::size_t kInFlight = 8;

struct Copy {
  std::array<std::uint64_t, 17> regs{};  // kPerfRegsMask order
  std::vector<std::uint8_t> stack;
  std::size_t stack_requested = 0;
};

#if defined(__x86_64__)
std::array<std::uint64_t, 17> perf_order(const user_regs_struct& r) {
  return {r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.rip,
          r.r8,  r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15};
}
#endif

// How far up from sp the stack can be read: to the end of the mapping that holds sp.
std::size_t readable_above(const symbolize::MapsFile& maps, std::uint64_t sp, std::size_t want) {
  for (const auto& m : maps.mappings) {
    if (sp >= m.start && sp < m.end) {
      return static_cast<std::size_t>(std::min<std::uint64_t>(want, m.end - sp));
    }
  }
  return 0;
}

// The signal to hand back at detach: a signal-delivery stop that came before the interrupt
// must not swallow the signal.
int signal_to_reinject(int status) {
  if (!WIFSTOPPED(status)) return 0;
  if ((status >> 16) != 0) return 0;  // PTRACE_EVENT_STOP: the interrupt (or a group stop)
  return WSTOPSIG(status);
}

struct StopOutcome {
  std::optional<Copy> copy;
  std::string problem;
  std::int64_t stop_ns = -1;
  bool pending = false;  // interrupted, not yet stopped: still traced
  std::int64_t interrupted_at_ns = 0;
};

// The thread has reported `status` (a stop, or its end): copy its registers and stack, release it.
void copy_and_detach(int tid, int status, const symbolize::MapsFile& maps,
                     const CaptureOptions& options, StopOutcome& out) {
#if defined(__x86_64__)
  out.pending = false;
  if (!WIFSTOPPED(status)) {
    out.problem = "exited while being stopped";
    return;
  }
  user_regs_struct regs{};
  Copy copy;
  const bool have_regs = ::ptrace(PTRACE_GETREGS, tid, nullptr, &regs) == 0;
  if (have_regs) {
    copy.regs = perf_order(regs);
    copy.stack_requested = options.stack_bytes;
    const std::size_t len = readable_above(maps, regs.rsp, options.stack_bytes);
    copy.stack.resize(len);
    if (len > 0) {
      iovec local{copy.stack.data(), len};
      // The remote address comes from the tracee's own register (see .clang-tidy).
      iovec remote{reinterpret_cast<void*>(regs.rsp), len};  // NOLINT(performance-no-int-to-ptr)
      const ssize_t got = ::process_vm_readv(tid, &local, 1, &remote, 1, 0);
      copy.stack.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
    }
  } else {
    out.problem = fmt::format("registers not read: {}", std::strerror(errno));
  }
  ::ptrace(PTRACE_DETACH, tid, nullptr,
           reinterpret_cast<void*>(static_cast<std::intptr_t>(signal_to_reinject(status))));
  out.stop_ns = util::monotonic_ns() - out.interrupted_at_ns;
  out.problem.clear();
  if (have_regs) {
    out.copy = std::move(copy);
  } else {
    out.problem = "registers not read";
  }
#else
  (void)tid;
  (void)status;
  (void)maps;
  (void)options;
#endif
}

// Seizes and interrupts the thread. True when the interrupt is on its way (the thread is to be
// waited for); false with out.problem set when it cannot be stopped (out.pending when it was
// seized but not interrupted: it stays traced until its next stop).
bool begin_stop(int tid, StopOutcome& out) {
#if defined(__x86_64__)
  if (::ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) != 0) {
    out.problem = fmt::format("not stopped: ptrace(PTRACE_SEIZE): {}", std::strerror(errno));
    return false;
  }
  out.interrupted_at_ns = util::monotonic_ns();
  if (::ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0) {
    out.problem = fmt::format("not stopped: ptrace(PTRACE_INTERRUPT): {}", std::strerror(errno));
    out.pending = true;
    return false;
  }
  out.pending = true;
  return true;
#else
  (void)tid;
  out.problem = "stacks are only read on x86-64";
  return false;
#endif
}

std::string unwind_problem(symbolize::UnwindStop stop, std::size_t stack_bytes) {
  switch (stop) {
    case symbolize::UnwindStop::kComplete:
      return {};
    case symbolize::UnwindStop::kStackCopyTooSmall:
      return fmt::format("cut short: the frames above the first {} bytes of stack", stack_bytes);
    case symbolize::UnwindStop::kNoUnwindInfo:
      return "cut short: a frame without unwind information (JIT code, an unreadable binary)";
    case symbolize::UnwindStop::kDepthLimit:
      return fmt::format("cut short at {} frames", symbolize::DwarfUnwinder::kMaxFrames);
    case symbolize::UnwindStop::kNoUserState:
      return "no user stack (a kernel thread)";
    case symbolize::UnwindStop::kProcessUnknown:
      return "the process's mappings could not be read";
  }
  return {};
}

}  // namespace

util::Result<StackDump> capture_stacks(int pid, const CaptureOptions& options,
                                       symbolize::Symbolizer& symbolizer) {
  const std::int64_t start_ns = util::monotonic_ns();
  procfs::ProcFs proc(options.proc_root);
  auto leader = proc.read_task_stat(pid, pid);
  if (!leader) {
    return util::Error{fmt::format("process {} cannot be read: {}", pid, leader.error().message),
                       "check the pid (ps -e) and that it is still running", ESRCH};
  }
  StackDump dump;
  dump.pid = pid;
  dump.name = leader->comm;
  std::vector<int> tids;
  if (options.tid) {
    if (!proc.read_task_stat(pid, *options.tid)) {
      return util::Error{fmt::format("thread {} is not a thread of process {}", *options.tid, pid),
                         fmt::format("list its threads with ls {}/{}/task", options.proc_root, pid),
                         ESRCH};
    }
    tids.push_back(*options.tid);
  } else {
    auto listed = proc.list_tids(pid);
    if (!listed) return listed.error();
    tids = std::move(*listed);
  }
  auto unwinder = symbolize::DwarfUnwinder::create();
  if (!unwinder) return unwinder.error();
  // Mappings now, while the process is alive: the stack mappings bound each copy, and the
  // symbolizer keeps the binaries open for naming after the release.
  symbolize::MapsFile maps;
  if (auto text = proc.read_text(std::to_string(pid) + "/maps", false)) {
    maps = symbolize::parse_maps(*text);
  }
  if (auto attached = symbolizer.attach(pid); !attached) {
    dump.notes.push_back("symbols: " + attached.error().message);
  }
  collect::sampler::WaitObserver observer(proc);

  std::vector<StopOutcome> outcomes(tids.size());
  std::vector<std::size_t> pending;
  dump.threads.resize(tids.size());
  // Reads what thread i is doing (before its stop). False when it is not to be stopped.
  auto prepare = [&](std::size_t i) {
    const int tid = tids[i];
    ThreadStack& t = dump.threads[i];
    t.tid = tid;
    auto st = proc.read_task_stat(pid, tid);
    if (!st) {
      t.problem = "exited before its stack was read";
      return false;
    }
    t.name = st->comm;
    t.state = st->state;
    if (auto sc = proc.read_task_syscall(pid, tid)) {
      if (sc->kind == procfs::SyscallState::Kind::kInSyscall) {
        t.syscall = model::syscall_name(static_cast<long>(sc->nr));
      }
      t.wait = model::classify_wait(observer.observe(pid, *sc, st->state, util::monotonic_ns()));
    }
    if (options.kernel_stacks && st->state != 'R') {
      if (auto text = proc.read_text(
              std::to_string(pid) + "/task/" + std::to_string(tid) + "/stack", true)) {
        for (auto& name : procfs::parse_kernel_stack(*text)) {
          profile::Frame f;
          f.kind = profile::FrameKind::kKernel;
          f.name = std::move(name);
          f.module = "[kernel]";
          t.frames.push_back(std::move(f));
        }
        t.kernel_frames = t.frames.size();
      }
    }
    if (st->state == 'Z' || st->state == 'X') {
      t.problem = "a zombie: no stack";
      return false;
    }
    return true;
  };
  // Takes every thread of `waiting` that has stopped (copied and released at once); keeps the
  // others. True when any thread was taken.
  auto take_stopped = [&](std::vector<std::size_t>& waiting) {
    std::vector<std::size_t> still;
    bool took = false;
    for (std::size_t i : waiting) {
      int status = 0;
      const pid_t r = ::waitpid(tids[i], &status, __WALL | WNOHANG);
      if (r == tids[i]) {
        copy_and_detach(tids[i], status, maps, options, outcomes[i]);
        took = true;
      } else if (r == 0) {
        still.push_back(i);
      } else {
        outcomes[i].pending = false;
        outcomes[i].problem = fmt::format("not stopped: waitpid: {}", std::strerror(errno));
        took = true;
      }
      dump.threads[i].stop_ns = outcomes[i].stop_ns;
      dump.threads[i].problem = outcomes[i].problem;
    }
    waiting = std::move(still);
    return took;
  };
  // A few threads are interrupted at a time, so that waiting for each to get a CPU and stop
  // overlaps (on a loaded machine that wait, not the copy, is what a dump costs), while each
  // thread is still released the moment its copy is made.
  std::vector<std::size_t> in_flight;
  std::size_t next = 0;
  while (next < tids.size() || !in_flight.empty()) {
    while (in_flight.size() < kInFlight && next < tids.size()) {
      const std::size_t i = next++;
      if (!prepare(i)) continue;
      if (begin_stop(tids[i], outcomes[i])) {
        in_flight.push_back(i);
      } else {
        dump.threads[i].problem = outcomes[i].problem;
        if (outcomes[i].pending) pending.push_back(i);
      }
    }
    if (take_stopped(in_flight)) continue;
    // Threads that do not stop soon (no CPU yet, or uninterruptible sleep) wait until the end.
    const std::int64_t now_ns = util::monotonic_ns();
    std::vector<std::size_t> still;
    for (std::size_t i : in_flight) {
      (now_ns - outcomes[i].interrupted_at_ns > kFirstWaitNs ? pending : still).push_back(i);
    }
    in_flight = std::move(still);
    if (!in_flight.empty()) ::sched_yield();
  }
  // Threads that did not stop at once (no CPU to take the interrupt on a loaded machine, or an
  // uninterruptible sleep): taken as they stop, until stop_timeout_ns after the last interrupt.
  const std::int64_t pending_deadline_ns = util::monotonic_ns() + options.stop_timeout_ns;
  while (!pending.empty()) {
    take_stopped(pending);
    if (pending.empty() || util::monotonic_ns() >= pending_deadline_ns) break;
    const timespec ts{0, 200'000};
    ::nanosleep(&ts, nullptr);
  }
  for (std::size_t i : pending) {
    dump.threads[i].problem = fmt::format("did not stop within {} ms (uninterruptible sleep?)",
                                          options.stop_timeout_ns / 1'000'000);
  }
  if (!pending.empty()) {
    dump.notes.push_back(fmt::format(
        "{} thread(s) did not stop within {} ms (uninterruptible sleep?): their interrupt stays "
        "pending; they are released at their next stop or when chokepoint exits",
        pending.size(), options.stop_timeout_ns / 1'000'000));
  }

  // Unwind and name, the threads running again.
  std::vector<std::uint64_t> ips;
  for (std::size_t i = 0; i < tids.size(); ++i) {
    if (!outcomes[i].copy) continue;
    ThreadStack& t = dump.threads[i];
    const Copy& c = *outcomes[i].copy;
    symbolize::UserState state;
    state.abi = kPerfSampleRegsAbi64;
    state.regs_mask = kPerfRegsMask;
    state.regs = c.regs;
    state.stack = c.stack;
    state.stack_requested_bytes = c.stack_requested;
    const auto stop = (*unwinder)->unwind(pid, t.tid, state, ips);
    if (t.problem.empty()) t.problem = unwind_problem(stop, options.stack_bytes);
    for (std::size_t k = 0; k < ips.size(); ++k) {
      // Every frame but the innermost holds a return address: name the call before it.
      t.frames.push_back(symbolizer.user(pid, k == 0 ? ips[k] : ips[k] - 1));
    }
  }
  for (auto& note : symbolizer.notes()) dump.notes.push_back(std::move(note));
  for (auto& note : (*unwinder)->notes()) dump.notes.push_back(std::move(note));
  summarize_stops(dump);
  dump.elapsed_ns = util::monotonic_ns() - start_ns;
  return dump;
}

}  // namespace chokepoint::stacks
