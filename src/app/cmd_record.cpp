// chokepoint record: watch a target continuously and keep its raw samples in a recording, at a
// low cost, within size and age limits, for chokepoint replay and diff.
#include <fmt/format.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <limits>
#include <memory>
#include <vector>

#include "app/cli_values.h"
#include "app/probe_options.h"
#include "app/recorded_window.h"
#include "app/stack_recorder.h"
#include "app/subcommand.h"
#include "app/target_session.h"
#include "app/version.h"
#include "collect/probes/probe.h"
#include "collect/procfs/proc_fs.h"
#include "collect/sampler/sampler.h"
#include "collect/sampler/target.h"
#include "store/recording.h"
#include "util/escape.h"
#include "util/fatal.h"
#include "util/stop_signal.h"

namespace chokepoint::app {
namespace {

std::atomic<bool>& g_stop = util::stop_flag();

struct RecordArgs {
  TargetArgs target;
  std::string output;
  std::string interval = "1s";
  std::string duration;  // empty: until Ctrl-C or the target exits
  std::string max_size;
  std::string keep_for;
  std::string mode = "auto";  // --mode: the time split
  // --stacks on|on-cpu|off. on-cpu by default: the off-CPU tracer runs at every context switch
  // and wakeup of the machine (4.8% of a core at 58k switches/s here, over the recorder's 1%).
  std::string stacks = "on-cpu";
  double stack_rate_hz = kDefaultStackRateHz;
  std::string stack_slice = "10s";
  ProbeArgs probes;
};

// Writes each tick and its stack slices (SliceWritingSink), then the probe polls made since.
class RecordSink : public model::SampleSink {
 public:
  RecordSink(SliceWritingSink& slices, ProbePollWriter& polls) : slices_(slices), polls_(polls) {}
  void begin(const model::RecordingInfo& info) override { slices_.begin(info); }
  void add(model::Tick tick) override {
    slices_.add(std::move(tick));
    polls_.flush();
  }

