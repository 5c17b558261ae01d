// chokepoint diagnose: watch a target for a window, split its threads' time by resource, and print
// the verdict, the evidence and the fix to do first. With --load URL it drives the target with
// chokepoint load while it watches.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <atomic>
#include <cerrno>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "analysis/services.h"
#include "app/background_load.h"
#include "app/cli_values.h"
#include "app/diagnose_stacks.h"
#include "app/probe_options.h"
#include "app/recorded_window.h"
#include "app/request_args.h"
#include "app/run_budget.h"
#include "app/subcommand.h"
#include "app/target_session.h"
#include "app/version.h"
#include "collect/procfs/proc_fs.h"
#include "collect/sampler/target.h"
#include "model/tiers.h"
#include "monitor/tier_window.h"
#include "render/diagnosis_report.h"
#include "render/json_text.h"
#include "render/load_report.h"
#include "render/services_report.h"
#include "render/tiers_report.h"
#include "store/recording.h"
#include "util/clock.h"
#include "util/escape.h"
#include "util/fatal.h"
#include "util/stop_signal.h"

namespace chokepoint::app {
namespace {

// Set by SIGINT and SIGTERM once the run starts (util/stop_signal.h).
std::atomic<bool>& g_stop = util::stop_flag();

// A --cgroup target that holds no process (before the window, or throughout it): the error says
// so, and the hint names the cgroups below it that hold the services, if any (a v2 slice keeps
// its processes in its children).
util::Error empty_cgroup_error(const std::string& cgroup_path, bool during_window) {
  const std::vector<std::string> below =
      collect::sampler::cgroups_with_processes_below(cgroup_path, 4);
  std::string hint;
  if (below.empty()) {
    hint =
        "wait until the service runs in it, or pass --cgroup with the service's own cgroup (see "
        "/proc/PID/cgroup)";
  } else {
    hint = "its processes are in the cgroups below it: pass --cgroup with one of " +
           fmt::format("{}", fmt::join(below, ", "));
  }
  return util::Error{
      fmt::format("cgroup {} {}", cgroup_path,
                  during_window ? "held no process during the window" : "holds no process"),
      hint, ESRCH};
}

struct DiagnoseArgs {
  TargetArgs target;
  std::string duration = "5s";
  std::string interval = "100ms";
  bool json = false;
  // --load: drive the target while diagnosing it.
  std::string load_url;
  std::string rate = "max";
  int connections = 16;
  int load_threads = 1;
  std::string warmup = "1s";
  // Stacks as evidence: an off-CPU trace after the window when the verdict is a wait.
  bool no_stacks = false;
  std::string stacks_duration = "2s";
  std::string record_path;    // --record: keep the window's samples
  std::string mode = "auto";  // --mode: the time split
  bool tiers = false;         // --tiers: with --cgroup, one tier per top-level process
  ProbeArgs probes;
};

int run_diagnose(const DiagnoseArgs& a, bool load_options_given) {
  // Start-up (loading, listing the target, opening its events) is chokepoint's own work: beside a
  // CPU-saturated target a nice-0 process waits seconds for each step. The user's priority comes
  // back before the load and the window (below); a launched command gets it (app/launch.h).
  raise_measuring_priority();
  const std::int64_t duration_ns = parse_duration_ns(a.duration, "--duration");
  const std::int64_t interval_ns = parse_duration_ns(a.interval, "--interval");
  const std::int64_t stacks_ns = parse_duration_ns(a.stacks_duration, "--stacks-duration");
  const collect::sampler::SplitMode split_mode = parse_split_mode_arg(a.mode);
  if (stacks_ns <= 0) {
    util::usage_error("--stacks-duration must be above 0",
                      "pass e.g. --stacks-duration 2s, or --no-stacks");
  }
  if (duration_ns <= 0) util::usage_error("--duration must be above 0", "pass e.g. --duration 5s");
  if (interval_ns < 1'000'000 || interval_ns > duration_ns) {
    util::usage_error("--interval must be at least 1ms and at most --duration",
                      "pass e.g. --interval 100ms");
  }
  if (a.tiers && a.target.cgroup.empty()) {
    util::usage_error("--tiers goes with --cgroup PATH",
                      "pass --cgroup PATH --tiers for one tier per service in the cgroup; "
                      "several --pid are one tier each already");
  }
  // Several --pid, or --cgroup --tiers: one verdict per tier (monitor/tier_window.h).
  const bool tiers_wanted = a.target.pids.size() > 1 || a.tiers;
  if (a.load_url.empty() && load_options_given) {
    util::usage_error("--rate, --connections, --load-threads and --warmup go with --load URL",
                      "pass --load http://127.0.0.1:8080/ to drive the target while diagnosing");
  }
  std::optional<loadgen::LoadOptions> load_options;
  if (!a.load_url.empty()) {
    loadgen::LoadOptions o;
    RequestArgs request;
    request.urls = {a.load_url};
    apply_request_args(request, o);
    o.rate_per_s = parse_rate_per_s(a.rate, "--rate");
    o.connections = a.connections;
    o.threads = a.load_threads;
    o.warmup_ns = parse_duration_ns(a.warmup, "--warmup");
    // The window closes the load through its stop flag; the duration is only a backstop.
    o.duration_ns = duration_ns + 30 * util::kNsPerSec;
    preflight(o);
    load_options = std::move(o);
  }

  // The run's promise: the window, the stacks after it, and a grace (app/run_budget.h).
  RunBudget budget(duration_ns + (a.no_stacks ? 0 : stacks_ns) +
                   (load_options ? load_options->warmup_ns : 0));
  // Created before the window, so that a path that cannot be written fails before it.
  std::unique_ptr<store::RecordingWriter> recording;
  if (!a.record_path.empty()) {
    store::WriterOptions wo;
    wo.chokepoint_version = kVersion;
    auto w = store::RecordingWriter::create(a.record_path, std::move(wo));
    if (!w) throw util::FatalError(w.error(), util::kExitRuntime);
    recording = std::move(*w);
  }
  auto session = TargetSession::open(a.target, /*several_pids=*/true);
  const bool cgroup_target = session->spec().kind == collect::sampler::TargetSpec::Kind::kCgroup;
  if (cgroup_target) {
    auto pids = collect::sampler::resolve_pids(session->spec(), collect::procfs::ProcFs());
    if (pids && pids->empty()) throw util::FatalError(empty_cgroup_error(a.target.cgroup, false));
  }
  util::stop_on_signals();
  // Counted while still raised: listing a target of thousands of threads is the slow part.
  const bool window_priority = window_needs_priority(session->spec());
  // The load generator's threads inherit the priority of the thread that creates them, and the
  // thresholds are calibrated for a window at the user's priority (app/run_budget.h).
  restore_user_priority();

  std::unique_ptr<BackgroundLoad> load;
  if (load_options) {
    load = std::make_unique<BackgroundLoad>(*load_options);
    if (!a.json) {
      std::cerr << fmt::format(
          "chokepoint: driving {} with {} over {} connection(s); {:.1f} s warmup\n",
          util::terminal_text(a.load_url),
          load_options->rate_per_s > 0 ? fmt::format("{:g} req/s", load_options->rate_per_s)
                                       : std::string("closed-loop load (--rate max)"),
          load_options->connections, load_options->warmup_ns / 1e9);
    }
    load->wait_warmup(g_stop);
  }
  // The services' own view over the same window: those the flags name, and those found among
  // the target's processes.
  std::vector<int> pids;
  if (auto p = collect::sampler::resolve_pids(session->spec(), collect::procfs::ProcFs()); p) {
    pids = std::move(*p);
  }
  Probes probes = make_probes(a.probes, pids);
  // With --record, every poll is kept too (the recording's probe series, schema 5).
  collect::probes::ProbeRunner probe_runner(std::move(probes.probes), 100'000'000,
                                            recording != nullptr);
  // After the load generator's threads exist, so that they keep their normal priority; for the
  // window only when the target is large (app/run_budget.h).
  if (window_priority) raise_measuring_priority();
  budget.mark("start-up");
  if (!a.json) {
    std::cerr << fmt::format("chokepoint: watching {} for {:.1f} s (Ctrl-C ends early)...\n",
                             util::terminal_text(session->describe()), duration_ns / 1e9);
  }
  probe_runner.start();
  auto window = session->diagnose(duration_ns, interval_ns, &g_stop,
                                  recording != nullptr || tiers_wanted, split_mode);
  budget.mark("window");
  const std::vector<model::ServiceObservation> services = probe_runner.finish();
  std::vector<analysis::ServiceReport> service_reports;
  // Several --pid: one verdict per tier and the tier that limits the whole (monitor/tier_window.h).
  std::optional<monitor::TierWindows> tiers;
  // The tiers' roots: the pids given, or each process of the cgroup that no other process of it
  // started (a service and its children).
  std::vector<int> tier_roots;
  if (window && tiers_wanted) {
    tier_roots = a.tiers ? model::top_level_processes(window->samples) : a.target.pids;
    tiers = monitor::diagnose_tiers(window->samples, tier_roots, services);
    service_reports = analysis::assess_services(services);
  } else if (window) {
    // The services' own wait events refine the kernel's split where it cannot tell (a
    // PostgreSQL backend on a row lock reads as idle), and their warnings join the verdict.
    service_reports =
        fold_service_view(window->observation, window->diagnosis, services, probes.notes);
  }
  raise_measuring_priority();  // stacks, symbolizing and output: chokepoint's own work
  std::optional<VerdictStacks> kept_stacks;
  // While the target is still up and under the same load: the code behind the verdict.
  if (window && !tiers && !a.no_stacks && !g_stop.load() &&
      verdict_has_stacks(window->diagnosis.verdict)) {
    const analysis::Verdict verdict = window->diagnosis.verdict;
    std::optional<analysis::BottleneckKind> kind;
    if (!window->diagnosis.bottlenecks.empty()) kind = window->diagnosis.bottlenecks.front().kind;
    if (!a.json) {
      std::cerr << fmt::format(
          "chokepoint: the verdict is {}; collecting {} stacks for {:.1f} s to find it in the "
          "code (--no-stacks skips this)...\n",
          analysis::verdict_name(verdict),
          verdict == analysis::Verdict::kCpu        ? "on-CPU"
          : kind == analysis::BottleneckKind::kLeak ? "allocation"
                                                    : "off-CPU",
          stacks_ns / 1e9);
    }
    VerdictStacks stacks =
        stacks_for_verdict(verdict, session->spec(), stacks_ns, &g_stop, budget.capture_end_ns(),
                           budget.symbolize_deadline_ns(), kind);
    add_stacks(stacks, window->observation, window->diagnosis);
    kept_stacks = std::move(stacks);
    budget.mark("stacks");
  }
  // Tiers: each tier's stacks for its own verdict, from its own processes (the root and its
  // children), one tier after the other; the stacks' time is shared among the tiers that need
  // them, so the run keeps its promise.
  std::map<int, VerdictStacks> tier_stacks;  // by the tier's root pid, kept by --record
  if (tiers && !a.no_stacks && !g_stop.load()) {
    std::vector<std::size_t> wanted;
    for (std::size_t i = 0; i < tiers->tiers.size(); ++i) {
      if (verdict_has_stacks(tiers->tiers[i].diagnosis.verdict)) wanted.push_back(i);
    }
    const std::int64_t tier_stacks_ns =
        wanted.empty() ? 0 : stacks_ns / static_cast<std::int64_t>(wanted.size());
    if (!a.json && !wanted.empty()) {
      std::cerr << fmt::format(
          "chokepoint: collecting each tier's stacks for its verdict, {:.1f} s a tier "
          "(--no-stacks skips this)...\n",
          tier_stacks_ns / 1e9);
    }
    for (std::size_t i : wanted) {
      if (g_stop.load()) break;
      analysis::TierDiagnosis& tier = tiers->tiers[i];
      collect::sampler::TargetSpec spec;
      spec.kind = collect::sampler::TargetSpec::Kind::kPid;
      spec.pid = tier.root_pid;
      spec.children = true;
      std::optional<analysis::BottleneckKind> kind;
      if (!tier.diagnosis.bottlenecks.empty()) kind = tier.diagnosis.bottlenecks.front().kind;
      VerdictStacks stacks =
          stacks_for_verdict(tier.diagnosis.verdict, spec, tier_stacks_ns, &g_stop,
                             budget.capture_end_ns(), budget.symbolize_deadline_ns(), kind);
      add_stacks(stacks, tiers->observations[i], tier.diagnosis);
      tier_stacks[tier.root_pid] = std::move(stacks);
    }
    if (!wanted.empty()) budget.mark("stacks");
  }
  const util::Result<loadgen::LoadResult>* load_result = load ? &load->finish() : nullptr;
  const bool launched = session->launched();
  session->end_command();
  if (!window && cgroup_target && window.error().errno_value == ESRCH) {
    throw util::FatalError(empty_cgroup_error(a.target.cgroup, true));
  }
  if (!window) {
    throw util::FatalError(window.error(), window.error().errno_value == EINVAL
                                               ? util::kExitUsage
                                               : util::kExitRuntime);
  }
  window->observation.overhead.run_wall_s = budget.elapsed_s();
  window->observation.overhead.run_cpu_s = budget.thread_cpu_s();
  // Where the run's time went, for the JSON (and a recording, so its replay says the same).
  nlohmann::json phases = nlohmann::json::object();
  for (const auto& [name, s] : budget.phases()) phases[name] = s;
  const nlohmann::json run_json = {
      {"wall_s", window->observation.overhead.run_wall_s},
      {"promised_s", static_cast<double>(budget.end_ns() - budget.start_ns()) / 1e9},
      {"phases_s", phases}};
  const model::Observation& obs = window->observation;
  const analysis::Diagnosis& d = window->diagnosis;

  std::optional<loadgen::LoadAssessment> assessment;
  if (load_result && *load_result) assessment = loadgen::assess(**load_result, load->options());
  // The load's part of the report, in both forms: printed, and kept in a recording.
  RecordedLoad load_report;
  if (load_result) {
    load_report.json =
        *load_result ? render::load_json(**load_result, load->options(), *assessment, {a.load_url})
                     : nlohmann::json{{"error", load_result->error().message}};
  }
  if (load_result && *load_result) {
    const loadgen::LoadResult& r = **load_result;
    load_report.text =
        fmt::format(
            "\nLoad while watching (the window and the stacks after it; chokepoint load {}, {}, "
            "{} connections)\n",
            util::terminal_text(a.load_url),
            load->options().rate_per_s > 0
                ? fmt::format("open loop at {:g} req/s", load->options().rate_per_s)
                : std::string("closed loop"),
            r.connections) +
        render::load_text_summary(r, load->options(), *assessment, "  ");
  }
  util::Result<void> recorded;
  if (recording) {
    recorded =
        save_window(*recording, window->samples, kept_stacks, load_report,
                    {obs.overhead.run_wall_s, obs.overhead.run_cpu_s, run_json},
                    {services, probes.notes, probe_runner.probes(), probe_runner.take_polls()});
    if (recorded) recorded = save_tier_roots(*recording, tier_roots);
    if (recorded) recorded = save_tier_stacks(*recording, tier_stacks);
  }
  if (tiers) {
    const render::TiersView view{tiers->tiers, tiers->observations, tiers->links, tiers->limiting};
    if (a.json) {
      nlohmann::json j = render::tiers_json(view);
      if (!service_reports.empty()) j["services"] = render::services_json(service_reports);
      if (load_result) j["load"] = load_report.json;
      j["run"] = run_json;
      std::cout << render::json_text(j);
    } else {
      std::cout << render::tiers_text(view) << render::services_text(service_reports)
                << load_report.text;
    }
  } else if (a.json) {
    nlohmann::json j = render::diagnosis_json(obs, d);
    if (!service_reports.empty()) j["services"] = render::services_json(service_reports);
    if (load_result) j["load"] = load_report.json;
    j["run"] = run_json;
    std::cout << render::json_text(j);
  } else {
    std::cout << render::diagnosis_text(obs, d) << render::services_text(service_reports)
              << load_report.text;
  }
  std::cout.flush();
  budget.mark("output");
  if (!a.json) std::cerr << "chokepoint: the run " << budget.summary() << "\n";
  if (!recorded) {
    util::print_error(recorded.error());
    return util::kExitRuntime;
  }
  // The diagnosis stands, but a run whose load failed did not measure what the user asked for.
  if (load_result && !*load_result) {
    util::print_error(load_result->error());
    return util::kExitRuntime;
  }
  if (load_result && (*load_result)->requests > 0 && loadgen::responses(**load_result) == 0) {
    const loadgen::LoadResult& r = **load_result;
    util::print_error({fmt::format("the load got no response ({})", r.first_error),
                       loadgen::failure_hint(r, load->options()), 0});
    return util::kExitRuntime;
  }
  if (obs.target_exited && !launched) {
    util::print_error(
        {"the target exited during the window", "the report covers the time until it exited", 0});
    return util::kExitRuntime;
  }
  return util::kExitOk;
}

}  // namespace

Subcommand make_diagnose_command(CLI::App& root) {
  auto args = std::make_shared<DiagnoseArgs>();
  CLI::App* cli = root.add_subcommand("diagnose",
                                      "Watch a service and name what limits it: network, disk, "
                                      "memory, lock or CPU, with evidence and the fix to do first");
  add_target_options(cli, args->target);
  add_probe_options(cli, args->probes);
  cli->add_option("-d,--duration", args->duration, "how long to watch (500ms, 5s, 2m)")
      ->capture_default_str();
  cli->add_option("-i,--interval", args->interval, "how often to sample thread states")
      ->capture_default_str();
  cli->add_option("--mode", args->mode, kSplitModeHelp)->capture_default_str();
  cli->add_flag("--tiers", args->tiers,
                "with --cgroup: one tier per service in it (each process no other process of the "
                "cgroup started, with its children), and the tier that limits the whole");
  cli->add_flag("--json", args->json, "print the JSON report (schema 1) instead of text");
  cli->add_flag(
      "--no-stacks", args->no_stacks,
      "skip the off-CPU stack trace that follows a lock, disk, network or memory verdict");
  cli->add_option("--stacks-duration", args->stacks_duration,
                  "how long to collect stacks after the window")
      ->capture_default_str();
  cli->add_option("--record", args->record_path,
                  "keep what the window saw in FILE, for chokepoint replay and diff")
      ->option_text("FILE");
  cli->add_option("--load", args->load_url,
                  "drive the target with HTTP load at this URL while watching it");
  auto* rate = cli->add_option("-r,--rate", args->rate,
                               "with --load: requests per second (open loop) or 'max'")
                   ->capture_default_str();
  auto* conns =
      cli->add_option("-c,--connections", args->connections, "with --load: keep-alive connections")
          ->capture_default_str()
          ->check(CLI::Range(1, 100'000));
  auto* threads =
      cli->add_option("--load-threads", args->load_threads, "with --load: generator threads")
          ->capture_default_str()
          ->check(CLI::Range(1, 1024));
  auto* warmup =
      cli->add_option("--warmup", args->warmup, "with --load: load before the window opens")
          ->capture_default_str();
  cli->footer(
      "Without a target, diagnose watches the whole host. Examples:\n"
      "  chokepoint diagnose --pid 1234\n"
      "  chokepoint diagnose --name nginx --duration 10s\n"
      "  chokepoint diagnose --pid 1234 --record before.chokepoint\n"
      "  chokepoint diagnose --pid 1234 --load http://127.0.0.1:8080/ --rate 2000\n"
      "  chokepoint diagnose -- ./server --port 8080\n"
      "  chokepoint diagnose --pid $(pgrep -o postgres) --load http://127.0.0.1:8080/\n"
      "  chokepoint diagnose --pid $(pgrep -o app) --pid $(pgrep -o postgres)   # one verdict per "
      "tier\n"
      "  chokepoint diagnose --cgroup /sys/fs/cgroup/system.slice/shop.service --tiers\n"
      "  chokepoint diagnose --name app --redis 127.0.0.1:6379 --haproxy-stats /run/haproxy.sock");
  return {cli, [args, rate, conns, threads, warmup] {
            const bool load_options_given =
                rate->count() + conns->count() + threads->count() + warmup->count() > 0;
            return run_diagnose(*args, load_options_given);
          }};
}

}  // namespace chokepoint::app
