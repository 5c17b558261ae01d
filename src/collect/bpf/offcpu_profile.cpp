#include "collect/bpf/offcpu_profile.h"

#include <cerrno>
#include <cstdio>
#include <map>

#include <set>
#include <string_view>
#include "collect/bpf/bpf_support.h"

namespace chokepoint::collect::bpf {
namespace {

std::string micros(std::uint64_t ns) {
  char buf[32];
  if (ns >= 1'000'000) {
    std::snprintf(buf, sizeof(buf), "%.1f ms", static_cast<double>(ns) / 1e6);
  } else {
    std::snprintf(buf, sizeof(buf), "%.0f us", static_cast<double>(ns) / 1e3);
  }
  return buf;
}

profile::Frame synthetic(std::string name, profile::FrameKind kind) {
  profile::Frame f;
  f.name = std::move(name);
  f.kind = kind;
  return f;
}

class Builder {
 public:
  Builder(symbolize::Symbolizer& s, const OffCpuProfileOptions& o)
      : sym_(s), attached_(o.attached_pids) {}

  // Frames of one user stack, outermost first. Every address is a return address (or the
  // instruction after a syscall), so each is looked up at address - 1 to stay in its function.
  void append_user(int pid, const std::vector<std::uint64_t>& inner_first,
                   std::vector<profile::Frame>& out) {
    ensure_attached(pid);
    for (auto it = inner_first.rbegin(); it != inner_first.rend(); ++it) {
      profile::Frame f = sym_.user(pid, *it - 1);
      if (f.kind == profile::FrameKind::kUnresolved && f.unresolved == "not mapped" &&
          reattached_.insert(pid).second) {
        // A library loaded after the snapshot: take a new one, once per pid.
        (void)sym_.attach(pid);
        f = sym_.user(pid, *it - 1);
      }
      out.push_back(std::move(f));
    }
  }
  // Kernel frames, outermost first, without the tracer's own frames at the leaf (the BPF program
  // and the tracepoint glue that called it: they are where the stack was taken, not the wait).
  void append_kernel(const std::vector<std::uint64_t>& inner_first,
                     std::vector<profile::Frame>& out) {
    std::size_t first = out.size();
    for (auto it = inner_first.rbegin(); it != inner_first.rend(); ++it) {
      out.push_back(sym_.kernel(*it - 1));
    }
    while (out.size() > first && is_tracer_frame(out.back().name)) out.pop_back();
  }
  std::vector<std::string> attach_errors;

