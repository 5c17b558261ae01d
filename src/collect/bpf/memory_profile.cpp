#include "collect/bpf/memory_profile.h"

#include <fmt/format.h>

#include <map>

#include "collect/bpf/bpf_support.h"

#include "util/bounded_read.h"

namespace chokepoint::collect::bpf {

std::string sampling_text(std::uint64_t sample_period_bytes) {
  if (sample_period_bytes == 0) return "every allocation traced";
  return fmt::format("one sample per {} allocated on average",
                     util::size_text(sample_period_bytes));
}

std::string allocators_text(const std::vector<ProbedAllocator>& allocators) {
  std::string out;
  for (const ProbedAllocator& a : allocators) {
    out += fmt::format("{}{} ({})", out.empty() ? "" : ", ", a.path, a.kind);
  }
  return out;
}

profile::Profile to_profile(const MemoryResult& result, symbolize::Symbolizer& symbolizer,
                            const MemoryProfileOptions& options) {
  profile::Profile p;
  p.weight = profile::Weight::kBytes;
  p.duration_s = result.duration_s;
  const bool live = options.view == MemoryView::kLive;
  std::set<int> attached = options.attached_pids;
  std::set<int> reattached;
  std::vector<std::string> attach_errors;
  std::map<int, std::string> processes;
  for (const MemoryRecord& r : result.records) {
    const std::uint64_t value = live ? r.live_bytes : r.allocated_bytes;
    if (value == 0) continue;
    processes.emplace(r.tgid, r.process_comm);
    if (attached.insert(r.tgid).second) {
      if (auto ok = symbolizer.attach(r.tgid); !ok) {
        attach_errors.push_back(fmt::format("pid {}: {}", r.tgid, ok.error().message));
      }
    }
    profile::Stack s;
    s.value = value;
    s.count = live ? r.live_samples : r.allocated_samples;
    profile::Frame root;
    root.name = r.process_comm + " (" + std::to_string(r.tgid) + ")";
    root.kind = profile::FrameKind::kProcess;
    s.frames.push_back(std::move(root));
    // Each address is a return address (the first: into the allocator's caller): look up
    // address - 1 to stay in the calling function and name the call's line.
    for (auto it = r.user_addresses.rbegin(); it != r.user_addresses.rend(); ++it) {
      profile::Frame f = symbolizer.user(r.tgid, *it - 1);
      if (f.kind == profile::FrameKind::kUnresolved && f.unresolved == "not mapped" &&
          reattached.insert(r.tgid).second) {
        (void)symbolizer.attach(r.tgid);  // a library loaded after the snapshot
        f = symbolizer.user(r.tgid, *it - 1);
      }
      s.frames.push_back(std::move(f));
    }
    if (r.stack_error != 0) ++p.failed_stacks;
    if (r.user_addresses.size() >= result.max_stack_depth) ++p.truncated_stacks;
    p.stacks.push_back(std::move(s));
  }

  const std::string who = processes_text(processes);
  p.title = fmt::format("{}, memory {}, {}, {:.1f} s", who.empty() ? "no allocations" : who,
                        live ? "allocated and still live at the end" : "allocated",
                        sampling_text(result.sample_period_bytes), result.duration_s);

  const MemoryCounters& c = result.counters;
  p.lost_samples = c.allocs_full + c.stats_full;
  p.failed_stacks += c.stack_failures;
  std::string allocators;
  for (const ProbedAllocator& a : result.allocators) {
    allocators +=
        fmt::format("{}{} ({}, pid {})", allocators.empty() ? "" : ", ", a.path, a.kind, a.tgid);
  }
  p.notes.push_back(fmt::format(
      "bytes are estimates from sampling by bytes ({}, each sample weighed by the inverse of its "
      "chance); {} sampled of {} allocator calls; probed: {}",
      sampling_text(result.sample_period_bytes), c.sampled, c.alloc_calls, allocators));
  if (live) {
    p.notes.push_back(
        "live means allocated during the window and not freed by its end: memory allocated "
        "before the window is not counted, and a cache that is still filling looks like a leak "
        "until it is full");
  }
  if (p.lost_samples > 0) {
    p.notes.push_back(
        fmt::format("{} sampled allocations were lost because a BPF map was full", p.lost_samples));
  }
  if (c.stack_failures > 0) {
    p.notes.push_back(fmt::format(
        "{} sampled allocations have no stack (the kernel could not walk the user stack)",
        c.stack_failures));
  }
  for (const auto& e : attach_errors) {
    p.notes.push_back("cannot read the mappings of " + e + ": its frames stay unresolved");
  }
  for (const auto& n : result.notes) p.notes.push_back(n);
  for (const auto& n : symbolizer.notes()) p.notes.push_back(n);
  return p;
}

}  // namespace chokepoint::collect::bpf
