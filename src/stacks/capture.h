#pragma once
// Reading every thread's stack of a live process, the way eu-stack or a "poor man's profiler"
// does, without holding the process: each thread is stopped on its own (PTRACE_SEIZE +
// PTRACE_INTERRUPT), its registers and the top of its stack are copied (PTRACE_GETREGS,
// process_vm_readv) the moment it reports the stop, and it is released (PTRACE_DETACH) right
// after. At most 8 threads are interrupted at once, so that waiting for each to get a CPU and
// stop overlaps (on a loaded machine that wait, not the copy, is what a dump costs); the other
// threads keep running. Unwinding (symbolize::DwarfUnwinder, the binaries' CFI) and naming
// (symbolize::Symbolizer) happen after the release, on the copies. How long each thread was held
// is measured from its interrupt to the end of its detach (so it includes the time it took to
// get a CPU and reach the stop) and kept per thread.
//
// What each thread waits on is read before its stop, from /proc (state, syscall, the fd's
// target, the libc function under a futex sleep) through collect::sampler::WaitObserver and
// model::classify_wait, the same path diagnose uses.
//
// A thread that does not stop within 20 ms (no CPU to take the interrupt on a loaded machine, or
// an uninterruptible sleep, D) is left with its interrupt pending while the others are read, and
// taken (copied and released) as soon as it stops, up to stop_timeout_ns after the last thread's
// interrupt; its stop time counts from its interrupt. One still not stopped then stays traced
// until its next stop or until this process exits (the kernel releases it), a note says so, and
// its stack is reported as missing.
//
// x86-64 only (the register layout). Needs ptrace access (root or the same user under Yama's
// ptrace_scope 0/1). Thread-safety: the caller's thread only; ptrace binds the tracee to it.

#include <cstdint>
#include <optional>
#include <string>

#include "stacks/stack_dump.h"
#include "symbolize/symbolizer.h"
#include "util/result.h"

namespace chokepoint::stacks {

struct CaptureOptions {
  std::string proc_root = "/proc";
  std::optional<int> tid;  // only this thread of the process
  // Bytes of stack copied from the stack pointer up (capped at the end of its mapping): frames
  // above them are cut off ("stack copy too small").
  std::size_t stack_bytes = std::size_t{64} * 1024;
  std::int64_t stop_timeout_ns = 1'000'000'000;
  bool kernel_stacks = true;  // /proc/PID/task/TID/stack, when readable (root)
};

// The process's threads' stacks now. Errors: the process does not exist or cannot be read, the
// tid is not one of its threads, or the architecture is not x86-64. A thread that cannot be
// stopped (EPERM, another tracer) or vanishes keeps its wait and gets a `problem`.
util::Result<StackDump> capture_stacks(int pid, const CaptureOptions& options,
                                       symbolize::Symbolizer& symbolizer);

}  // namespace chokepoint::stacks
