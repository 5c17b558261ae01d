// OffCpuResult -> profile::Profile: frame order, the waker layout, interrupt wakers, counters and
// notes. The symbolizer here names addresses from a table, so the layout is checked exactly; the
// real symbolizer is exercised by the lab tests in tests/integration/offcpu.

#include "collect/bpf/offcpu_profile.h"

#include <gtest/gtest.h>

#include <map>

namespace chokepoint::collect::bpf {
namespace {

class TableSymbolizer : public symbolize::Symbolizer {
 public:
  std::map<std::uint64_t, std::string> names;  // address looked up -> function
  std::vector<int> attached;
  util::Result<void> attach(int pid) override {
    attached.push_back(pid);
    return {};
  }
  profile::Frame user(int, std::uint64_t address) override { return frame(address, false); }
  profile::Frame kernel(std::uint64_t address) override { return frame(address, true); }
  std::vector<std::string> notes() const override { return {}; }
  symbolize::SymbolizerStats stats() const override { return {}; }

 private:
  profile::Frame frame(std::uint64_t address, bool kernel) {
    profile::Frame f;
    auto it = names.find(address);
    f.name = it != names.end() ? it->second : "?";
    f.kind = kernel ? profile::FrameKind::kKernel : profile::FrameKind::kUser;
    return f;
  }
};

std::vector<std::string> names_of(const profile::Stack& s) {
  std::vector<std::string> out;
  for (const auto& f : s.frames) out.push_back(f.name);
  return out;
}

OffCpuResult one_lock_wait() {
  OffCpuResult r;
  r.duration_s = 2;
  r.min_block_ns = 10'000;
  r.max_stack_depth = 127;
  OffCpuRecord rec;
  rec.tgid = 100;
  rec.tid = 101;
  rec.comm = "lab-loop-1";
  rec.process_comm = "chokepoint-lab";
  // Innermost first; looked up at address - 1.
  rec.user_addresses = {0x1001, 0x2001, 0x3001};  // __lll_lock_wait, LabStore::update, main
  rec.kernel_addresses = {0x9001, 0x9101};        // schedule, entry_SYSCALL_64
  rec.woken = true;
  rec.waker_in_interrupt = false;
  rec.waker_tgid = 100;
  rec.waker_tid = 102;
  rec.waker_comm = "lab-loop-0";
  rec.waker_kernel_addresses = {0x8001, 0x8101};  // try_to_wake_up, entry_SYSCALL_64
  rec.waker_user_addresses = {0x4001, 0x2001};    // __lll_lock_wake, LabStore::update
  rec.total_ns = 5'000'000;
  rec.count = 7;
  r.records.push_back(rec);
  return r;
}

TableSymbolizer table() {
  TableSymbolizer s;
  s.names = {{0x1000, "__lll_lock_wait"},  {0x2000, "LabStore::update"}, {0x3000, "main"},
             {0x9000, "schedule"},         {0x9100, "entry_SYSCALL_64"}, {0x8000, "try_to_wake_up"},
             {0x8100, "entry_SYSCALL_64"}, {0x4000, "__lll_lock_wake"}};
  return s;
}

TEST(OffCpuProfile, BlockedStackIsOutermostFirstWithTheTimeAsValue) {
  auto sym = table();
  profile::Profile p = to_profile(one_lock_wait(), sym);
  EXPECT_TRUE(p.off_cpu);
  EXPECT_EQ(p.weight, profile::Weight::kNanoseconds);
  ASSERT_EQ(p.stacks.size(), 1u);
  EXPECT_EQ(names_of(p.stacks[0]),
            (std::vector<std::string>{"chokepoint-lab (100)", "main", "LabStore::update",
                                      "__lll_lock_wait", "entry_SYSCALL_64", "schedule"}));
  EXPECT_EQ(p.stacks[0].frames[0].kind, profile::FrameKind::kProcess);
  EXPECT_EQ(p.stacks[0].value, 5'000'000u);
  EXPECT_EQ(p.stacks[0].count, 7u);
  EXPECT_NE(p.title.find("chokepoint-lab (pid 100)"), std::string::npos) << p.title;
  EXPECT_NE(p.title.find("off-CPU"), std::string::npos);
  EXPECT_EQ(sym.attached, std::vector<int>{100});
}

TEST(OffCpuProfile, AttachedPidsAreNotAttachedAgain) {
  auto sym = table();
  OffCpuProfileOptions o;
  o.attached_pids = {100};
  (void)to_profile(one_lock_wait(), sym, o);
  EXPECT_TRUE(sym.attached.empty());
}

TEST(OffCpuProfile, AppendedWakerMeetsTheBlockAtTheMarker) {
  auto sym = table();
  OffCpuProfileOptions o;
  o.wakers = WakerLayout::kAppended;
  o.thread_frames = true;
  profile::Profile p = to_profile(one_lock_wait(), sym, o);
  ASSERT_EQ(p.stacks.size(), 1u);
  EXPECT_EQ(names_of(p.stacks[0]),
            (std::vector<std::string>{
                "chokepoint-lab (100)", "lab-loop-1 (101)", "main", "LabStore::update",
                "__lll_lock_wait", "entry_SYSCALL_64", "schedule", kWokenByMarker, "try_to_wake_up",
                "entry_SYSCALL_64", "__lll_lock_wake", "LabStore::update", "lab-loop-0 (102)"}));
}

TEST(OffCpuProfile, InterruptWakerShowsOnlyItsKernelStack) {
  auto sym = table();
  sym.names[0x8100] = "asm_sysvec_apic_timer_interrupt";
  OffCpuProfileOptions o;
  o.wakers = WakerLayout::kAppended;
  profile::Profile p = to_profile(one_lock_wait(), sym, o);
  auto names = names_of(p.stacks[0]);
  ASSERT_GE(names.size(), 3u);
  EXPECT_EQ(names.back(), "[interrupt]");
  EXPECT_EQ(names[names.size() - 2], "asm_sysvec_apic_timer_interrupt");
  bool note = false;
  for (const auto& n : p.notes) note = note || n.find("[interrupt]") != std::string::npos;
  EXPECT_TRUE(note);
}

TEST(OffCpuProfile, InterruptWakerLosesTheCodeItInterrupted) {
  auto sym = table();
  sym.names[0x8100] = "asm_common_interrupt";
  sym.names[0x8200] = "memcpy_orig";  // what the interrupt happened to interrupt
  OffCpuResult r = one_lock_wait();
  r.records[0].waker_in_interrupt = true;
  r.records[0].waker_kernel_addresses = {0x8001, 0x8101, 0x8201};
  OffCpuProfileOptions o;
  o.wakers = WakerLayout::kAppended;
  profile::Profile p = to_profile(r, sym, o);
  auto names = names_of(p.stacks[0]);
  std::vector<std::string> tail(names.end() - 4, names.end());
  EXPECT_EQ(tail, (std::vector<std::string>{kWokenByMarker, "try_to_wake_up",
                                            "asm_common_interrupt", "[interrupt]"}));
}

TEST(OffCpuProfile, DropsAreCountedAndExplained) {
  auto sym = table();
  OffCpuResult r = one_lock_wait();
  r.drops.counts_full = 3;
  r.drops.start_full = 2;
  r.drops.stack_collisions = 4;
  r.records[0].user_stack_error = EFAULT;
  profile::Profile p = to_profile(r, sym);
  EXPECT_EQ(p.lost_samples, 5u);
  EXPECT_EQ(p.failed_stacks, 5u);
  std::string all;
  for (const auto& n : p.notes) all += n + "\n";
  EXPECT_NE(all.find("5 blocks were lost"), std::string::npos) << all;
  EXPECT_NE(all.find("4 stack captures"), std::string::npos) << all;
}

TEST(OffCpuProfile, KernelThreadWithoutUserStackIsNotAFailure) {
  auto sym = table();
  OffCpuResult r = one_lock_wait();
  r.records[0].user_addresses.clear();
  r.records[0].user_stack_error = ENOENT;
  profile::Profile p = to_profile(r, sym);
  EXPECT_EQ(p.failed_stacks, 0u);
  EXPECT_EQ(names_of(p.stacks[0]),
            (std::vector<std::string>{"chokepoint-lab (100)", "entry_SYSCALL_64", "schedule"}));
}

TEST(OffCpuProfile, TracerFramesAreDroppedFromTheLeaf) {
  auto sym = table();
  sym.names[0x7000] = "bpf_prog_2a1959bf2794046c_offcpu_switch";
  sym.names[0x7100] = "bpf_trace_run4";
  OffCpuResult r = one_lock_wait();
  r.records[0].kernel_addresses.insert(r.records[0].kernel_addresses.begin(), {0x7001, 0x7101});
  profile::Profile p = to_profile(r, sym);
  EXPECT_EQ(p.stacks[0].frames.back().name, "schedule");
  EXPECT_TRUE(is_tracer_frame("__bpf_trace_sched_switch"));
  EXPECT_FALSE(is_tracer_frame("schedule"));
}

TEST(OffCpuProfile, InterruptEntryNames) {
  EXPECT_TRUE(is_interrupt_entry("asm_common_interrupt"));
  EXPECT_TRUE(is_interrupt_entry("sysvec_call_function_single"));
  EXPECT_FALSE(is_interrupt_entry("futex_wake"));
  EXPECT_FALSE(is_interrupt_entry("entry_SYSCALL_64_after_hwframe"));
}

}  // namespace
}  // namespace chokepoint::collect::bpf
