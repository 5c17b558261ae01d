#include "app/stack_recorder.h"

#include <fmt/format.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>

#include "analysis/stack_evidence.h"
#include "app/stack_capture.h"
#include "collect/bpf/offcpu_profile.h"
#include "collect/bpf/offcpu_tracer.h"
#include "collect/perf/perf_sampler.h"
#include "collect/procfs/proc_fs.h"
#include "profile/aggregate.h"
#include "profile/folded.h"
#include "render/flamegraph_folded.h"
#include "util/fatal.h"
#include "util/plural.h"

namespace chokepoint::app {
namespace {

using Kind = collect::sampler::TargetSpec::Kind;

constexpr const char* kOnCpuName = kRecordedOnCpuSource;
constexpr const char* kOffCpuName = kRecordedOffCpuSource;
// Off-CPU blocks per CPU per second traced with their stacks; above it they are sampled and
// weighed (collect/bpf/offcpu_tracer.h): a stack walk costs microseconds, so this bounds the
// recorder's share of a busy service's context switches.
constexpr std::uint32_t kRecordBlocksPerCpuPerS = 200;
// How often the target's processes are re-resolved (new processes followed).
constexpr std::int64_t kRefreshNs = util::kNsPerSec;

bool is_cgroup2(const std::string& path) {
  struct statfs fs {};
  return statfs(path.c_str(), &fs) == 0 &&
         static_cast<unsigned long>(fs.f_type) == CGROUP2_SUPER_MAGIC;
}

// Folded text -> rows: "frames value" lines, split at the last blank.
std::vector<store::FoldedCount> folded_rows(const profile::Profile& p) {
  std::vector<store::FoldedCount> out;
  const std::string text = render::folded(p);
  std::string_view rest = text;
  while (!rest.empty()) {
    const std::size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    const std::size_t blank = line.rfind(' ');
    if (blank == std::string_view::npos) continue;
    std::uint64_t value = 0;
    for (char c : line.substr(blank + 1)) {
      if (c < '0' || c > '9') break;
      value = value * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (value > 0) out.push_back({std::string(line.substr(0, blank)), value});
  }
  return out;
}

}  // namespace

struct StackRecorder::State {
  StackRecorderOptions options;
  std::unique_ptr<symbolize::Symbolizer> symbolizer;
  std::unique_ptr<SymbolizerResolver> resolver;
  std::optional<collect::perf::PerfSampler> perf;
  bool filter_pids = false;  // on-CPU events see other processes: keep the target's
  std::unique_ptr<collect::bpf::OffCpuTracer> tracer;
  bool follow = false;        // the target is a set of processes, re-resolved
  bool tracer_tgids = false;  // the tracer filters by process (add_target)
  std::set<int> pids;         // every target process seen
  model::Source on{kOnCpuName, false, {}, {}}, off{kOffCpuName, false, {}, {}};
  std::uint64_t lost_blocks_before = 0;
  std::uint64_t slices = 0, samples = 0, blocks = 0;

  std::mutex mu;  // guards ready
  std::vector<store::StackSlice> ready;
  std::atomic<bool> stop{false};
  std::thread thread;

  void refresh() {
    if (!follow) return;
    auto now = collect::sampler::resolve_pids(options.target, collect::procfs::ProcFs());
    if (!now) return;
    for (int pid : *now) {
      if (!pids.insert(pid).second) continue;
      resolver->attach_once(pid);
      if (tracer && tracer_tgids) (void)tracer->add_target(pid);
    }
  }

  void open();
  // The current slice's on-CPU samples, and those the kernel dropped (the rings were full).
  profile::StackAggregator aggregator;
  std::uint64_t slice_lost = 0, lost_samples_before = 0;

