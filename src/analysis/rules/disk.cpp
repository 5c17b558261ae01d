// Disk: threads waiting on block IO or inside file syscalls, and (with the wait-for graph) threads
// handed work to a thread that is in disk. Kinds: "fsync" (a sync per request), "log" (synchronous
// logging), "write", "read", "io". See docs/verdicts/disk.md.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <string_view>

#include "analysis/rules/rule.h"
#include "model/account.h"

namespace chokepoint::analysis::rules {

using model::Resource;

namespace {

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// A file that looks like a log by its name: "*.log", "*/log/*", "*-log*", "*_log*".
bool looks_like_log(const std::string& detail) {
  std::string lower(detail);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find(".log") != std::string::npos || lower.find("/log") != std::string::npos ||
         lower.find("_log") != std::string::npos || lower.find("-log") != std::string::npos;
}

// "write O_DSYNC /data/x" (any write or pwrite call): the sampler marks files opened O_DSYNC or
// O_SYNC, whose every write waits for the device as an fdatasync would.
bool is_sync_write(const std::string& detail) {
  if (!starts_with(detail, "write") && !starts_with(detail, "pwrite")) return false;
  const std::size_t space = detail.find(' ');
  if (space == std::string::npos) return false;
  const std::string_view rest = std::string_view(detail).substr(space + 1);
  return rest.substr(0, 8) == "O_DSYNC " || rest.substr(0, 7) == "O_SYNC ";
}

// The file a wait names: from its first " /" on ("write /data/x" -> "/data/x"); "" for none.
std::string_view wait_path(const std::string& detail) {
  const std::size_t at = detail.find(" /");
  return at == std::string::npos ? std::string_view() : std::string_view(detail).substr(at + 1);
}

}  // namespace

RuleResult disk(const Context& ctx) {
  const auto& obs = ctx.obs;
  const double lock_by_disk_ns = ctx.lock_ns_caused_by_disk();
  // Waits handed off by a thread that is in disk (the wait-for graph): that thread's disk IO.
  const double handed_ns = ctx.lock_ns_handed_to_disk();
  const double disk_ns =
      static_cast<double>(ctx.split[Resource::kDisk]) + lock_by_disk_ns + handed_ns;
  const double load = ctx.duration_s > 0 ? disk_ns / 1e9 / ctx.duration_s : 0.0;
  const double share = ctx.busy_ns > 0 ? disk_ns / ctx.busy_ns : 0.0;

  Bottleneck b;
  b.resource = Verdict::kDisk;
  b.share = std::min(1.0, share);
  b.significant = load >= kSignificantLoadThreads && share >= kSignificantBusyShare;

  auto top = model::top_details(obs.threads, Resource::kDisk, 3);
  double sync_ns = 0, sync_write_ns = 0, write_ns = 0, read_ns = 0, log_ns = 0;
  std::map<std::string, std::pair<double, double>, std::less<>> by_file;  // sync, plain write ns
  for (const auto& [detail, ns] : model::top_details(obs.threads, Resource::kDisk, 1000)) {
    // A write to an O_DSYNC/O_SYNC file (the sampler's "write O_DSYNC /path") is a sync too.
    bool sync = starts_with(detail, "fsync") || starts_with(detail, "fdatasync") ||
                starts_with(detail, "sync_file_range") || starts_with(detail, "msync") ||
                is_sync_write(detail);
    if (sync) sync_ns += static_cast<double>(ns);
    if (is_sync_write(detail)) sync_write_ns += static_cast<double>(ns);
    if (starts_with(detail, "write") || starts_with(detail, "pwrite"))
      write_ns += static_cast<double>(ns);
    if (starts_with(detail, "read") || starts_with(detail, "pread"))
      read_ns += static_cast<double>(ns);
    if ((sync || starts_with(detail, "write")) && looks_like_log(detail))
      log_ns += static_cast<double>(ns);
    if (const std::string_view path = wait_path(detail); !path.empty()) {
      auto& [file_sync, file_write] = by_file[std::string(path)];
      if (sync) {
        file_sync += static_cast<double>(ns);
      } else if (starts_with(detail, "write") || starts_with(detail, "pwrite")) {
        file_write += static_cast<double>(ns);
      }
    }
  }
  // Plain writes to a file that other threads sync, where the syncs are a tenth or more of that
  // file's write and sync time: they queue behind the syncs (the inode lock), so the syncs are
  // their cause. How much of each the sampling catches varies from window to window.
  double queued_ns = 0;
  for (const auto& [path, file] : by_file) {
    if (file.first > 0 && file.first >= 0.1 * (file.first + file.second)) queued_ns += file.second;
  }
  const double own_disk = static_cast<double>(ctx.split[Resource::kDisk]);
  // A write to a file that another thread is syncing waits for that sync (the inode lock), so
  // a quarter of the time in syncs, or half in syncs and the writes queued behind them, makes the
  // syncs the cause.
  if (own_disk > 0 && log_ns >= 0.5 * own_disk) {
    b.kind = BottleneckKind::kLog;
  } else if (own_disk > 0 &&
             (sync_ns >= 0.25 * own_disk || sync_ns + queued_ns >= 0.5 * own_disk)) {
    b.kind = BottleneckKind::kFsync;
  } else if (own_disk > 0 && write_ns >= 0.5 * own_disk) {
    b.kind = BottleneckKind::kWrite;
  } else if (own_disk > 0 && read_ns >= 0.5 * own_disk) {
    b.kind = BottleneckKind::kRead;
  } else {
    b.kind = BottleneckKind::kIo;
  }

  b.evidence.push_back(fmt::format(
      "on average {:.2f} threads were waiting on disk ({} of busy time)", load, percent(b.share)));
  for (const auto& [detail, ns] : top) {
    b.evidence.push_back(
        fmt::format("{} of disk time in {}", percent(own_disk > 0 ? ns / own_disk : 0), detail));
  }
  if (lock_by_disk_ns > 0) {
    // Say the reason that held (Context::lock_ns_caused_by_disk): the holder seen in a sync, or
    // the waiters' own time in disk.
    // The credit is taken per tick for every queued thread, the split from each thread's own
    // state: the two can disagree by a tick, and a share of samples is never above all of them.
    const double caught = std::min(1.0, static_cast<double>(obs.lock_wait_behind_disk_ns) /
                                            static_cast<double>(ctx.split[Resource::kLock]));
    if (caught >= kLockBehindDiskFraction || ctx.lock_waiters_disk_fraction() <= 0) {
      b.evidence.push_back(fmt::format(
          "{} of the samples of threads queued on a lock caught another thread of the process "
          "inside a disk sync: the lock is held across disk IO, so {} of lock wait counts as disk",
          percent(caught), duration(lock_by_disk_ns / 1e9)));
    } else {
      b.evidence.push_back(fmt::format(
          "the threads that queued on a lock spent {} of their own working time in disk: they take "
          "turns doing disk IO under it, so {} of lock wait counts as disk",
          percent(ctx.lock_waiters_disk_fraction()), duration(lock_by_disk_ns / 1e9)));
    }
  }
  if (handed_ns > 0) {
    add_handoff_evidence(b, ctx.disk_handoffs(), handed_ns, ctx.busy_ns);
  } else if (const auto idle = ctx.idle_handoffs_to(Resource::kDisk); !idle.empty()) {
    // Idle waits on hand-offs (a reply's futex or pipe) given to a thread mostly in disk.
    add_handoff_evidence(b, idle, idle[0]->idle_ns, ctx.busy_ns, " given to its state");
  }
  for (const auto& p : obs.processes) {
    if (p.syscw == 0 && p.write_bytes == 0) continue;
    b.evidence.push_back(fmt::format("pid {} ({}) wrote {}/s to storage in {:.0f} write calls/s",
                                     p.pid, p.name, bytes(p.write_bytes / ctx.duration_s),
                                     p.syscw / ctx.duration_s));
  }
  std::int64_t blkio_ns = 0;
  for (const auto& t : obs.threads) blkio_ns += t.blkio_delay_ns;
  if (blkio_ns > 0) {
    b.evidence.push_back(fmt::format(
        "delay accounting: the target's threads were blocked on block IO for {} in total (exact, "
        "for the tasks that carry it)",
        duration(static_cast<double>(blkio_ns) / 1e9)));
  }
  const model::DiskSummary* busiest = nullptr;
  for (const auto& d : obs.system.disks) {
    if (!busiest || d.utilization > busiest->utilization) busiest = &d;
  }
  if (busiest && busiest->utilization > 0.01) {
    b.evidence.push_back(fmt::format(
        "disk {}: {} busy, await {:.2f} ms, queue depth {:.2f}, {:.0f} writes/s, {:.0f} flushes/s",
        busiest->name, percent(busiest->utilization), busiest->await_ms, busiest->queue_depth,
        busiest->writes_per_s, busiest->flushes_per_s));
  }
  if (obs.system.psi_io.available && obs.system.psi_io.some_share > 0.01) {
    b.evidence.push_back(fmt::format("PSI io: some task stalled on IO {} of the time",
                                     percent(obs.system.psi_io.some_share)));
  }

  if (b.kind == BottleneckKind::kLog) {
    b.fixes = {"log asynchronously: a queue and a background writer, off the request path",
               "log less: drop per-request lines to debug level or sample them",
               "do not fsync every log line: let the background writer flush periodically"};
  } else if (b.kind == BottleneckKind::kFsync && sync_write_ns >= 0.5 * sync_ns) {
    // The syncs are writes to an O_DSYNC/O_SYNC file: each write is a commit.
    b.fixes = {
        "batch commits: group commit, one O_DSYNC write for all requests that arrived "
        "meanwhile (or open the file without O_DSYNC and fdatasync once per batch)",
        "make writes asynchronous: sync in the background and accept a bounded loss window",
        "use a device with a fast, safe write cache (NVMe with power-loss protection)"};
  } else if (b.kind == BottleneckKind::kFsync) {
    b.fixes = {"batch commits: group commit, one fsync for all requests that arrived meanwhile",
               "make writes asynchronous: fsync in the background and accept a bounded loss window",
               "use a device with a fast, safe write cache (NVMe with power-loss protection)"};
  } else if (b.kind == BottleneckKind::kRead) {
    b.fixes = {"cache hot data in memory",
               "give the page cache more memory (RAM or the cgroup limit)",
               "read less: indexes, smaller records, compression"};
  } else {
    b.fixes = {"buffer and batch writes", "move the IO off the request path (a background writer)",
               "use a faster device, or spread the IO over more devices"};
  }
  b.confidence = b.significant ? std::min(1.0, 0.6 + 0.4 * b.share) : 0.0;
  RuleResult out;
  out.bottleneck = std::move(b);
  return out;
}

}  // namespace chokepoint::analysis::rules
