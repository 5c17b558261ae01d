#pragma once
// The diagnosis sampler: watches a target's threads for a window and hands what it reads, as raw
// samples (model/samples.h), to a sink: an in-memory store for a live diagnosis, a recording for
// chokepoint record. model::build_observation derives the time split and the evidence from them.
//
// Cost follows the threads that ran: every tick reads each thread's schedstat counters (all of them
// with one read of a BPF task iterator, or one pread per thread from /proc); only a thread whose
// counters moved (it ran, or waited for a core) has its stat and syscall read again and its wait
// re-classified. A thread that did not run is still in the wait it was last seen in.
//
// Thread-safety: one thread drives a Sampler. stop may be set from another thread or a signal
// handler to end the window early.

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "collect/sampler/exact_accounting.h"
#include "collect/sampler/target.h"
#include "model/samples.h"
#include "util/result.h"

namespace chokepoint::collect::sampler {

struct SamplerOptions {
  TargetSpec target;
  std::int64_t duration_ns = 5'000'000'000;
  std::int64_t interval_ns = 100'000'000;
  // A budget for the sampler's own cost: at most this many thread reads a second (about 2 µs
  // each, 15-20 µs for a thread that ran). Past it, threads take turns.
  std::int64_t max_thread_samples_per_s = 2000;
  std::string proc_root = "/proc";
  const std::atomic<bool>* stop = nullptr;  // optional: ends the window early when set
  // 0: system counters at the window's start and end only (a diagnosis); otherwise also this
  // often, with the sampler's own cost, so that any part of a recording can be replayed.
  std::int64_t system_every_ns = 0;
  // 0: fd tables, fd limits and sockets of the target's processes at the window's end only;
  // otherwise also this often (a readlink per fd: a recording keeps it rare).
  std::int64_t fd_table_every_ns = 0;
  // Windows follow each other (top, the agent): a thread that does not run is polled less and
  // less often, down to once every half window (at least 1 s, at most 4 s; 1 s otherwise), and at
  // a window's close the threads polled that rarely are not read again: a run of theirs since
  // their last poll is counted in the window of the poll that sees it (nothing is lost over the
  // session). false: every account is read at the close (diagnose).
  bool rolling = false;
  // For several samplers in one process (the agent's targets): windows close on a grid of
  // duration_ns of the monotonic clock and ticks fall on a grid of interval_ns (a session's first
  // window closes at the first grid point at least half a window after its start), so the
  // samplers read the host at the same instants and share those reads: the host's counters and
  // run queue (system_snapshot.h) within 100 ms, the TCP dump (tcp_table.h) within an interval.
  // Each shared read keeps the time it was taken. Needs rolling.
  bool shared_clock = false;
  // Read every thread's scheduler counters with one read() of a BPF task iterator a tick
  // (collect/bpf/task_iterator.h) instead of a pread of each thread's schedstat, when the kernel
  // and the privileges allow (root, BTF, Linux 5.8+); /proc otherwise. The counters are the same
  // kernel fields, so the time split does not change; the collector sample says which ran.
  bool task_iterator = true;
  // The exact mode (collect/sampler/exact_accounting.h): every tick also carries the kernel's
  // state accounting. kExact fails create() when the eBPF programs cannot load. nullopt: neither
  // the sums nor a word about them (top, the agent).
  std::optional<SplitMode> split_mode = std::nullopt;
  // The host target: after one full listing of /proc at the start, processes and threads that
  // appear or end are learnt from the kernel's process events (collect/netlink/proc_connector.h)
  // and only the processes they name are listed again; a lost event (the queue overflowed) costs
  // one full listing at the next tick. Without the events (not root, another pid namespace, no
  // CONFIG_PROC_EVENTS, or false here) /proc is listed every 0.5 to 2 s, as for other targets.
  // The collector sample says which (proc_events_on, full_listings, proc_events_lost).
  bool proc_events = true;
  // The event queue's size in bytes (0: ProcConnector's default). Tests make it tiny to overflow.
  int proc_events_receive_bytes = 0;
  // Blocks ending per CPU per second the exact mode accounts in full, then thins by length
  // (docs/exact-mode.md, "Cost and accuracy").
  std::uint32_t exact_budget_per_cpu_s = 5'000;
};

class Sampler {
 public:
  // Validates the target (it exists now). Errors carry hints.
  static util::Result<std::unique_ptr<Sampler>> create(SamplerOptions options);
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  // Samples for one window and hands every tick to `sink` (the last tick has closing set). When
  // every target process exits early, the window closes then, with target_exited set. Errors: the
  // target cannot be listed.
  //
  // The first call begins the stream (sink.begin, then a tick that reads every thread for the
  // first time). Each later call continues it with the next window, so one sampler serves a
  // whole session (top's frames, the agent's windows): its closing tick is the last window's, the
  // new window runs from there for duration_ns, and the threads' open files, last counters and
  // waits carry over; only threads and processes that appeared since are read for the first time.
  // Pass the same sink every time (model::ObservationSink cuts the windows at closing ticks).
  // REQUIRES: the last window did not end with target_exited.
  util::Result<void> run(model::SampleSink& sink);

 private:
  struct Impl;
  explicit Sampler(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace chokepoint::collect::sampler