  void read(std::int64_t ns);
  void run();
  void cut(std::int64_t from_ns, std::int64_t to_ns);
};

void run_slices(std::int64_t slice_ns, std::int64_t step_ns, const std::atomic<bool>& stop,
                const std::function<void(std::int64_t ns)>& read,
                const std::function<void(std::int64_t from_ns, std::int64_t to_ns)>& cut) {
  // What arrives while one slice is symbolized (samples left in the rings, blocks in the tracer's
  // map) is read into the next.
  std::int64_t from_ns = util::monotonic_ns();
  while (!stop.load()) {
    const std::int64_t end_ns = from_ns + slice_ns;
    while (!stop.load()) {
      const std::int64_t now = util::monotonic_ns();
      if (now >= end_ns) break;
      read(std::min(step_ns, end_ns - now));
    }
    read(0);
    const std::int64_t to_ns = util::monotonic_ns();
    cut(from_ns, to_ns);
    from_ns = to_ns;
  }
}

void StackRecorder::State::read(std::int64_t ns) {
  if (ns > 0) refresh();
  if (perf) {
    auto ran = perf->run(ns, &stop,
                         [&](const collect::perf::Sample& s, std::string_view process_name,
                             std::string_view thread_name) {
                           const auto pid = static_cast<int>(s.pid);
                           if (pid == 0) return;  // the idle task
                           if (filter_pids && pids.count(pid) == 0) return;
                           resolver->attach_once(pid);
                           aggregator.add({.pid = pid,
                                           .tid = static_cast<int>(s.tid),
                                           .process_name = process_name,
                                           .thread_name = thread_name,
                                           .kernel_ips = s.kernel_ips,
                                           .user_ips = s.user_ips});
                         });
    if (ran) {
      // The run's counts are the sampler's totals since it opened.
      const std::uint64_t lost_total = ran->records.lost;
      slice_lost += lost_total - std::min(lost_total, lost_samples_before);
      lost_samples_before = lost_total;
    } else {
      on.available = false;
      on.detail = "on-CPU sampling stopped: " + ran.error().message;
      on.hint = ran.error().hint;
      perf.reset();
    }
  } else {
    // Nothing to drain: the off-CPU tracer sums in the kernel. Sleep, waking for stop.
    const std::int64_t until = util::monotonic_ns() + ns;
    while (!stop.load() && util::monotonic_ns() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

void StackRecorder::State::run() {
  run_slices(
      options.slice_ns, kRefreshNs, stop, [this](std::int64_t ns) { read(ns); },
      [this](std::int64_t from_ns, std::int64_t to_ns) {
        cut(from_ns, to_ns);
        aggregator = profile::StackAggregator();
        slice_lost = 0;
      });
}

void StackRecorder::State::cut(std::int64_t from_ns, std::int64_t to_ns) {
  // The off-CPU blocks are drained first, at the slice's end: symbolizing the on-CPU samples
  // takes seconds beside CPU hogs, and blocks drained after it belonged to the next slice.
  auto drained = tracer ? std::optional(tracer->drain()) : std::nullopt;
  std::vector<store::StackSlice> out;
  if (perf) {
    profile::Profile p;
    p.weight = profile::Weight::kSamples;
    aggregator.build(*resolver, p);
    store::StackSlice s{.kind = store::StackKind::kOnCpu,
                        .from_ns = from_ns,
                        .to_ns = to_ns,
                        .frequency_hz = options.frequency_hz,
                        .lost = slice_lost,
                        .stacks = folded_rows(p)};
    samples += aggregator.total_value();
    out.push_back(std::move(s));
  }
  if (drained && !*drained) {
    off.available = false;
    off.detail = "off-CPU tracing stopped: " + drained->error().message;
    off.hint = drained->error().hint;
    tracer.reset();
  } else if (drained) {
    const auto& r = **drained;
    std::set<int> attached(pids.begin(), pids.end());
    const profile::Profile p = collect::bpf::to_profile(
        r, *symbolizer,
        {.wakers = collect::bpf::WakerLayout::kAppended, .attached_pids = attached});
    const std::uint64_t lost_now = r.drops.counts_full + r.drops.start_full;
    for (const auto& rec : r.records) blocks += rec.count;
    out.push_back({.kind = store::StackKind::kOffCpu,
                   .from_ns = from_ns,
                   .to_ns = to_ns,
                   .lost = lost_now - std::min(lost_now, lost_blocks_before),
                   .stacks = folded_rows(p)});
    lost_blocks_before = lost_now;
  }
  if (out.empty()) return;
  ++slices;
  const std::lock_guard lock(mu);
  for (auto& s : out) ready.push_back(std::move(s));
}

StackRecorder::StackRecorder(std::unique_ptr<State> state) : state_(std::move(state)) {}
StackRecorder::~StackRecorder() {
  stop();
}

// Opens the symbolizer, the perf events and the off-CPU tracer; what cannot be opened says why in
// its source. On the recorder's own thread: loading the BPF programs takes a second on a busy
// machine, and the recording's first tick does not wait for it.
void StackRecorder::State::open() {
  State* st = this;
  const auto& t = options.target;
  const std::string every =
      fmt::format("folded every {:g} s", static_cast<double>(options.slice_ns) / 1e9);
  auto symbolizer = symbolize::Symbolizer::create();
  if (!symbolizer) {
    for (model::Source* s : {&st->on, &st->off}) {
      s->detail = "stacks cannot be named: " + symbolizer.error().message;
      s->hint = symbolizer.error().hint;
    }
    return;
  }
  st->symbolizer = std::move(*symbolizer);
  st->resolver = std::make_unique<SymbolizerResolver>(*st->symbolizer);
  const bool cgroup2 = t.kind == Kind::kCgroup && is_cgroup2(t.cgroup_path);
  st->follow = t.kind != Kind::kHost && !cgroup2;
  st->refresh();

  // On-CPU: per-CPU events, the target's processes kept (a cgroup v2 group filtered by the
  // kernel).
  collect::perf::PerfOptions po;
  po.target.kind = cgroup2 ? Kind::kCgroup : Kind::kHost;
  po.target.cgroup_path = cgroup2 ? t.cgroup_path : std::string();
  po.frequency_hz = options.frequency_hz;
  po.drain_interval_ns = 250 * util::kNsPerMs;
  // The rings hold 4 s of samples, not 1 s (four drain intervals): they are not drained while a
  // slice is symbolized, which took 3.8 s beside 4 CPU hogs on 2 cores. What overflows them is
  // counted in the next slice's lost.
  po.ring_data_pages = collect::perf::ring_pages_for(
      options.frequency_hz, util::kNsPerSec, static_cast<std::size_t>(sysconf(_SC_PAGESIZE)));
  auto perf = collect::perf::PerfSampler::open(po);
  if (perf) {
    st->filter_pids = st->follow;
    st->on.available = true;
    st->on.detail = fmt::format("{} samples at {:g} Hz per CPU, {}", perf->info().event_name,
                                options.frequency_hz, every);
    st->perf.emplace(std::move(*perf));
  } else {
    st->on.detail = "no on-CPU stacks: " + perf.error().message;
    st->on.hint = perf.error().hint;
  }

  // Off-CPU: the eBPF tracer, filtered in the kernel by process or cgroup v2 group.
  if (!options.off_cpu) {
    st->off.detail = "not traced (--stacks on-cpu, the default)";
    st->off.hint =
        "record with --stacks on to keep off-CPU stacks and their wakers too (a BPF program at "
        "every context switch of the machine: about 0.45 us each, docs/recording.md)";
  } else if (auto ok = collect::bpf::check_offcpu_support(); !ok) {
    st->off.detail = "no off-CPU stacks: " + ok.error().message;
    st->off.hint = ok.error().hint;
  } else {
    collect::bpf::OffCpuOptions o;
    o.full_blocks_per_cpu_per_s = kRecordBlocksPerCpuPerS;
    if (cgroup2) o.cgroup_path = t.cgroup_path;
    if (st->follow) {
      o.tgids.assign(st->pids.begin(), st->pids.end());
      st->tracer_tgids = true;
    }
    util::Result<void> started;
    if (st->follow && o.tgids.empty()) {
      started =
          util::Error{"the target has no process to trace", "check that it is running", ESRCH};
    } else if (auto tracer = collect::bpf::OffCpuTracer::create(o); !tracer) {
      started = tracer.error();
    } else {
      st->tracer = std::move(*tracer);
      started = st->tracer->start();
      if (!started) st->tracer.reset();
    }
    if (started) {
      st->off.available = true;
      st->off.detail = fmt::format(
          "blocked time of at least {} us with the waker's stack, the first {} blocks a CPU a "
          "second in full (sampled above), {}",
          o.min_block_ns / 1000, kRecordBlocksPerCpuPerS, every);
    } else {
      st->off.detail = "no off-CPU stacks: " + started.error().message;
      st->off.hint = started.error().hint;
    }
  }
}

std::unique_ptr<StackRecorder> StackRecorder::start(const StackRecorderOptions& options) {
  auto st = std::make_unique<State>();
  st->options = options;
  State* raw = st.get();
  st->thread = std::thread([raw] {
    raw->open();
    if (raw->perf || raw->tracer) raw->run();
  });
  return std::unique_ptr<StackRecorder>(new StackRecorder(std::move(st)));
}

std::vector<store::StackSlice> StackRecorder::take() {
  const std::lock_guard lock(state_->mu);
  std::vector<store::StackSlice> out;
  out.swap(state_->ready);
  return out;
}

void StackRecorder::stop() {
  state_->stop.store(true);
  if (state_->thread.joinable()) state_->thread.join();
}

std::vector<model::Source> StackRecorder::sources() const {
  std::vector<model::Source> out{state_->on, state_->off};
  if (!state_->thread.joinable() && state_->slices > 0) {
    if (out[0].available) {
      out[0].detail += fmt::format("; {} in {}", util::count_of(state_->samples, "sample"),
                                   util::count_of(state_->slices, "slice"));
    }
    if (out[1].available) {
      out[1].detail += fmt::format("; {} in {}", util::count_of(state_->blocks, "block"),
                                   util::count_of(state_->slices, "slice"));
    }
  }
  return out;
}

std::string stack_sources_note(const std::vector<model::Source>& sources, double frequency_hz,
                               std::int64_t slice_ns) {
  nlohmann::json j = {{"frequency_hz", frequency_hz},
                      {"slice_s", static_cast<double>(slice_ns) / 1e9},
                      {"sources", nlohmann::json::array()}};
  for (const auto& s : sources) {
    j["sources"].push_back(
        {{"name", s.name}, {"available", s.available}, {"detail", s.detail}, {"hint", s.hint}});
  }
  return j.dump();
}

std::vector<model::Source> recorded_stack_sources(const store::RecordingReader& reader) {
  std::vector<model::Source> out;
  const auto text = reader.note("record_stacks");
  if (!text) return out;
  const auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object() || !j.contains("sources") || !j["sources"].is_array()) return out;
  // The note is data from elsewhere: any member may be missing or of another type.
  auto text_of = [](const nlohmann::json& o, const char* key) {
    const auto it = o.find(key);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  for (const auto& s : j["sources"]) {
    if (!s.is_object()) continue;
    model::Source src;
    src.name = text_of(s, "name");
    const auto available = s.find("available");
    src.available = available != s.end() && available->is_boolean() && available->get<bool>();
    src.detail = text_of(s, "detail");
    src.hint = text_of(s, "hint");
    if (src.name == kOnCpuName || src.name == kOffCpuName) out.push_back(std::move(src));
  }
  return out;
}

util::Result<RecordedStacks> read_recorded_stacks(const store::RecordingReader& reader,
                                                  std::int64_t from_ns, std::int64_t to_ns) {
  RecordedStacks out;
  auto on = reader.stack_slices(store::StackKind::kOnCpu, from_ns, to_ns);
  if (!on) return on.error();
  auto off = reader.stack_slices(store::StackKind::kOffCpu, from_ns, to_ns);
  if (!off) return off.error();
  out.on_cpu = std::move(*on);
  out.off_cpu = std::move(*off);
  return out;
}

namespace {

// Values summed by stack over the slices that overlap a span; the slices' count and time.
struct Merged {
  std::map<std::string, std::uint64_t> values;
  std::size_t slices = 0;
  double seconds = 0;
  double frequency_hz = 0;
  std::uint64_t lost = 0;
};

Merged merge(const std::vector<store::StackSlice>& slices, const std::vector<TimeSpan>& spans) {
  Merged m;
  for (const auto& s : slices) {
    const bool in = std::any_of(spans.begin(), spans.end(), [&](const TimeSpan& t) {
      return s.to_ns > t.from_ns && s.from_ns < t.to_ns;
    });
    if (!in) continue;
    ++m.slices;
    m.seconds += static_cast<double>(s.to_ns - s.from_ns) / 1e9;
    m.frequency_hz = std::max(m.frequency_hz, s.frequency_hz);
    m.lost += s.lost;
    for (const auto& c : s.stacks) {
      std::uint64_t& v = m.values[c.frames];
      v = c.value > UINT64_MAX - v ? UINT64_MAX : v + c.value;  // a hostile file's huge values
    }
  }
  return m;
}

}  // namespace

std::optional<profile::Profile> merge_slices(const std::vector<store::StackSlice>& slices,
                                             const std::vector<TimeSpan>& spans,
                                             const std::string& what) {
  const Merged m = merge(slices, spans);
  if (m.slices == 0) return std::nullopt;
  const bool off = !slices.empty() && slices.front().kind == store::StackKind::kOffCpu;
  profile::Profile p;
  p.off_cpu = off;
  p.weight = off ? profile::Weight::kNanoseconds : profile::Weight::kSamples;
  p.frequency_hz = off ? 0 : m.frequency_hz;
  p.duration_s = m.seconds;
  p.lost_samples = m.lost;
  p.title = off ? fmt::format("{}: off-CPU time, {:.0f} s in {}", what, m.seconds,
                              util::count_of(m.slices, "slice"))
                : fmt::format("{}: on-CPU, {:g} Hz per CPU, {:.0f} s in {}", what, m.frequency_hz,
                              m.seconds, util::count_of(m.slices, "slice"));
  std::string text;
  for (const auto& [frames, value] : m.values) text += frames + " " + std::to_string(value) + "\n";
  if (auto ok = profile::parse_folded(text, p); !ok) {
    p.notes.push_back("some stacks could not be read back: " + ok.error().message);
  }
  return p;
}

std::vector<std::string> recorded_stack_evidence(const RecordedStacks& stacks,
                                                 const std::vector<TimeSpan>& spans,
                                                 analysis::Verdict verdict) {
  if (verdict == analysis::Verdict::kNone) return {};
  const bool on_cpu = verdict == analysis::Verdict::kCpu;
  const auto merged = merge_slices(on_cpu ? stacks.on_cpu : stacks.off_cpu, spans, "evidence");
  if (!merged) return {};
  return analysis::stack_evidence(verdict, on_cpu ? &*merged : nullptr, on_cpu ? nullptr : &*merged)
      .lines;
}

nlohmann::json recorded_stacks_json(const RecordedStacks& stacks) {
  auto one = [](const std::vector<store::StackSlice>& slices) -> nlohmann::json {
    if (slices.empty()) return nullptr;
    const Merged m = merge(slices, {{INT64_MIN, INT64_MAX}});
    std::vector<std::pair<std::string, std::uint64_t>> rows(m.values.begin(), m.values.end());
    std::stable_sort(rows.begin(), rows.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    nlohmann::json folded = nlohmann::json::array();
    for (const auto& [frames, value] : rows) folded.push_back({frames, value});
    return {{"slices", m.slices},
            {"seconds", m.seconds},
            {"frequency_hz", m.frequency_hz},
            {"lost", m.lost},
            {"folded", std::move(folded)}};
  };
  return {{"on_cpu", one(stacks.on_cpu)}, {"off_cpu", one(stacks.off_cpu)}};
}

void SliceWritingSink::add(model::Tick tick) {
  writer_.add(std::move(tick));
  flush();
}

void SliceWritingSink::flush() {
  if (stacks_ == nullptr) return;
  for (const auto& s : stacks_->take()) {
    if (auto ok = writer_.add_stack_slice(s); !ok) {
      if (lost_++ == 0) util::print_error(ok.error());
    } else {
      ++written_;
    }
  }
}

}  // namespace chokepoint::app
