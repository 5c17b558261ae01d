// The sampler's session (sampler.h): create, the first tick, the tick loop and a window's close.
#include "collect/sampler/sampler.h"

#include "collect/sampler/sampler_impl.h"
#include "collect/sampler/tick_schedule.h"

namespace chokepoint::collect::sampler {
namespace {

std::string target_text(const TargetSpec& t) {
  switch (t.kind) {
    case TargetSpec::Kind::kPid: {
      std::string text = std::to_string(t.pid);
      for (pid_t p : t.more_pids) text += "," + std::to_string(p);
      return text;
    }
    case TargetSpec::Kind::kName:
      return t.name;
    case TargetSpec::Kind::kCgroup:
      return t.cgroup_path;
    case TargetSpec::Kind::kCommand:
      return t.command_text;
    case TargetSpec::Kind::kHost:
      return "all processes";
  }
  return "";
}

}  // namespace

Sampler::Sampler(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Sampler::~Sampler() = default;

util::Result<std::unique_ptr<Sampler>> Sampler::create(SamplerOptions options) {
  if (options.duration_ns <= 0) {
    return util::Error{"the duration must be above 0", "pass e.g. --duration 5s", EINVAL};
  }
  if (options.interval_ns <= 0 || options.interval_ns > options.duration_ns) {
    return util::Error{"the interval must be above 0 and at most the duration",
                       "pass e.g. --interval 50ms", EINVAL};
  }
  auto impl = std::make_unique<Impl>(std::move(options));
  auto ok = validate(impl->opt.target, impl->proc);
  if (!ok) return ok.error();
  if (impl->opt.split_mode) {
    auto exact = ExactAccounting::create(*impl->opt.split_mode, impl->opt.exact_budget_per_cpu_s);
    if (!exact) return exact.error();
    impl->exact = std::move(*exact);
  }
  return std::unique_ptr<Sampler>(new Sampler(std::move(impl)));
}

model::CollectorSample Sampler::Impl::collector_sample() const {
  model::CollectorSample c;
  {
    std::ifstream in(opt.proc_root + "/sys/kernel/task_delayacct");
    int on = 0;
    c.delayacct_readable = static_cast<bool>(in >> on);
    c.delayacct_on = c.delayacct_readable && on == 1;
  }
  c.taskstats_open = taskstats.has_value();
  c.taskstats_problem = taskstats_error;
  const auto& fs = waits.stack_stats();
  c.stack_scans = fs.scans;
  c.stack_named = fs.named;
  c.stack_cache_hits = fs.cache_hits;
  c.stack_problem = waits.stack_problem();
  c.socket_problem = waits.socket_problem();
  c.socket_order_tried = waits.socket_order_tried();
  c.socket_order_on = waits.socket_order_on();
  c.socket_order_problem = waits.socket_order_problem();
  c.task_iterator_on = iter != nullptr;
  c.task_iterator_problem = iter_problem;
  c.proc_events_on = proc_events.has_value();
  c.proc_events_problem = proc_events_problem;
  c.full_listings = full_listings;
  c.proc_events_lost = proc_events_lost;
  if (c.socket_problem.empty() && !tcp_table_problem.empty())
    c.socket_problem = "TCP state table: " + tcp_table_problem;
  if (opt.target.kind != TargetSpec::Kind::kHost && !all_pids_seen.empty()) {
    c.cpus_allowed = cpus_allowed_for(*all_pids_seen.begin(), proc);
  }
  rusage ru1{};
  getrusage(RUSAGE_THREAD, &ru1);
  auto tv_ns = [](const timeval& tv) {
    return static_cast<std::int64_t>(tv.tv_sec) * util::kNsPerSec +
           static_cast<std::int64_t>(tv.tv_usec) * 1000;
  };
  c.cpu_ns = tv_ns(ru1.ru_utime) - tv_ns(ru0.ru_utime) + tv_ns(ru1.ru_stime) - tv_ns(ru0.ru_stime);
  c.rss_bytes = static_cast<std::uint64_t>(ru1.ru_maxrss) * 1024;
  c.thread_samples = thread_samples;
  c.deep_samples = deep_samples;
  return c;
}

void Sampler::Impl::emit(model::SampleSink& sink, std::int64_t at_ns) {
  tick.at_ns = at_ns;
  tick.sockets = waits.take_socket_samples();
  if (exact) {
    std::vector<int> pids;
    for (const auto& [pid, p] : processes) pids.push_back(pid);
    exact->fill(tick, pids, [this, at_ns](int pid, long nr, std::uint64_t fd) {
      return waits.fd_in_call(pid, nr, fd, at_ns);
    });
  }
  sink.add(std::move(tick));
  tick = model::Tick{};
  iter_fresh = false;
}

util::Result<std::int64_t> Sampler::Impl::begin(model::SampleSink& sink) {
  // The sampler runs on the calling thread only: its cost is that thread's, not that of a load
  // generator sharing the process (diagnose --load, knee).
  getrusage(RUSAGE_THREAD, &ru0);
  model::RecordingInfo info;
  info.target.kind = kind_name(opt.target.kind);
  info.target.spec = target_text(opt.target);
  info.interval_ns = opt.interval_ns;
  sink.begin(info);
  // The target's processes are watched before the first read, so that read has every thread; the
  // exact mode's programs follow them from here, so that a block that begins before the window
  // is timed whole (exact_accounting.h).
  const bool iter_watch = iter && opt.target.kind != TargetSpec::Kind::kHost;
  std::vector<int> target_pids;
  if (iter_watch || (exact && exact->on())) {
    if (auto pids = resolve_pids(opt.target, proc)) target_pids = std::move(*pids);
  }
  if (exact) exact->watch(target_pids);
  tick.system = take_system_snapshot(proc, opt.target, shared_read_ns());
  const std::int64_t start_ns = util::monotonic_ns();
  tick.at_ns = start_ns;
  if (iter_watch) {
    for (int pid : target_pids) (void)iter->watch(pid);
  }
  read_iterator();
  // The kernel's sums at the window's start, with schedstat's: the first tick's (not read at its
  // emit, after the first listing).
  if (exact) exact->mark_start();
  next_iter_ns = start_ns + iter_every_ns;
  auto first = refresh(start_ns);
  if (!first) return first.error();
  add_tcp_table(start_ns);
  emit(sink, start_ns);
  return start_ns;
}

util::Result<void> Sampler::run(model::SampleSink& sink) {
  Impl& s = *impl_;
  std::int64_t start_ns = s.last_close_ns;
  if (start_ns == 0) {
    auto began = s.begin(sink);
    if (!began) return began.error();
    start_ns = *began;
  }
  // The listing's schedule carries over from window to window (one session, one schedule).
  if (s.next_refresh_ns == 0) s.next_refresh_ns = start_ns + kRefreshTargetNs;
  std::int64_t& next_refresh = s.next_refresh_ns;
  std::int64_t next_system = start_ns;
  std::int64_t next_counters = start_ns + s.opt.system_every_ns;
  std::int64_t next_fd_tables = start_ns + s.opt.fd_table_every_ns;
  constexpr std::int64_t kForever = std::numeric_limits<std::int64_t>::max();
  std::int64_t deadline =
      s.opt.duration_ns >= kForever - start_ns ? kForever : start_ns + s.opt.duration_ns;
  // A later window's first tick is one interval after the last window's close, or now when the
  // caller took longer than that between windows (the quiet time in between is accounted as any
  // other: the windows stay back to back).
  // The ticks' grid; each reads at a point of its interval (tick_schedule.h), not on the grid.
  std::int64_t next_grid = std::max(start_ns + s.opt.interval_ns, util::monotonic_ns());
  if (s.opt.shared_clock && deadline != kForever) {
    deadline = grid_point(start_ns + s.opt.duration_ns / 2, s.opt.duration_ns);
    next_grid = std::min(
        grid_point(std::max(start_ns + 1, util::monotonic_ns()), s.opt.interval_ns), deadline);
  }
  std::int64_t next_tick = tick_time_ns(next_grid, s.opt.interval_ns, deadline);
  bool exited = false;

  for (;;) {
    std::int64_t now = util::monotonic_ns();
    if (now < next_tick) {
      timespec ts{static_cast<time_t>((next_tick - now) / util::kNsPerSec),
                  static_cast<long>((next_tick - now) % util::kNsPerSec)};
      nanosleep(&ts, nullptr);
      continue;
    }
    now = util::monotonic_ns();
    s.tick.at_ns = now;
    // The host's process events are read every tick, so the queue does not fill between
    // refreshes; lost ones make this tick's listing a full one.
    if (s.drain_proc_events()) next_refresh = now;
    // Every iter_every_ns, one read of the iterator checks every thread, parked ones included;
    // also whenever enough threads are due that their own reads would cost more. Not at the
    // window's last tick: the close reads it right after. A listing that lists the threads reads
    // it too (refresh): the listing takes the threads from it.
    bool iter_tick = s.iter && now >= s.next_iter_ns && now < deadline;
    if (s.iter && !iter_tick && now < deadline && now >= s.next_due_ns) {
      std::size_t due = 0;
      for (const auto& key : s.polled) due += s.threads.at(key).next_poll_ns <= now ? 1 : 0;
      iter_tick = due * kIterThreadsPerProcRead >= s.threads.size();
    }
    if (iter_tick) s.read_iterator();
    if (now >= next_refresh) {
      // Threads are listed at least once an iterator period (a listing with a fresh read costs
      // no more than the read), and in between only when a process's thread count moved.
      const bool quick_ok = s.iter && !s.iter_fresh && s.last_full_listing_ns >= 0 &&
                            now - s.last_full_listing_ns < s.iter_every_ns;
      auto r = s.refresh(now, quick_ok);
      if (!r) return r.error();
      // Listing a large target's threads costs milliseconds: re-list it less often.
      next_refresh = now + (s.threads.size() > 1000 ? 4 : 1) * kRefreshTargetNs;
      if (s.threads.empty()) {
        exited = true;
        break;
      }
    }
    // At most budget thread reads per tick, in round-robin order from where the last tick
    // stopped, so a target with thousands of threads costs a bounded amount and every thread
    // gets its turn. A thread sampled less often still gets exact counters (they are cumulative);
    // only its state is observed less often.
    // With the iterator most threads are parked: a tick before the earliest poll visits none.
    if (s.iter && !s.iter_fresh && now >= s.next_due_ns) {
      // Between iterator reads only the threads with a poll of their own can be due: visit
      // those, in turn from where the last tick stopped.
      s.due_scratch.clear();
      auto from = s.polled.lower_bound(s.cursor);
      s.due_scratch.insert(s.due_scratch.end(), from, s.polled.end());
      s.due_scratch.insert(s.due_scratch.end(), s.polled.begin(), from);
      std::int64_t budget = s.samples_per_tick;
      std::int64_t next_due = std::numeric_limits<std::int64_t>::max();
      std::size_t visited = 0;
      for (; visited < s.due_scratch.size() && budget > 0; ++visited) {
        ThreadState& t = s.threads.at(s.due_scratch[visited]);
        if (s.sample_thread(t, now)) --budget;
        next_due = std::min(next_due, t.next_poll_ns);
      }
      s.cursor =
          visited < s.due_scratch.size() ? s.due_scratch[visited] : std::pair<int, int>{0, 0};
      s.next_due_ns = visited == s.due_scratch.size() ? next_due : 0;
    } else if (s.iter_fresh || now >= s.next_due_ns) {
      std::int64_t budget = s.samples_per_tick;
      std::int64_t next_due = std::numeric_limits<std::int64_t>::max();
      auto it = s.threads.lower_bound(s.cursor);
      std::size_t visited = 0;
      for (; visited < s.threads.size() && budget > 0; ++visited) {
        if (it == s.threads.end()) it = s.threads.begin();
        if (s.sample_thread(it->second, now, s.iter_fresh)) --budget;
        next_due = std::min(next_due, it->second.next_poll_ns);
        ++it;
      }
      s.cursor = it == s.threads.end() ? std::pair<int, int>{0, 0} : it->first;
      // Known only when every thread was visited.
      s.next_due_ns = visited == s.threads.size() ? next_due : 0;
    }
    // Lock waits that coincide with a disk sync in the same process are credited per tick.
    s.tick.lock_credit_ns = s.opt.interval_ns;
    // These follow the grid: a tick read early in its interval still stands for all of it.
    if (next_grid >= next_system) {
      s.tick.runnable = take_runnable(s.proc, s.shared_read_ns());
      next_system = next_grid + kSystemTickNs;
    }
    if (s.opt.fd_table_every_ns > 0 && next_grid >= next_fd_tables) {
      s.read_fd_tables(now);
      next_fd_tables = next_grid + s.opt.fd_table_every_ns;
    }
    if (s.opt.system_every_ns > 0 && next_grid >= next_counters) {
      s.tick.system = take_system_snapshot(s.proc, s.opt.target, s.shared_read_ns());
      s.tick.collector = s.collector_sample();
      next_counters = next_grid + s.opt.system_every_ns;
    }
    s.emit(sink, now);
    if (s.opt.stop && s.opt.stop->load()) break;
    if (now >= deadline) break;
    next_grid = std::min(next_grid + s.opt.interval_ns, deadline);
    next_tick = tick_time_ns(next_grid, s.opt.interval_ns, deadline);
  }
  const std::int64_t end_ns = util::monotonic_ns();
  s.tick.at_ns = end_ns;
  s.read_iterator();
  // Threads that were backing off get their last read too, so every account covers the window
  // up to its end. In a rolling session, threads quiet for the longest backoff do not: what they
  // did since their last poll is counted in the next window (the one that reads it), nothing is
  // lost, and an idle host thread costs one read a backoff instead of one more a window.
  // With the iterator's read every thread's close costs nothing more: all of them are read.
  for (auto& [key, t] : s.threads) {
    if (s.opt.rolling && !s.iter_fresh && t.poll_backoff_ns >= s.max_backoff_ns) continue;
    if (t.last_sample_ns < end_ns) {
      t.next_poll_ns = 0;
      s.sample_thread(t, end_ns);
    }
  }
  s.next_due_ns = 0;  // the close moved polls: the next tick visits every thread again
  // The processes' counters at the close too: the next window of the session starts from them.
  for (auto& [pid, p] : s.processes) {
    if (p.threads_watched > 0) s.read_process(p, end_ns, false, s.opt.rolling && s.iter_fresh);
  }
  s.read_fd_tables(end_ns);
  s.tick.system = take_system_snapshot(s.proc, s.opt.target, s.shared_read_ns());
  s.add_tcp_table(end_ns);
  s.add_shm_snapshot();
  s.add_rlimit_snapshot();
  s.tick.closing = true;
  s.tick.target_exited = exited;
  s.tick.collector = s.collector_sample();
  s.emit(sink, end_ns);
  s.last_close_ns = end_ns;
  return {};
}
}  // namespace chokepoint::collect::sampler
