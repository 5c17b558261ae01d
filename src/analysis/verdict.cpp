#include "analysis/verdict.h"

#include <ostream>

namespace chokepoint::analysis {

std::string_view verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kNone:
      return "none";
    case Verdict::kNetwork:
      return "network";
    case Verdict::kDisk:
      return "disk";
    case Verdict::kMemory:
      return "memory";
    case Verdict::kLock:
      return "lock";
    case Verdict::kCpu:
      return "cpu";
  }
  return "none";
}

std::optional<Verdict> verdict_from_name(std::string_view name) {
  for (Verdict v : {Verdict::kNone, Verdict::kNetwork, Verdict::kDisk, Verdict::kMemory,
                    Verdict::kLock, Verdict::kCpu}) {
    if (verdict_name(v) == name) return v;
  }
  return std::nullopt;
}

std::optional<BottleneckKind> kind_from_name(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(BottleneckKind::kBusy); ++i) {
    const auto k = static_cast<BottleneckKind>(i);
    if (kind_name(k) == name) return k;
  }
  return std::nullopt;
}

std::string_view kind_name(BottleneckKind k) {
  using K = BottleneckKind;
  switch (k) {
    case K::kUpstream:
      return "upstream";
    case K::kBandwidth:
      return "bandwidth";
    case K::kConnect:
      return "connect";
    case K::kBacklog:
      return "backlog";
    case K::kLog:
      return "log";
    case K::kFsync:
      return "fsync";
    case K::kWrite:
      return "write";
    case K::kRead:
      return "read";
    case K::kIo:
      return "io";
    case K::kPaging:
      return "paging";
    case K::kLeak:
      return "leak";
    case K::kMutex:
      return "mutex";
    case K::kFileLock:
      return "file-lock";
    case K::kRwlock:
      return "rwlock";
    case K::kSemaphore:
      return "semaphore";
    case K::kHeldAcrossIo:
      return "held-across-io";
    case K::kRow:
      return "row";
    case K::kDatabase:
      return "database";
    case K::kSerial:
      return "serial";
    case K::kContended:
      return "contended";
    case K::kSaturated:
      return "saturated";
    case K::kBusy:
      return "busy";
  }
  return "";
}

std::string_view finding_resource_name(FindingResource r) {
  switch (r) {
    case FindingResource::kMemory:
      return "memory";
    case FindingResource::kFds:
      return "fds";
    case FindingResource::kHeld:
      return "held";
    case FindingResource::kConnections:
      return "connections";
    case FindingResource::kSharedMemory:
      return "shared-memory";
    case FindingResource::kRlimits:
      return "rlimits";
  }
  return "";
}

std::string_view severity_name(Severity s) {
  switch (s) {
    case Severity::kWarning:
      return "warning";
    case Severity::kInfo:
      return "info";
  }
  return "";
}

ShareBasis share_basis(BottleneckKind k) {
  if (k == BottleneckKind::kLeak) return ShareBasis::kFreeMemoryPerHour;
  if (k == BottleneckKind::kBacklog) return ShareBasis::kConnectionAttempts;
  return ShareBasis::kBusyTime;
}

std::string_view share_basis_name(ShareBasis b) {
  switch (b) {
    case ShareBasis::kBusyTime:
      return "busy_time";
    case ShareBasis::kConnectionAttempts:
      return "connection_attempts";
    case ShareBasis::kFreeMemoryPerHour:
      return "free_memory_per_hour";
  }
  return "busy_time";
}

int hierarchy_rank(Verdict v) {
  switch (v) {
    case Verdict::kNetwork:
      return 0;
    case Verdict::kDisk:
      return 1;
    case Verdict::kMemory:
      return 2;
    case Verdict::kLock:
      return 3;
    case Verdict::kCpu:
      return 4;
    case Verdict::kNone:
      return 5;
  }
  return 5;
}

std::ostream& operator<<(std::ostream& out, Verdict v) {
  return out << verdict_name(v);
}
std::ostream& operator<<(std::ostream& out, BottleneckKind k) {
  return out << kind_name(k);
}
std::ostream& operator<<(std::ostream& out, FindingResource r) {
  return out << finding_resource_name(r);
}
std::ostream& operator<<(std::ostream& out, Severity s) {
  return out << severity_name(s);
}

}  // namespace chokepoint::analysis
