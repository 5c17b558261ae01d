#pragma once
// The closed sets a diagnosis is made of: the verdict (which resource limits the target), the kind
// of a bottleneck, and a finding's resource and severity. analysis/, render/ and app/ pass these
// enums around and compare them; the strings exist only here, in the *_name functions that the
// text report and the JSON contract (schema 1) print, and that docs/verdicts/ uses as page names.
// Adding a value means adding its name here and its page there.

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string_view>

namespace chokepoint::analysis {

// A bottleneck's resource, and the verdict: the primary bottleneck's resource, or kNone.
enum class Verdict : std::uint8_t { kNone, kNetwork, kDisk, kMemory, kLock, kCpu };

// What a bottleneck is, within its resource (docs/verdicts/<resource>.md).
enum class BottleneckKind : std::uint8_t {
  // network
  kUpstream,
  kBandwidth,
  kConnect,
  kBacklog,
  // disk
  kLog,
  kFsync,
  kWrite,
  kRead,
  kIo,
  // memory
  kPaging,
  kLeak,
  // lock
  kMutex,
  kFileLock,
  kRwlock,
  kSemaphore,
  kHeldAcrossIo,
  kRow,       // a database's row locks (PostgreSQL's Lock:transactionid, Lock:tuple)
  kDatabase,  // a database's other locks (table locks, LWLocks)
  // cpu
  kSerial,
  kContended,
  kSaturated,
  kBusy,  // the last: kind_from_name counts up to it
};

// What a finding (USE evidence that is not a bottleneck) is about. kHeld: threads stopped,
// traced, frozen or in vfork (rules/held.cpp), held rather than limited by a resource.
// kConnections: TCP connections and the limits they meet (ports, accept queue, SYN backlog).
// kSharedMemory: System V and POSIX shared memory against their limits. kRlimits: a process near
// RLIMIT_NPROC, RLIMIT_MEMLOCK or RLIMIT_STACK (rules/rlimits.cpp).
enum class FindingResource : std::uint8_t {
  kMemory,
  kFds,
  kHeld,
  kConnections,
  kSharedMemory,
  kRlimits
};

enum class Severity : std::uint8_t { kWarning, kInfo };

// "none", "network", "disk", "memory", "lock", "cpu".
std::string_view verdict_name(Verdict v);
// The Verdict whose verdict_name is `name`; nullopt for any other text.
std::optional<Verdict> verdict_from_name(std::string_view name);
// "upstream", "fsync", "held-across-io", ...
std::string_view kind_name(BottleneckKind k);
// The BottleneckKind whose kind_name is `name`; nullopt for any other text.
std::optional<BottleneckKind> kind_from_name(std::string_view name);
// "memory", "fds", "held", "connections", "shared-memory".
std::string_view finding_resource_name(FindingResource r);
// "warning", "info".
std::string_view severity_name(Severity s);

// What a bottleneck's share measures.
// - kBusyTime (every kind but the two below): the fraction of the target's busy (non-idle,
//   non-sleep) time it took.
// - kConnectionAttempts (kBacklog): the fraction of connection attempts the kernel dropped. It is
//   weighed like a time share (the fraction of requests refused against the fraction of time).
// - kFreeMemoryPerHour (kLeak): the fraction of the free memory left (MemAvailable, or the cgroup
//   limit's headroom) that the growth eats in an hour, capped at 1 (it runs out within the hour).
//   Not comparable with the others: a leak costs no time until it runs out.
enum class ShareBasis : std::uint8_t { kBusyTime, kConnectionAttempts, kFreeMemoryPerHour };
ShareBasis share_basis(BottleneckKind k);
// "busy_time", "connection_attempts", "free_memory_per_hour" (the JSON's "share_of").
std::string_view share_basis_name(ShareBasis b);

// The latency hierarchy that breaks ties between bottlenecks: network (0), disk, memory, lock,
// cpu (4); kNone last.
int hierarchy_rank(Verdict v);

// For test failure messages: the names above.
std::ostream& operator<<(std::ostream& out, Verdict v);
std::ostream& operator<<(std::ostream& out, BottleneckKind k);
std::ostream& operator<<(std::ostream& out, FindingResource r);
std::ostream& operator<<(std::ostream& out, Severity s);

}  // namespace chokepoint::analysis
