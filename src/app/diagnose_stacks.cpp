#include "app/diagnose_stacks.h"

#include <fmt/format.h>

#include <cstdint>

#include "analysis/stack_evidence.h"
#include "app/stack_capture.h"
#include "profile/aggregate.h"
#include "symbolize/deadline_symbolizer.h"
#include "symbolize/symbolizer.h"
#include "util/plural.h"

namespace chokepoint::app {

bool verdict_has_stacks(analysis::Verdict verdict) {
  return verdict != analysis::Verdict::kNone;
}

VerdictStacks stacks_for_verdict(analysis::Verdict verdict,
                                 const collect::sampler::TargetSpec& target,
                                 std::int64_t duration_ns, const std::atomic<bool>* stop,
                                 std::int64_t end_ns, std::int64_t symbolize_deadline_ns,
                                 std::optional<analysis::BottleneckKind> kind) {
  VerdictStacks out;
  if (!verdict_has_stacks(verdict)) return out;
  const bool on_cpu = verdict == analysis::Verdict::kCpu;
  const bool leak =
      verdict == analysis::Verdict::kMemory && kind == analysis::BottleneckKind::kLeak;
  out.source.name = on_cpu ? "on-CPU stacks (perf)"
                    : leak ? "allocation stacks (eBPF uprobes)"
                           : "off-CPU stacks (eBPF)";
  auto unavailable = [&](const util::Error& e) {
    out.source.available = false;
    out.source.detail = "the code behind the verdict: " + e.message;
    out.source.hint = e.hint;
    return out;
  };
  auto inner = symbolize::Symbolizer::create();
  if (!inner) return unavailable(inner.error());
  symbolize::DeadlineSymbolizer symbolizer(
      **inner, symbolize_deadline_ns > 0 ? symbolize_deadline_ns : INT64_MAX);
  // What the deadlines cut, for the source's detail.
  auto cuts = [&](bool cut_short) {
    std::string out;
    if (cut_short) out += "; the capture was shortened to keep the run's deadline";
    if (symbolizer.late_lookups() > 0) {
      out += fmt::format("; {} frames were left unnamed at the symbolization deadline",
                         symbolizer.late_lookups());
    }
    return out;
  };
  if (on_cpu) {
    // 199 Hz: about 400 samples a busy core over 2 s, enough to rank the hottest functions.
    collect::perf::PerfOptions options;
    options.target = target;
    options.frequency_hz = 199;
    // With thread frames, for the function each thread runs (a wait-for chain's root); the
    // evidence and the kept profile are the profile without them.
    auto c = capture_on_cpu(options, true, duration_ns, symbolizer, stop, {}, end_ns);
    if (!c) return unavailable(c.error());
    out.thread_functions = analysis::thread_functions(c->profile);
    c->profile = profile::without_thread_frames(std::move(c->profile));
    out.evidence = analysis::stack_evidence(verdict, &c->profile, nullptr).lines;
    out.source.available = true;
    out.source.detail = fmt::format(
        "the code behind the verdict: {} samples ({}, {:g} Hz) over {:.1f} s after the window{}",
        c->stats.records.samples, c->info.event_name, options.frequency_hz, c->stats.duration_s,
        cuts(c->cut_short));
    out.profile = std::move(c->profile);
    return out;
  }
  if (leak) {
    auto c = capture_memory(target, collect::bpf::kDefaultSamplePeriodBytes, duration_ns,
                            symbolizer, stop, {}, end_ns);
    if (!c) return unavailable(c.error());
    const auto ev = analysis::memory_evidence(c->live);
    out.evidence = ev.lines;
    const auto sites = analysis::memory_sites(c->live, c->allocated);
    if (!sites.empty() && sites.front().live_bytes > 0) {
      out.fix = fmt::format(
          "find what keeps the memory allocated under {} and free it, or bound it (an LRU with "
          "a size limit); `chokepoint profile --memory` shows the full allocation stacks",
          sites.front().text);
    }
    const std::string probed = collect::bpf::allocators_text(c->allocators);
    out.source.available = true;
    out.source.detail = fmt::format(
        "the code behind the verdict: {:.1f} s of allocations traced after the window ({} "
        "allocator calls, {}; probes in {}): an estimated {} allocated, {} of it still live{}",
        c->duration_s, c->counters.alloc_calls, collect::bpf::sampling_text(c->sample_period_bytes),
        probed, util::bytes_text(static_cast<double>(c->allocated_bytes)),
        util::bytes_text(static_cast<double>(c->live_bytes)), cuts(c->cut_short));
    out.profile = std::move(c->live);
    return out;
  }
  // The waker's stack after the marker: for a lock, the code that held it.
  auto c = capture_off_cpu(target, {.wakers = collect::bpf::WakerLayout::kAppended}, duration_ns,
                           symbolizer, stop, {}, end_ns);
  if (!c) return unavailable(c.error());
  out.evidence = analysis::stack_evidence(verdict, nullptr, &c->profile).lines;
  out.source.available = true;
  out.source.detail = fmt::format(
      "the code behind the verdict: {:.1f} s traced after the window ({}, {} blocks of at least "
      "{} us, {} distinct stacks){}",
      c->duration_s, c->attach_kind, c->blocks, c->min_block_ns / 1000, c->profile.stacks.size(),
      cuts(c->cut_short));
  out.profile = std::move(c->profile);
  return out;
}

}  // namespace chokepoint::app
