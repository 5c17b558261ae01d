#include "collect/procfs/system.h"
#include "unit/collect/procfs/fixture_text.h"

#include <gtest/gtest.h>

#include <fstream>
#include <limits>
#include <sstream>
#include <string>

namespace chokepoint::collect::procfs {
namespace {

constexpr Units kUnits = testing::kFixtureUnits;
constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

using testing::fixture;

TEST(SystemStat, HostFile) {
  auto s = parse_system_stat(fixture("host/stat"), kUnits);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->total.cpu, -1);
  EXPECT_FALSE(s->cpus.empty());
  EXPECT_EQ(s->cpus[0].cpu, 0);
  EXPECT_GT(s->total.idle_ns, 0u);
  EXPECT_GT(s->ctxt, 0u);
  EXPECT_GT(s->btime_sec, 1'000'000'000u);
  EXPECT_GE(s->procs_running, 1u);
  // The aggregate is the sum of the CPUs (to within a tick per CPU: each is rounded on its own).
  std::uint64_t user = 0;
  for (const auto& cpu : s->cpus) user += cpu.user_ns;
  EXPECT_NEAR(static_cast<double>(user), static_cast<double>(s->total.user_ns),
              10'000'000.0 * static_cast<double>(s->cpus.size()));
  EXPECT_EQ(s->total.total_ns(), s->total.busy_ns() + s->total.idle_ns + s->total.iowait_ns);
}

TEST(SystemStat, OlderKernelWithFewerColumns) {
  auto s = parse_system_stat(fixture("old_kernel/stat"), kUnits);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->total.user_ns, 10'000'000'000u);
  EXPECT_EQ(s->total.iowait_ns, 4'000'000'000u);
  EXPECT_EQ(s->total.steal_ns, 70'000'000u);
  EXPECT_EQ(s->total.guest_ns, 0u);  // column not there yet
  ASSERT_EQ(s->cpus.size(), 1u);
  EXPECT_EQ(s->ctxt, 99999u);
  EXPECT_EQ(s->procs_blocked, 1u);
  EXPECT_EQ(s->processes, 4000u);
  // busy = user + nice + system + irq + softirq + steal = 1000+20+300+5+6+7 ticks
  EXPECT_EQ(s->total.busy_ns(), 1338ull * 10'000'000);
}

TEST(SystemStat, RejectsMalformed) {
  EXPECT_FALSE(parse_system_stat("", kUnits));
  EXPECT_FALSE(parse_system_stat("ctxt 5\n", kUnits));     // no cpu line
  EXPECT_FALSE(parse_system_stat("cpu 1 2 3\n", kUnits));  // too few columns
  EXPECT_FALSE(parse_system_stat("cpu 1 2 3 x\n", kUnits));
  EXPECT_FALSE(parse_system_stat("cpu 1 2 3 4\ncpuX 1 2 3 4\n", kUnits));
  EXPECT_FALSE(parse_system_stat("cpu 1 2 3 4\nctxt\n", kUnits));
}

TEST(Meminfo, BytesAndCounts) {
  auto m = parse_meminfo(fixture("host/meminfo"));
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->mem_total_bytes());
  ASSERT_TRUE(m->mem_available_bytes());
  EXPECT_GT(*m->mem_total_bytes(), 64u << 20);
  EXPECT_LE(*m->mem_available_bytes(), *m->mem_total_bytes());
  EXPECT_EQ(*m->mem_total_bytes() % 1024, 0u);
  EXPECT_TRUE(m->swap_total_bytes());
  EXPECT_TRUE(m->swap_free_bytes());

  auto small = parse_meminfo("MemTotal:       2048 kB\nHugePages_Total:       3\n");
  ASSERT_TRUE(small);
  EXPECT_EQ(small->mem_total_bytes(), 2048u * 1024);
  EXPECT_EQ(small->get("HugePages_Total"), 3u);  // a count, not kB
  EXPECT_FALSE(small->mem_available_bytes());
  EXPECT_FALSE(parse_meminfo(""));
  EXPECT_FALSE(parse_meminfo("MemTotal: 12 MB\n"));
  EXPECT_FALSE(parse_meminfo("MemTotal 12 kB\n"));
}

TEST(Vmstat, CurrentKernel) {
  auto vm = parse_vmstat(fixture("host/vmstat"));
  ASSERT_TRUE(vm);
  EXPECT_TRUE(vm->pgmajfault());
  EXPECT_TRUE(vm->oom_kill());
  EXPECT_EQ(vm->workingset_refault_file(), vm->get("workingset_refault_file"));
  EXPECT_TRUE(vm->workingset_refault_anon());
  ASSERT_TRUE(vm->pgscan_total());
  EXPECT_EQ(*vm->pgscan_total(), *vm->get("pgscan_anon") + *vm->get("pgscan_file"));
}

TEST(Vmstat, OlderKernelWithoutRefaultFile) {
  auto vm = parse_vmstat(fixture("old_kernel/vmstat"));
  ASSERT_TRUE(vm);
  EXPECT_FALSE(vm->get("workingset_refault_file"));
  EXPECT_EQ(vm->workingset_refault_file(), 4321u);  // falls back to workingset_refault
  EXPECT_FALSE(vm->workingset_refault_anon());
  EXPECT_EQ(vm->pgscan_total(), 151u);  // kswapd_dma + kswapd_normal + direct_normal, no throttle
  EXPECT_EQ(vm->pgsteal_total(), 130u);
  EXPECT_EQ(vm->pgmajfault(), 77u);
  EXPECT_FALSE(vm->oom_kill());
}

TEST(Vmstat, NearMaxAndMalformed) {
  auto vm = parse_vmstat(fixture("counters_max/vmstat"));
  ASSERT_TRUE(vm);
  EXPECT_EQ(vm->pgmajfault(), kMax);
  EXPECT_EQ(vm->pgscan_total(), kMax);  // saturates instead of wrapping to 4
  EXPECT_FALSE(parse_vmstat(""));
  EXPECT_FALSE(parse_vmstat("pgmajfault\n"));
  EXPECT_FALSE(parse_vmstat("pgmajfault -1\n"));
  EXPECT_FALSE(parse_vmstat("pgmajfault 1 2\n"));
  Vmstat empty;
  EXPECT_FALSE(empty.pgscan_total());
}

TEST(Diskstats, TwentyFields) {
  auto disks = parse_diskstats(fixture("host/diskstats"));
  ASSERT_TRUE(disks);
  ASSERT_FALSE(disks->empty());
  for (const auto& d : *disks) {
    EXPECT_FALSE(d.name.empty());
    EXPECT_TRUE(d.flushes) << d.name;  // this 6.x kernel prints 20 fields
    EXPECT_EQ(d.read_bytes % 512, 0u);
  }
}

TEST(Diskstats, FourteenFields) {
  auto disks = parse_diskstats(fixture("old_kernel/diskstats"));
  ASSERT_TRUE(disks);
  ASSERT_EQ(disks->size(), 2u);
  const DiskStats& sda = (*disks)[0];
  EXPECT_EQ(sda.major, 8u);
  EXPECT_EQ(sda.minor, 0u);
  EXPECT_EQ(sda.name, "sda");
  EXPECT_EQ(sda.reads, 100u);
  EXPECT_EQ(sda.reads_merged, 5u);
  EXPECT_EQ(sda.read_bytes, 2000u * 512);
  EXPECT_EQ(sda.read_time_ns, 300'000'000u);
  EXPECT_EQ(sda.writes, 50u);
  EXPECT_EQ(sda.writes_merged, 6u);
  EXPECT_EQ(sda.write_bytes, 800u * 512);
  EXPECT_EQ(sda.write_time_ns, 400'000'000u);
  EXPECT_EQ(sda.in_flight, 0u);
  EXPECT_EQ(sda.io_time_ns, 600'000'000u);
  EXPECT_EQ(sda.weighted_io_time_ns, 700'000'000u);
  EXPECT_FALSE(sda.discards);
  EXPECT_FALSE(sda.flushes);
  EXPECT_EQ((*disks)[1].name, "sda1");
  EXPECT_EQ((*disks)[1].in_flight, 2u);
}

TEST(Diskstats, EighteenFields) {
  auto disks = parse_diskstats(fixture("kernel_4_19/diskstats"));
  ASSERT_TRUE(disks);
  ASSERT_EQ(disks->size(), 1u);
  const DiskStats& d = (*disks)[0];
  EXPECT_EQ(d.name, "nvme0n1");
  EXPECT_EQ(d.major, 259u);
  EXPECT_EQ(d.discards, 30u);
  EXPECT_EQ(d.discards_merged, 0u);
  EXPECT_EQ(d.discard_bytes, 6000u * 512);
  EXPECT_EQ(d.discard_time_ns, 12'000'000u);
  EXPECT_FALSE(d.flushes);
  EXPECT_FALSE(d.flush_time_ns);
}

TEST(Diskstats, TwentyFieldsByHandAndSaturation) {
  auto disks = parse_diskstats(
      "   8  0 sda 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n"
      "   8 16 sdb 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19\n");  // a future kernel
  ASSERT_TRUE(disks);
  ASSERT_EQ(disks->size(), 2u);
  EXPECT_EQ((*disks)[0].flushes, 16u);
  EXPECT_EQ((*disks)[0].flush_time_ns, 17'000'000u);
  EXPECT_EQ((*disks)[1].flushes, 16u);  // extra fields ignored

  auto max = parse_diskstats(fixture("counters_max/diskstats"));
  ASSERT_TRUE(max);
  EXPECT_EQ((*max)[0].reads, kMax);
  EXPECT_EQ((*max)[0].read_bytes, kMax);
  EXPECT_EQ((*max)[0].read_time_ns, kMax);
  EXPECT_EQ((*max)[0].write_bytes, kMax - 511);  // (2^55 - 1) * 512 still fits

  EXPECT_FALSE(parse_diskstats("8 0 sda 1 2 3 4 5 6 7 8 9 10\n"));  // 13 fields
  EXPECT_FALSE(parse_diskstats("8 0 sda 1 2 3 4 5 6 7 8 9 10 x\n"));
  EXPECT_FALSE(parse_diskstats("x 0 sda 1 2 3 4 5 6 7 8 9 10 11\n"));
  EXPECT_TRUE(parse_diskstats("")->empty());  // a machine without block devices
}

TEST(Pressure, SomeAndFull) {
  auto cpu = parse_pressure(fixture("host/pressure/cpu"));
  ASSERT_TRUE(cpu);
  EXPECT_TRUE(cpu->supported);
  ASSERT_TRUE(cpu->some);
  EXPECT_GE(cpu->some->avg10, 0.0);
  EXPECT_EQ(cpu->some->total_ns % 1000, 0u);
  EXPECT_TRUE(cpu->full);

  auto p = parse_pressure(
      "some avg10=16.32 avg60=6.77 avg300=2.72 total=12722538\n"
      "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
  ASSERT_TRUE(p);
  EXPECT_DOUBLE_EQ(p->some->avg10, 16.32);
  EXPECT_DOUBLE_EQ(p->some->avg60, 6.77);
  EXPECT_DOUBLE_EQ(p->some->avg300, 2.72);
  EXPECT_EQ(p->some->total_ns, 12'722'538'000u);
  EXPECT_EQ(p->full->total_ns, 0u);
}

TEST(Pressure, CpuWithoutFullOnOlderKernels) {
  auto p = parse_pressure(fixture("old_kernel/pressure/cpu"));
  ASSERT_TRUE(p);
  ASSERT_TRUE(p->some);
  EXPECT_DOUBLE_EQ(p->some->avg10, 1.5);
  EXPECT_EQ(p->some->total_ns, 123'456'000u);
  EXPECT_FALSE(p->full);
}

TEST(Pressure, RejectsMalformed) {
  EXPECT_FALSE(parse_pressure(""));
  EXPECT_FALSE(parse_pressure("full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"));  // no some
  EXPECT_FALSE(parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00\n"));
  EXPECT_FALSE(parse_pressure("some avg10=x avg60=0.00 avg300=0.00 total=0\n"));
  EXPECT_FALSE(parse_pressure("some avg10=1 avg10=1 avg300=0.00 total=0\n"));  // avg60 missing
  EXPECT_FALSE(parse_pressure("some avg10=1 avg60=1 avg300=0.00 total=-5\n"));
}

TEST(LoadAvg, Parses) {
  auto l = parse_loadavg("0.16 0.22 0.10 1/84 4848\n");
  ASSERT_TRUE(l);
  EXPECT_DOUBLE_EQ(l->load1, 0.16);
  EXPECT_DOUBLE_EQ(l->load15, 0.10);
  EXPECT_EQ(l->runnable, 1u);
  EXPECT_EQ(l->total_tasks, 84u);
  EXPECT_EQ(l->last_pid, 4848);
  EXPECT_TRUE(parse_loadavg(fixture("host/loadavg")));
  EXPECT_FALSE(parse_loadavg("0.16 0.22 0.10 1-84 4848\n"));
  EXPECT_FALSE(parse_loadavg("0.16 0.22 0.10 1/84\n"));
}

TEST(FileNr, AndFileMax) {
  auto nr = parse_file_nr(fixture("host/sys/fs/file-nr"));
  ASSERT_TRUE(nr);
  EXPECT_GT(nr->allocated, 0u);
  EXPECT_GT(nr->max, nr->allocated);
  auto old = parse_file_nr(fixture("old_kernel/sys/fs/file-nr"));
  ASSERT_TRUE(old);
  EXPECT_EQ(old->allocated, 1024u);
  EXPECT_EQ(old->max, 50000u);
  EXPECT_EQ(parse_file_max(fixture("host/sys/fs/file-max")), nr->max);
  EXPECT_FALSE(parse_file_nr("1 2\n"));
  EXPECT_FALSE(parse_file_max("lots\n"));
}

}  // namespace
}  // namespace chokepoint::collect::procfs
