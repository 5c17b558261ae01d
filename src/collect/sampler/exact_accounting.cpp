#include "collect/sampler/exact_accounting.h"

#include <algorithm>
#include <set>

namespace chokepoint::collect::sampler {

std::string_view split_mode_name(SplitMode mode) {
  switch (mode) {
    case SplitMode::kAuto:
      return "auto";
    case SplitMode::kExact:
      return "exact";
    case SplitMode::kSample:
      return "sample";
  }
  return "auto";
}

std::optional<SplitMode> parse_split_mode(std::string_view text) {
  for (SplitMode m : {SplitMode::kAuto, SplitMode::kExact, SplitMode::kSample}) {
    if (text == split_mode_name(m)) return m;
  }
  return std::nullopt;
}

ExactAccounting::~ExactAccounting() = default;

util::Result<std::unique_ptr<ExactAccounting>> ExactAccounting::create(
    SplitMode mode, std::uint32_t budget_per_cpu_s) {
  std::unique_ptr<ExactAccounting> self(new ExactAccounting());
  self->mode_ = mode;
  if (mode == SplitMode::kSample) {
    self->problem_ = "--mode sample";
    self->hint_ =
        "--mode exact (or auto, as root) splits the off-CPU time by every switch and "
        "wakeup, counted in the kernel";
    return self;
  }
  bpf::StateAccountingOptions options;
  options.budget_per_cpu_s = budget_per_cpu_s;
  // The file calls' on-CPU time: fentry where the kernel accepts it costs no other system call;
  // the raw_syscalls fallback costs every system call of the host (state_accounting.h), so only
  // an explicit --mode exact may load it, not auto.
  options.file_calls =
      mode == SplitMode::kExact ? bpf::FileCallTiming::kAny : bpf::FileCallTiming::kCheapOnly;
  auto tracer = bpf::StateAccounting::create(options);
  if (!tracer) {
    if (mode == SplitMode::kExact) {
      util::Error e = tracer.error();
      e.hint += e.hint.empty() ? "" : "; ";
      e.hint += "or use --mode sample (or auto) for the sampled time split";
      return e;
    }
    self->problem_ = tracer.error().message;
    self->hint_ = tracer.error().hint;
    return self;
  }
  self->tracer_ = std::move(*tracer);
  return self;
}

void ExactAccounting::watch(const std::vector<int>& pids) {
  if (!tracer_) return;
  // A refusal (more processes than the table holds) is reported by the first fill's own call.
  (void)tracer_->set_targets(pids);
  watched_ = pids;
}

void ExactAccounting::mark_start() {
  if (!tracer_ || !first_) return;
  start_.emplace();
  read_into(*start_, watched_);
}

void FdNaming::name(model::ExactSample& x, const std::vector<int>& pids, std::int64_t now_ns,
                    const Namer& namer) {
  if (pids != pids_) {
    const std::set<int> live(pids.begin(), pids.end());
    auto gone = [&](const Key& k) { return live.count(std::get<0>(k)) == 0; };
    std::erase_if(named_at_, [&](const auto& e) { return gone(e.first); });
    std::erase_if(queue_, gone);
    pids_ = pids;
  }
  for (const auto& w : x.waits) {
    if (model::fd_argument_index(w.syscall_nr) < 0) continue;
    auto [it, added] = named_at_.try_emplace(Key{w.pid, w.syscall_nr, w.object}, kQueued);
    if (added || (it->second != kQueued && now_ns - it->second >= kRenameNs)) {
      it->second = kQueued;
      queue_.push_back(it->first);
    }
  }
  for (std::size_t i = 0; i < kPerTick && !queue_.empty(); ++i) {
    const Key key = queue_.front();
    queue_.pop_front();
    named_at_[key] = now_ns;
    const auto& [pid, nr, fd] = key;
    auto [role, detail] = namer(pid, nr, fd);
    if (role != model::FdRole::kUnknown) x.fd_names.push_back({pid, fd, role, std::move(detail)});
  }
}

void ExactAccounting::read_into(model::ExactSample& x, const std::vector<int>& live_pids) {
  // Only the sums and edges that changed since the last read (the tracer keeps what it read).
  const std::set<int> live(live_pids.begin(), live_pids.end());
  for (const auto& s : tracer_->read()) {
    if (live.count(s.pid) == 0) continue;
    if (s.futex_how != 0) {
      auto [it, added] = futex_ops_.try_emplace({s.pid, s.object}, s.futex_how);
      if (added || it->second != s.futex_how) {
        it->second = s.futex_how;
        x.futex_ops.push_back({s.pid, s.object, s.futex_how});
      }
    }
    model::ExactWait w;
    w.pid = s.pid;
    w.tid = s.tid;
    w.start_time_ticks = s.start_time_ticks;
    w.kind = static_cast<model::ExactKind>(
        std::clamp(s.kind, 0, static_cast<int>(model::kExactKindCount) - 1));
    w.syscall_nr = s.syscall_nr;
    w.object = s.object;
    w.ns = s.ns;
    w.count = s.count;
    x.waits.push_back(w);
  }
  for (const auto& e : tracer_->read_edges()) {
    if (live.count(e.wakee_pid) == 0) continue;
    model::WakeEdge w;
    w.waker_pid = e.waker_pid;
    w.waker_tid = e.waker_tid;
    w.waker_kind = static_cast<model::WakerKind>(
        std::clamp(e.waker_kind, 0, static_cast<int>(model::kWakerKindCount) - 1));
    w.wakee_pid = e.wakee_pid;
    w.wakee_tid = e.wakee_tid;
    w.syscall_nr = e.syscall_nr;
    w.object = e.object;
    w.ns = e.ns;
    w.count = e.count;
    x.edges.push_back(w);
  }
}

void ExactAccounting::fill(model::Tick& tick, const std::vector<int>& pids,
                           const FdNaming::Namer& name_fd) {
  model::ExactSample x;
  x.state.mode = std::string(split_mode_name(mode_));
  if (!tracer_) {
    if (!first_ && !tick.closing) return;
    first_ = false;
    x.state.problem = problem_;
    x.state.hint = hint_;
    tick.exact = std::move(x);
    return;
  }
  const bool first = first_;
  first_ = false;
  x.state.on = true;
  if (auto ok = tracer_->set_targets(pids); !ok) {
    x.state.problem = ok.error().message;  // the processes beyond the table's size go unaccounted
  }
  if (start_) {
    // The first tick's sums are those read at its time (mark_start).
    x.waits = std::move(start_->waits);
    x.edges = std::move(start_->edges);
    x.futex_ops = std::move(start_->futex_ops);
    start_.reset();
  } else {
    read_into(x, pids);
  }
  fd_naming_.name(x, pids, tick.at_ns, name_fd);
  // Threads that ended were read for the last time above.
  std::vector<bpf::StateAccounting::ThreadId> gone;
  for (const auto& e : tick.ended) gone.emplace_back(e.tid, e.start_time_ticks);
  tracer_->forget(gone);
  const auto st = tracer_->stats();
  x.state.switches = st.switches;
  x.state.thinned_out = st.thinned_out;
  x.state.lost = st.lost;
  x.state.thin_below_ns_max = st.thin_below_ns_max;
  x.state.budget_per_cpu_s = tracer_->budget_per_cpu_s();
  x.state.file_hook = std::string(bpf::file_call_hook_name(tracer_->file_hook()));
  // Why is the same at every tick: kept at the first and the closing one only (recordings keep
  // every tick's state).
  if (first || tick.closing) x.state.file_hook_problem = tracer_->file_hook_problem();
  tick.exact = std::move(x);
}

}  // namespace chokepoint::collect::sampler