 private:
  SliceWritingSink& slices_;
  ProbePollWriter& polls_;
};

// Between one keyframe a minute and four per --keep-for span, so that age rotation drops little.
constexpr std::int64_t kKeyframeEveryNs = 60'000'000'000;
// fd tables and sockets are read this often (a readlink per fd).
constexpr std::int64_t kFdTableEveryNs = 10'000'000'000;

int run_record(const RecordArgs& a) {
  const std::int64_t interval_ns = parse_duration_ns(a.interval, "--interval");
  if (interval_ns < 10'000'000) {
    util::usage_error("--interval must be at least 10ms", "pass e.g. --interval 1s");
  }
  std::int64_t duration_ns = std::numeric_limits<std::int64_t>::max();
  if (!a.duration.empty()) {
    duration_ns = parse_duration_ns(a.duration, "--duration");
    if (duration_ns < interval_ns) {
      util::usage_error("--duration must be at least --interval", "pass e.g. --duration 1h");
    }
  }
  const collect::sampler::SplitMode split_mode = parse_split_mode_arg(a.mode);
  if (a.stacks != "on" && a.stacks != "on-cpu" && a.stacks != "off") {
    util::usage_error("--stacks must be on, on-cpu or off", "pass e.g. --stacks on-cpu");
  }
  const std::int64_t stack_slice_ns = parse_duration_ns(a.stack_slice, "--stack-slice");
  if (stack_slice_ns < util::kNsPerSec) {
    util::usage_error("--stack-slice must be at least 1s", "pass e.g. --stack-slice 10s");
  }
  if (!(a.stack_rate_hz >= 1 && a.stack_rate_hz <= 1000)) {
    util::usage_error("--stack-rate must be from 1 to 1000 (samples a second per CPU)",
                      "pass e.g. --stack-rate 49");
  }
  store::WriterOptions wo;
  wo.chokepoint_version = kVersion;
  if (!a.max_size.empty()) {
    wo.max_bytes = parse_size_bytes(a.max_size, "--max-size");
    if (wo.max_bytes < std::uint64_t{64} * 1024) {
      util::usage_error("--max-size must be at least 64K", "pass e.g. --max-size 100M");
    }
  }
  if (!a.keep_for.empty()) {
    wo.keep_for_ns = parse_duration_ns(a.keep_for, "--keep-for");
    if (wo.keep_for_ns < 4 * interval_ns) {
      util::usage_error("--keep-for must be at least four intervals", "pass e.g. --keep-for 1h");
    }
  }
  wo.keyframe_every_ns =
      wo.keep_for_ns > 0 ? std::min(kKeyframeEveryNs, wo.keep_for_ns / 4) : kKeyframeEveryNs;
  wo.on_write_error = [](const util::Error& e) {
    util::print_error(e);
    std::cerr << "chokepoint: recording paused; it resumes when the file can be written again\n";
  };
  wo.on_write_resumed = [] { std::cerr << "chokepoint: recording resumed\n"; };
  auto writer = store::RecordingWriter::create(a.output, std::move(wo));
  if (!writer) throw util::FatalError(writer.error(), util::kExitRuntime);

  auto session = TargetSession::open(a.target);
  util::stop_on_signals();
  collect::sampler::SamplerOptions opt;
  opt.target = session->spec();
  opt.duration_ns = duration_ns;
  opt.interval_ns = interval_ns;
  opt.stop = &g_stop;
  opt.system_every_ns = interval_ns;
  opt.fd_table_every_ns = std::max(interval_ns, kFdTableEveryNs);
  opt.split_mode = split_mode;
  auto sampler = collect::sampler::Sampler::create(opt);
  if (!sampler) throw util::FatalError(sampler.error(), util::kExitRuntime);
  // The services' own view, as diagnose reads it: those the flags name, and those found among
  // the target's processes at the start (--no-probes: none).
  std::vector<int> pids;
  if (auto p = collect::sampler::resolve_pids(session->spec(), collect::procfs::ProcFs()); p) {
    pids = std::move(*p);
  }
  Probes probes = make_probes(a.probes, pids);
  const std::size_t probe_count = probes.probes.size();
  // Every poll kept as the recording's probe series (schema 5), written after each tick.
  collect::probes::ProbeRunner probe_runner(std::move(probes.probes), 100'000'000, true);
  if (!probe_runner.probes().empty()) {
    if (auto kept = (*writer)->set_probes(probe_runner.probes()); !kept) {
      util::print_error(kept.error());
    }
  }
  ProbePollWriter poll_writer(**writer, [&probe_runner] { return probe_runner.take_polls(); });
  std::cerr << fmt::format("chokepoint: recording {} every {:g} s to {} ({})...\n",
                           util::terminal_text(session->describe()), interval_ns / 1e9,
                           util::terminal_text(a.output),
                           a.duration.empty() ? "Ctrl-C ends it" : "for " + a.duration);
  // Stacks over time, on a thread of their own; the sink writes their slices after each tick.
  std::unique_ptr<StackRecorder> stacks;
  std::vector<model::Source> stack_sources;
  if (a.stacks != "off") {
    stacks = StackRecorder::start({.target = session->spec(),
                                   .frequency_hz = a.stack_rate_hz,
                                   .slice_ns = stack_slice_ns,
                                   .off_cpu = a.stacks == "on"});
  } else {
    for (const char* name : {kRecordedOnCpuSource, kRecordedOffCpuSource}) {
      stack_sources.push_back({name, false, "not recorded (--stacks off)",
                               "record without --stacks off to keep stacks over time"});
    }
  }
  // Kept at the start only when there are none (--stacks off); with stacks, at the end (a
  // recorder killed before keeps its slices, not why a source was missing).
  auto keep_stack_sources = [&] {
    if (auto kept = (*writer)->add_note(
            "record_stacks", stack_sources_note(stack_sources, a.stack_rate_hz, stack_slice_ns));
        !kept) {
      util::print_error(kept.error());
    }
  };
  if (!stacks) keep_stack_sources();
  SliceWritingSink slice_sink(**writer, stacks.get());
  RecordSink sink(slice_sink, poll_writer);
  probe_runner.start();
  auto ran = (*sampler)->run(sink);
  if (stacks) {
    stacks->stop();  // the last slice, up to the end
    slice_sink.flush();
    stack_sources = stacks->sources();
    keep_stack_sources();
    for (const auto& s : stack_sources) {
      std::cerr << fmt::format("chokepoint: {}: {}\n", s.name, util::terminal_text(s.detail));
      if (!s.available && !s.hint.empty()) {
        std::cerr << "hint: " << util::terminal_text(s.hint) << "\n";
      }
    }
    if (slice_sink.slices_lost() > 0) {
      std::cerr << fmt::format("chokepoint: {} of {} stack slices could not be written\n",
                               slice_sink.slices_lost(),
                               slice_sink.slices_lost() + slice_sink.slices_written());
    }
  }
  // Over the whole recording, kept when it ends (replay of the whole recording shows them).
  const std::vector<model::ServiceObservation> services = probe_runner.finish();
  poll_writer.flush();  // the last polls (finish() reads each probe once more)
  session->end_command();
  if (auto kept = save_services(**writer, {services, probes.notes, {}, {}}); !kept) {
    util::print_error(kept.error());
  } else if (probe_count > 0) {
    const auto [doc_bytes, stored_bytes] = (*writer)->probe_document_bytes();
    std::cerr << fmt::format(
        "chokepoint: kept what {} service probe{} read: {} polls{}, {} bytes ({} before "
        "compression)\n",
        probe_count, probe_count == 1 ? "" : "s", poll_writer.polls_written(),
        poll_writer.polls_lost() > 0 ? fmt::format(" ({} lost)", poll_writer.polls_lost())
                                     : std::string(),
        stored_bytes, doc_bytes);
  }
  const std::uint64_t ticks = (*writer)->ticks_written();
  const std::uint64_t lost = (*writer)->ticks_lost();
  const std::uint64_t rows = (*writer)->thread_rows_written();
  writer->reset();  // closes the file
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(a.output, ec);
  std::cerr << fmt::format(
      "chokepoint: {} ticks recorded{}, {} thread rows, {} bytes ({:.0f} bytes per thread row)\n",
      ticks, lost > 0 ? fmt::format(" ({} lost)", lost) : std::string(), rows, ec ? 0 : bytes,
      rows > 0 && !ec ? static_cast<double>(bytes) / static_cast<double>(rows) : 0.0);
  if (!ran) throw util::FatalError(ran.error(), util::kExitRuntime);
  return lost > 0 ? util::kExitRuntime : util::kExitOk;
}

}  // namespace

Subcommand make_record_command(CLI::App& root) {
  auto args = std::make_shared<RecordArgs>();
  CLI::App* cli = root.add_subcommand(
      "record", "Record a service's thread states and counters for replay and diff, at low cost");
  add_target_options(cli, args->target);
  cli->add_option("-o,--output", args->output, "the recording to write (replaced if it exists)")
      ->required()
      ->option_text("FILE");
  cli->add_option("-i,--interval", args->interval, "how often to sample")->capture_default_str();
  cli->add_option("-d,--duration", args->duration,
                  "how long to record (default: until Ctrl-C or the target exits)");
  cli->add_option("--max-size", args->max_size,
                  "drop the oldest samples to stay near this size (100M, 2G)");
  cli->add_option("--mode", args->mode, kSplitModeHelp)->capture_default_str();
  cli->add_option("--keep-for", args->keep_for, "drop samples older than this (1h, 1d)");
  cli->add_option("--stacks", args->stacks,
                  "on|on-cpu|off: keep on-CPU stacks (perf) as folded counts every --stack-slice "
                  "(on-cpu); with off-CPU stacks and their wait time (eBPF) too (on: the "
                  "off-CPU tracer runs at every context switch of the machine, see "
                  "docs/recording.md); none (off). Where the privilege and kernel allow")
      ->capture_default_str();
  cli->add_option("--stack-rate", args->stack_rate_hz,
                  "on-CPU stack samples a second per CPU (1 to 1000)")
      ->capture_default_str()
      ->option_text("HZ");
  cli->add_option("--stack-slice", args->stack_slice,
                  "how often the stacks are folded and kept: the finest time the report can cut "
                  "them at (at least 1s)")
      ->capture_default_str();
  add_probe_options(cli, args->probes);
  cli->footer(
      "Without a target, record watches the whole host. Examples:\n"
      "  chokepoint record --pid 1234 -o service.chokepoint\n"
      "  chokepoint record --name nginx -o nginx.chokepoint --max-size 100M --keep-for 1h\n"
      "  chokepoint record --pid 1234 -o svc.chokepoint --stacks on --stack-rate 19\n"
      "  chokepoint replay service.chokepoint --from 5m --to 10m");
  return {cli, [args] { return run_record(*args); }};
}

}  // namespace chokepoint::app
