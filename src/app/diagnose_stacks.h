#pragma once
// Stacks as evidence for diagnose's verdict (issue: "the hottest stacks become evidence").
//
// The diagnosis window itself stays cheap (schedstat and sampling). Once the verdict is known and
// it is a wait (lock, disk, network, memory), diagnose traces off-CPU stacks of the same target
// for a short follow-up (eBPF, collect/bpf) while the service is still under the same load, and
// names the code the waits are under (analysis/stack_evidence). Tracing only after the verdict
// keeps the eBPF cost (about 1 us per context switch on these VMs) to those seconds, and only
// for verdicts that need it.
//
// Never fails: when stacks cannot be had (not root, no BPF, no BTF, the target exited), the
// returned source says why, with a hint, and the report goes on without them.

#include <atomic>
#include <cstdint>
#include <optional>
#include <vector>

#include "collect/sampler/target.h"
#include "model/observation.h"
#include "profile/profile.h"

namespace chokepoint::app {

struct StackCapture {
  std::optional<profile::Profile> off_cpu;
  model::Source source;  // "off-CPU stacks (eBPF)": what was traced, or why not
};

// Traces the target's off-CPU stacks for `duration_ns` (or until *stop) and symbolizes them.
StackCapture capture_off_cpu(const collect::sampler::TargetSpec& target, std::int64_t duration_ns,
                             const std::atomic<bool>* stop);

}  // namespace chokepoint::app
