#pragma once
// Stacks as evidence for a verdict: which code the bottleneck's time is spent under. Pure: reads
// profiles (on-CPU samples, off-CPU blocked time), does no I/O.
//
// For cpu the on-CPU profile's hottest functions are named. For lock, disk, network and memory the
// off-CPU stacks are sorted into those resources by their kernel frames (futex waits are lock;
// fsync, block IO and page-cache writeback waits are disk; socket and poll waits are network;
// fault and reclaim waits are memory), and the time of each class is attributed to the first
// frame of the service's own code above the wait (the leaf-most user frame outside the system's
// shared libraries: libc's futex wrapper is not news, LabStore::update is). With waker stacks
// (profile::kWokenByMarker), the frame of the waker's own code is named too: for a lock, that
// is the code that held it.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "analysis/diagnosis.h"
#include "analysis/verdict.h"
#include "profile/profile.h"

namespace chokepoint::analysis {

// The resource an off-CPU stack's blocked part waits on, from its kernel frames: kLock, kDisk,
// kNetwork, kMemory, or kNone when it is none of these (sleep, an idle event loop, a condvar is
// also a futex: see the .cpp for how lock is told apart).
Verdict offcpu_resource(const profile::Stack& stack);

// The leaf-most frame of the service's own code among `frames` (user or JIT frames not in a
// system shared library), or nullptr.
const profile::Frame* own_code_frame(const std::vector<profile::Frame>& frames);

struct StackEvidence {
  std::vector<std::string> lines;  // plain sentences with shares, most time first
  double covered_s = 0;            // the profile time that was classified into the resource
};

// Evidence for `resource` (kCpu from on_cpu; kLock, kDisk, kNetwork, kMemory from off_cpu): at
// most `top` lines. on_cpu and off_cpu may be null (not collected); the result is then empty, as
// it is for kNone.
StackEvidence stack_evidence(Verdict resource, const profile::Profile* on_cpu,
                             const profile::Profile* off_cpu, std::size_t top = 3);

// A thread's hottest own-code function in an on-CPU profile, and its share of the thread's
// samples.
struct ThreadFunction {
  std::string function;  // "Stage::run (pipeline.cpp:88)"
  double share = 0;
};

// The hottest own-code function of each thread of an on-CPU profile taken with thread frames
// (profile::FrameKind::kThread, "name (tid)"), by tid. Threads without own-code samples are left
// out.
std::map<int, ThreadFunction> thread_functions(const profile::Profile& on_cpu);

// Names the function of each wait-for chain's root on a CPU (on CPU or queued for one) in the
// primary bottleneck, from `functions`, and rewrites the evidence lines that give those chains:
// "..., which is on CPU 84% of the time, 91% of it in Stage::run (pipeline.cpp:88)".
void name_chain_roots(Diagnosis& d, const std::map<int, ThreadFunction>& functions);

// One allocation site of a memory profile (collect/bpf/memory_profile.h): the leaf-most frame of
// the service's own code above the allocator (allocator wrappers in system libraries, such as
// operator new, are looked through), with the bytes allocated there during the window and the
// bytes of those still live at its end. Estimates, as the profiles are.
struct MemorySite {
  std::string function;  // short name, e.g. "LeakHandler::lab_leak_allocate"
  std::string
      text;  // with the heaviest source line: "LeakHandler::lab_leak_allocate (scenarios.cpp:485)"
  std::uint64_t live_bytes = 0;
  std::uint64_t allocated_bytes = 0;
};

// Sites of the live and allocated memory profiles (Weight::kBytes), most live bytes first, then
// most allocated. Stacks without any own-code frame are summed under one site that says so.
std::vector<MemorySite> memory_sites(const profile::Profile& live,
                                     const profile::Profile& allocated);

// Evidence for a leak from the live memory profile: "71% of the growth is under
// LeakHandler::lab_leak_allocate (scenarios.cpp:485), +44.0 MiB/s", at most `top` lines.
StackEvidence memory_evidence(const profile::Profile& live, std::size_t top = 3);

}  // namespace chokepoint::analysis
