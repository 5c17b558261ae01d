#include "app/diagnose_stacks.h"

#include <fmt/format.h>

#include <filesystem>

#include "collect/bpf/offcpu_profile.h"
#include "collect/bpf/offcpu_tracer.h"
#include "collect/procfs/proc_fs.h"
#include "symbolize/symbolizer.h"

namespace chokepoint::app {

StackCapture capture_off_cpu(const collect::sampler::TargetSpec& target, std::int64_t duration_ns,
                             const std::atomic<bool>* stop) {
  using Kind = collect::sampler::TargetSpec::Kind;
  StackCapture out;
  out.source.name = "off-CPU stacks (eBPF)";
  auto fail = [&](const util::Error& e) {
    out.source.available = false;
    out.source.detail = "where the verdict's waits are in the code: " + e.message;
    out.source.hint = e.hint;
    return out;
  };
  if (auto ok = collect::bpf::check_offcpu_support(); !ok) return fail(ok.error());

  collect::bpf::OffCpuOptions options;
  options.duration_ns = static_cast<std::uint64_t>(duration_ns);
  std::vector<int> pids;
  if (target.kind == Kind::kCgroup &&
      std::filesystem::exists(std::filesystem::path(target.cgroup_path) / "cgroup.controllers")) {
    options.cgroup_path = target.cgroup_path;  // v2: the kernel side filters by cgroup id
  } else if (target.kind != Kind::kHost) {
    collect::procfs::ProcFs proc;
    auto resolved = collect::sampler::resolve_pids(target, proc);
    if (!resolved || resolved->empty()) {
      return fail({"the target exited", "", 0});
    }
    pids = *resolved;
    options.tgids = pids;
  }
  auto symbolizer = symbolize::Symbolizer::create();
  if (!symbolizer) return fail(symbolizer.error());
  collect::bpf::OffCpuProfileOptions profile_options;
  // The waker's stack after the marker: for a lock, the code that held it.
  profile_options.wakers = collect::bpf::WakerLayout::kAppended;
  for (int pid : pids) {
    // While they are alive: a process that exits during the trace is still named.
    if ((*symbolizer)->attach(pid)) profile_options.attached_pids.insert(pid);
  }
  auto tracer = collect::bpf::OffCpuTracer::create(options);
  if (!tracer) return fail(tracer.error());
  auto result = (*tracer)->run(stop);
  if (!result) return fail(result.error());
  out.off_cpu = collect::bpf::to_profile(*result, **symbolizer, profile_options);
  std::uint64_t blocks = 0;
  for (const auto& r : result->records) blocks += r.count;
  out.source.available = true;
  out.source.detail = fmt::format(
      "where the verdict's waits are in the code: {:.1f} s traced after the window ({}, {} "
      "blocks of at least {} us, {} distinct stacks)",
      result->duration_s, result->attach_kind, blocks, result->min_block_ns / 1000,
      out.off_cpu->stacks.size());
  return out;
}

}  // namespace chokepoint::app
