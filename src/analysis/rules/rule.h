#pragma once
// The shape every verdict rule shares. One rule per file in this folder, one page per rule in
// docs/verdicts/. A rule looks at the observation and may propose one bottleneck and findings.

#include <optional>
#include <string_view>
#include <vector>

#include "analysis/diagnosis.h"

namespace chokepoint::analysis::rules {

struct Context {
  const model::Observation& obs;
  model::TimeSplit split;  // summed over threads
  double duration_s = 0;
  double busy_ns = 0;  // split.busy_ns()
  // Of split, the time threads waited for other threads' hand-offs, divided as those threads
  // spent theirs (model::attribute_handoffs): it counts in shares, not in threads busy.
  model::TimeSplit waited_for;
  // Average number of the target's threads in resource r over the window ("threads busy"), their
  // own use (hand-off waits left out).
  double load(model::Resource r) const;
  // r's share of busy time, 0 when nothing was busy.
  double busy_share(model::Resource r) const;
  // Lock waits caused by disk IO under the lock. The lock is held across disk IO, and all of its
  // wait is the disk's doing, when waiters often queue while another thread of the process sits
  // in fsync (at least kLockBehindDiskFraction of the samples), or when the threads that wait on
  // it spend at least kLockWaitersDiskFraction of their own working time in disk. Otherwise only
  // the coinciding part counts. The lock time of hand-offs to a root on a CPU or in disk (the
  // wait-for graph's) is left out: it is its roots' (lock_ns_handed_to_cpu, _to_disk).
  double lock_ns_caused_by_disk() const;
  // The share of their own working time (on CPU, queued for a core, in disk) that the threads
  // which waited on a lock spent in disk; 0 when none waited.
  double lock_waiters_disk_fraction() const;
  // The exact mode's wait-for graph: the target's lock time that is a hand-off, by root thread
  // (model::lock_handoffs); empty without the graph (the sampled split, no eBPF).
  std::vector<model::Handoff> handoffs;
  // Of it, the lock time whose root thread spends most of its time on a CPU (running or queued
  // for a core): the waiters wait for that thread's CPU work, so the cpu rule counts it and the
  // lock rule does not.
  double lock_ns_handed_to_cpu() const;
  // Those hand-offs, largest first.
  std::vector<const model::Handoff*> cpu_handoffs() const;
  // Of it, the lock time whose root thread spends most of its time in disk (an fsync, a write to
  // an O_DSYNC file): the waiters wait for that thread's disk IO, so the disk rule counts it and
  // the lock rule does not. Never more than the lock time left after lock_ns_caused_by_disk and
  // lock_ns_handed_to_cpu (no time is counted twice).
  double lock_ns_handed_to_disk() const;
  // Those hand-offs, largest first.
  std::vector<const model::Handoff*> disk_handoffs() const;
  // The idle time that the waiters' hand-offs gave to their wakers' states (waited_for), by root
  // thread (model::idle_handoffs): the chains behind it; empty without the graph.
  std::vector<model::Handoff> idle_handoffs;
  // Those whose root's time went mostly to `r` (handoff_resource), largest first: each is shown
  // by exactly one rule, so a chain is never lost because its root was not on a CPU.
  std::vector<const model::Handoff*> idle_handoffs_to(model::Resource r) const;
};

struct RuleResult {
  std::optional<Bottleneck> bottleneck;
  std::vector<Finding> findings;
};

// A resource whose waits keep on average at least this many threads busy limits the service.
inline constexpr double kSignificantLoadThreads = 0.2;
// ... and that is at least this share of the busy time.
inline constexpr double kSignificantBusyShare = 0.15;
// Measured on the lab's log scenario: 17-50% of mutex-wait samples coincide with the holder in
// fsync (the rest is the hand-off to the next waiter), and the waiters spend 25-65% of their own
// working time (on CPU, queued for a core, in disk) in syncs; a lock with CPU work inside: 0%.
inline constexpr double kLockBehindDiskFraction = 0.15;
inline constexpr double kLockWaitersDiskFraction = 0.2;

RuleResult cpu(const Context& ctx);
RuleResult disk(const Context& ctx);
RuleResult network(const Context& ctx);
RuleResult backlog(const Context& ctx);
RuleResult lock(const Context& ctx);
RuleResult memory(const Context& ctx);
RuleResult leak(const Context& ctx);
RuleResult limits(const Context& ctx);
// TCP connections against the OS limits they meet (model/tcp_table.h): findings, never a
// bottleneck. Each is silent without a TCP state table.
RuleResult close_wait(const Context& ctx);       // peers closed, the service did not: a leak
RuleResult ephemeral_ports(const Context& ctx);  // outbound connections against the port range
RuleResult accept_queue(const Context& ctx);     // a listener's accept queue at its backlog
RuleResult syn_flood(const Context& ctx);        // half-open connections piling up
// netfilter's connection tracking table of the target's namespace near nf_conntrack_max, or full.
RuleResult conntrack(const Context& ctx);
// The target's processes near RLIMIT_NPROC, RLIMIT_MEMLOCK or RLIMIT_STACK (model/rlimits.h).
RuleResult rlimits(const Context& ctx);
// System V and POSIX shared memory near their limits (model/shm.h): findings only.
RuleResult shared_memory(const Context& ctx);
// Threads held by someone else (stopped, traced, frozen, in vfork): findings, never a bottleneck.
RuleResult held(const Context& ctx);
// The share of the target's thread time spent held, 0..1.
double held_share(const Context& ctx);

// "1.2 s (34%)", "12 MiB", ... shared by the rules' evidence text.
std::string percent(double fraction);
// "thread 'a' (tid 1) waits for thread 'b' (tid 2), which is on CPU 98% of the time": the chain
// of a hand-off in words (the names are observed text: the renderers escape them).
std::string chain_text(const model::WaitChain& chain);
// Where a hand-off's time went: its root's state (kCpuWait counts as kOnCpu), or for a group of
// short-lived threads (model::ShortLivedThread) the state that took the most of their busy time,
// on a CPU and runnable together (their largest state may be idle: a joined worker that waited
// for a signal before it ended, while what its joiner's wait gave to busy time is its work).
// Nothing for a root that was idle or asleep: it did no work the waiter waited for.
std::optional<model::Resource> handoff_resource(const model::Handoff& h);
// Adds the first hand-off's chain as an evidence line, "<chain> (N threads waited for it, X of
// busy time<what>; wait-for graph)" with X = ns / busy_ns, and every hand-off's chain to
// b.chains; nothing when `handoffs` is empty.
void add_handoff_evidence(Bottleneck& b, const std::vector<const model::Handoff*>& handoffs,
                          double ns, double busy_ns, std::string_view what = "");
std::string bytes(double b);
std::string duration(double seconds);
// "127.0.0.1:8080", "[::1]:8080"; the address alone when port is 0. The address is observed text:
// the renderers escape it.
std::string endpoint(const std::string& addr, std::uint16_t port);
// The target's groups of sockets in state s, largest first.
std::vector<const model::TcpGroup*> target_groups(const model::TcpTableSample& t,
                                                  model::TcpState s);
// "12 on 127.0.0.1:8080 from 127.0.0.1, 3 to 10.0.0.5:5432": the first `most` groups.
std::string groups_text(const std::vector<const model::TcpGroup*>& groups, std::size_t most);

}  // namespace chokepoint::analysis::rules