 private:
  void ensure_attached(int pid) {
    if (attached_.insert(pid).second) {
      auto ok = sym_.attach(pid);
      if (!ok) {
        attach_errors.push_back("pid " + std::to_string(pid) + ": " + ok.error().message);
      }
    }
  }
  symbolize::Symbolizer& sym_;
  std::set<int> attached_;
  std::set<int> reattached_;
};

}  // namespace

bool is_tracer_frame(const std::string& fn) {
  static constexpr std::string_view kPrefixes[] = {"bpf_prog_", "bpf_trace_run", "__bpf_trace_",
                                                   "__traceiter_", "bpf_trampoline_"};
  for (std::string_view p : kPrefixes) {
    if (fn.rfind(p, 0) == 0) return true;
  }
  return false;
}

bool is_interrupt_entry(const std::string& fn) {
  static constexpr std::string_view kPrefixes[] = {
      "asm_sysvec_", "asm_common_interrupt",   "sysvec_", "common_interrupt",
      "__sysvec_",   "asm_spurious_interrupt", "do_IRQ",  "irq_exit_rcu",
  };
  for (std::string_view p : kPrefixes) {
    if (fn.rfind(p, 0) == 0) return true;
  }
  return false;
}

profile::Profile to_profile(const OffCpuResult& result, symbolize::Symbolizer& symbolizer,
                            const OffCpuProfileOptions& options) {
  profile::Profile p;
  p.off_cpu = true;
  p.weight = profile::Weight::kNanoseconds;
  p.duration_s = result.duration_s;
  Builder b(symbolizer, options);

  std::map<int, std::string> processes;  // for the title
  std::uint64_t interrupt_wakers = 0;
  for (const OffCpuRecord& r : result.records) {
    processes.emplace(r.tgid, r.process_comm);
    profile::Stack s;
    s.value = r.total_ns;
    s.count = r.count;
    s.frames.push_back(synthetic(r.process_comm + " (" + std::to_string(r.tgid) + ")",
                                 profile::FrameKind::kProcess));
    if (options.thread_frames) {
      s.frames.push_back(
          synthetic(r.comm + " (" + std::to_string(r.tid) + ")", profile::FrameKind::kThread));
    }
    b.append_user(r.tgid, r.user_addresses, s.frames);
    b.append_kernel(r.kernel_addresses, s.frames);
    if (r.user_stack_error != 0 && r.user_stack_error != ENOENT) ++p.failed_stacks;
    if (r.kernel_stack_error != 0 && r.kernel_stack_error != ENOENT) ++p.failed_stacks;
    if (r.user_addresses.size() >= result.max_stack_depth ||
        r.kernel_addresses.size() >= result.max_stack_depth) {
      ++p.truncated_stacks;
    }

    if (options.wakers == WakerLayout::kAppended && r.woken) {
      std::vector<profile::Frame> kernel;
      b.append_kernel(r.waker_kernel_addresses, kernel);
      bool interrupt = r.waker_in_interrupt;
      for (const auto& f : kernel) interrupt = interrupt || is_interrupt_entry(f.name);
      if (interrupt) {
        // Keep the interrupt's own frames: what it interrupted is unrelated to the wakeup.
        for (std::size_t i = 0; i < kernel.size(); ++i) {
          if (is_interrupt_entry(kernel[i].name)) {
            kernel.erase(kernel.begin(), kernel.begin() + static_cast<std::ptrdiff_t>(i));
            break;
          }
        }
      }
      s.frames.push_back(synthetic(kWokenByMarker, profile::FrameKind::kProcess));
      // Reversed: the waker's leaf (try_to_wake_up) next to the marker, its root last.
      s.frames.insert(s.frames.end(), kernel.rbegin(), kernel.rend());
      if (interrupt) {
        ++interrupt_wakers;
        s.frames.push_back(synthetic("[interrupt]", profile::FrameKind::kProcess));
      } else {
        std::vector<profile::Frame> user;
        b.append_user(r.waker_tgid, r.waker_user_addresses, user);
        s.frames.insert(s.frames.end(), user.rbegin(), user.rend());
        // The waker's thread name and its process id (wakers are summed per process).
        const int waker_id = r.waker_tid != 0 ? r.waker_tid : r.waker_tgid;
        s.frames.push_back(synthetic(r.waker_comm + " (" + std::to_string(waker_id) + ")",
                                     profile::FrameKind::kProcess));
      }
    }
    p.stacks.push_back(std::move(s));
  }

  const std::string who = processes_text(processes);
  char dur[32];
  std::snprintf(dur, sizeof(dur), "%.1f s", result.duration_s);
  p.title = (who.empty() ? std::string("no blocked threads") : who) + ", off-CPU" +
            (options.wakers == WakerLayout::kAppended ? " with wakers" : "") +
            ", blocks >= " + micros(result.min_block_ns) + ", " + dur;

  const OffCpuDrops& d = result.drops;
  p.lost_samples = d.counts_full + d.start_full;
  p.failed_stacks += d.stack_collisions;
  p.notes.push_back(
      "off-CPU time is the time target threads spent blocked (switched out sleeping or in an "
      "uninterruptible wait) from switch-out to wakeup, for blocks of at least " +
      micros(result.min_block_ns) +
      "; time runnable but waiting for a CPU is not included (that is CPU wait)");
  if (d.blocks_sampled_out > 0) {
    const std::uint64_t all = d.blocks_traced + d.blocks_sampled_out;
    char pct[32];
    std::snprintf(pct, sizeof(pct), "%.1f%%",
                  100.0 * static_cast<double>(d.blocks_traced) / static_cast<double>(all));
    p.notes.push_back("blocks came faster than the tracing budget per CPU, so they were sampled: " +
                      std::to_string(d.blocks_traced) + " of all " + std::to_string(all) +
                      " blocks (" + pct +
                      ") were traced and weighed by their sampling interval; times and counts "
                      "are estimates (exact: --off-cpu-budget 0)");
  }
  if (d.counts_full > 0 || d.start_full > 0) {
    p.notes.push_back(std::to_string(p.lost_samples) +
                      " blocks were lost because a BPF map was full (distinct stacks: " +
                      std::to_string(d.counts_full) + ", threads blocked at once: " +
                      std::to_string(d.start_full) + "); raise the map sizes");
  }
  if (d.stack_collisions > 0) {
    p.notes.push_back(std::to_string(d.stack_collisions) +
                      " stack captures were lost to stack-map hash collisions; their time is "
                      "kept under a shorter stack");
  }
  if (d.stack_failures > 0) {
    p.notes.push_back(std::to_string(d.stack_failures) +
                      " stacks could not be walked by the kernel (a user stack without frame "
                      "pointers or paged out)");
  }
  if (interrupt_wakers > 0) {
    p.notes.push_back(std::to_string(interrupt_wakers) +
                      " stacks were woken from an interrupt (device completion, timer, packet): "
                      "shown by the interrupt's kernel stack under [interrupt]");
  }
  for (const auto& e : b.attach_errors) {
    p.notes.push_back("cannot read the mappings of " + e + ": its frames stay unresolved");
  }
  for (const auto& n : result.notes) p.notes.push_back(n);
  for (const auto& n : symbolizer.notes()) p.notes.push_back(n);
  return p;
}

}  // namespace chokepoint::collect::bpf
