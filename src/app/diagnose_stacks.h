#pragma once
// Stacks as evidence for diagnose's verdict ("the hottest stacks become evidence").
//
// The diagnosis window itself stays cheap (schedstat and sampling). Once the verdict is known,
// diagnose collects the stacks that explain it from the same target, still under the same load,
// for a short follow-up: on-CPU samples (perf, 199 Hz) for a cpu verdict, off-CPU blocked time
// with waker stacks (eBPF) for lock, disk, network and memory, and for a leak (memory, kind leak)
// the allocations still live at the end, by allocation site (eBPF uprobes on the allocator).
// analysis/stack_evidence turns them into sentences ("78% of lock wait is under Store::put
// (store.cpp:41), released by ..."). Doing it after the verdict keeps the eBPF cost (about 1 us per
// context switch on these VMs) to those seconds, and only for verdicts that need it.
//
// Never fails: when stacks cannot be had (not root, no BPF or BTF, perf_event_paranoid, the target
// exited), the source says why with a hint, and the report goes on without them.

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "analysis/stack_evidence.h"
#include "analysis/verdict.h"
#include "collect/sampler/target.h"
#include "model/observation.h"
#include "profile/profile.h"

namespace chokepoint::app {

struct VerdictStacks {
  std::vector<std::string> evidence;  // sentences for the primary bottleneck
  // The primary bottleneck's first fix, made specific by the code found (it replaces the generic
  // one: for a leak, "find what keeps memory: a heap profile" becomes the allocation site); empty:
  // none.
  std::string fix;
  model::Source source;  // empty name when the verdict needs no stacks
  // The stacks behind the evidence (on-CPU samples, off-CPU time with wakers, or the allocations
  // still live), for a flame graph; nullopt when none were captured.
  std::optional<profile::Profile> profile;
  // On-CPU stacks: each thread's hottest own-code function, by tid, which names the function of a
  // wait-for chain's root on a CPU (analysis::name_chain_roots).
  std::map<int, analysis::ThreadFunction> thread_functions;
};

// Whether `verdict` has stacks to look for (every verdict but kNone).
bool verdict_has_stacks(analysis::Verdict verdict);

// Collects the stacks for `verdict` from the target for `duration_ns` (or until *stop). Deadlines
// (util::monotonic_ns(), 0: none): the capture ends by end_ns even if opening it ran late, and
// symbolizing stops at symbolize_deadline_ns; the source's detail says when either cut it short.
// `kind` is the primary bottleneck's: kLeak profiles allocations instead of off-CPU time.
VerdictStacks stacks_for_verdict(analysis::Verdict verdict,
                                 const collect::sampler::TargetSpec& target,
                                 std::int64_t duration_ns, const std::atomic<bool>* stop,
                                 std::int64_t end_ns = 0, std::int64_t symbolize_deadline_ns = 0,
                                 std::optional<analysis::BottleneckKind> kind = std::nullopt);

}  // namespace chokepoint::app
