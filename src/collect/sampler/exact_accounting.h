#pragma once
// The exact mode of the time split: the kernel's state accounting (collect/bpf/state_accounting.h)
// turned into the per-tick record model::ExactSample, for the sampler to add to each tick. The
// model (model/builder.h) splits each thread's off-CPU time by these sums, classifying each
// (system call, wait object) as the sampler classifies the same thread's wait on it.
//
// Thread-safety: the sampler's thread only.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "collect/bpf/state_accounting.h"
#include "model/samples.h"
#include "util/result.h"

namespace chokepoint::collect::sampler {

enum class SplitMode : std::uint8_t {
  kAuto = 0,  // exact where the eBPF programs load (root, BTF), else sampled with the reason
  kExact,     // exact, or an error
  kSample,    // the sampled split only
};

std::string_view split_mode_name(SplitMode mode);
// "exact", "sample", "auto"; nullopt for anything else.
std::optional<SplitMode> parse_split_mode(std::string_view text);

// Which fds of the kernel's sums the collector resolves at a tick, for the model to class and
// name a wait no sampled read caught (model::FdName). A (pid, system call, fd) of a call with an
// fd argument is named the first time a sum of it moves; again when its sum moves kRenameNs or
// more after it was last named (an fd number is another file or connection once reused: a long
// session, top or the agent, would keep a stale name); at most kPerTick a tick, the oldest
// first. A process that leaves the target is forgotten.
class FdNaming {
 public:
  // What fd `fd` of process `pid` is to a thread blocked in system call `nr` on it (the
  // sampler's WaitObserver::fd_in_call); {kUnknown, ""} when it cannot tell (closed).
  using Namer =
      std::function<std::pair<model::FdRole, std::string>(int pid, long nr, std::uint64_t fd)>;
  // Names looked up at one tick at most (a readlink, or a few µs for a socket, each): a target
  // that opened thousands of fds at once has them named over the next ticks.
  static constexpr std::size_t kPerTick = 64;
  static constexpr std::int64_t kRenameNs = 10'000'000'000;

  // Adds to x.fd_names what `namer` says of the fds of x.waits due a name (the target's
  // processes are `pids`; the tick is at now_ns). Unknown roles are left out.
  void name(model::ExactSample& x, const std::vector<int>& pids, std::int64_t now_ns,
            const Namer& namer);

 private:
  using Key = std::tuple<int, long, std::uint64_t>;
  static constexpr std::int64_t kQueued = -1;
  // When each (pid, call, fd) seen was last named (kQueued: waiting in queue_, oldest first),
  // and the pids both were last pruned for.
  std::map<Key, std::int64_t> named_at_;
  std::deque<Key> queue_;
  std::vector<int> pids_;
};

class ExactAccounting {
 public:
  // kSample: nothing is loaded and every fill says why. kExact: a refusal is the error (with its
  // hint). kAuto: a refusal is kept as the reason the split is sampled.
  static util::Result<std::unique_ptr<ExactAccounting>> create(SplitMode mode,
                                                               std::uint32_t budget_per_cpu_s);
  ~ExactAccounting();
  ExactAccounting(const ExactAccounting&) = delete;
  ExactAccounting& operator=(const ExactAccounting&) = delete;

  bool on() const { return tracer_ != nullptr; }
  // The window's start, in two steps around the sampler's first read of schedstat. watch(pids):
  // the kernel follows these processes from now on (fill's `pids` keep them current after), as
  // early as possible, since it times only the blocks it sees begin. mark_start(), at the
  // window's start: reads the sums, and the first fill gives that read, not one at its own,
  // later, time (after the first listing, 0.1 to 0.4 s here), which made everything the kernel
  // counted before it the window's baseline and so left that part of the window to the sampled
  // division (issue 16: the pipeline's hand-offs, which only the kernel's sums move).
  void watch(const std::vector<int>& pids);
  void mark_start();
  // Adds tick.exact: the target processes are `pids` from now on; the sums and the wait-for edges
  // that changed since the last fill (of the threads in `pids`), how futex words were waited
  // on where that is new (model::FutexOp), and what `name_fd` says of the fds of the sums due a
  // name (FdNaming); the kernel's entries of tick.ended's threads are dropped after their last
  // read. When off, only the first and the closing tick say why.
  void fill(model::Tick& tick, const std::vector<int>& pids, const FdNaming::Namer& name_fd);

 private:
  ExactAccounting() = default;
  // Adds to `x` the sums and edges of `live` processes that changed since the last read.
  void read_into(model::ExactSample& x, const std::vector<int>& live);
  SplitMode mode_ = SplitMode::kAuto;
  std::unique_ptr<bpf::StateAccounting> tracer_;
  std::string problem_, hint_;
  bool first_ = true;
  std::vector<int> watched_;                 // watch's pids
  std::optional<model::ExactSample> start_;  // mark_start's read, for the first fill
  // How each (pid, futex word) was waited on, as last put into a tick (model::FutexOp).
  std::map<std::pair<int, std::uint64_t>, std::uint8_t> futex_ops_;
  FdNaming fd_naming_;
};

}  // namespace chokepoint::collect::sampler
