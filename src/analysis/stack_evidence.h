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

#include <string>
#include <vector>

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

}  // namespace chokepoint::analysis
