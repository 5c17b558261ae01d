// Golden "diff tests": every reader run over every fixture root, printed in a stable text form and
// compared with tests/fixtures/proc/<case>.golden. A parser change that alters any field of any
// fixture shows up as a diff. After an intended change, regenerate with
//   CHOKEPOINT_UPDATE_GOLDEN=1 build-x/tests/collect_procfs_test --gtest_filter='Golden*'
// and review the diff of the .golden files like code.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <string>

#include "collect/procfs/proc_fs.h"
#include "support/golden.h"

namespace chokepoint::collect::procfs {
namespace {

constexpr Units kUnits{100, 4096};

std::string opt(const std::optional<std::uint64_t>& v) {
  return v ? std::to_string(*v) : "-";
}
std::string opt(const std::optional<std::int32_t>& v) {
  return v ? std::to_string(*v) : "-";
}

template <typename T, typename Print>
void section(std::string& out, const std::string& name, const util::Result<T>& r, Print print) {
  out += "[" + name + "]\n";
  if (!r) {
    out += fmt::format("error errno={}\n", r.error().errno_value);
    return;
  }
  print(*r);
}

void print_task_stat(std::string& out, const TaskStat& s) {
  out += fmt::format(
      "pid={} comm={:?} state={} ppid={} minflt={} majflt={} utime_ns={} stime_ns={} "
      "priority={} nice={} num_threads={} start_time_ticks={} start_time_ns={} vsize_bytes={} "
      "rss_bytes={} processor={} delayacct_blkio_ns={}\n",
      s.pid, s.comm, s.state, s.ppid, s.minflt, s.majflt, s.utime_ns, s.stime_ns, s.priority,
      s.nice, s.num_threads, s.start_time_ticks, s.start_time_ns, s.vsize_bytes, s.rss_bytes,
      opt(s.processor), opt(s.delayacct_blkio_ns));
}

std::string dump(const ProcFs& fs) {
  std::string out;
  auto pids = fs.list_pids();
  section(out, "pids", pids, [&](const std::vector<int>& v) {
    for (int pid : v) out += fmt::format("{}\n", pid);
  });
  for (int pid : pids ? *pids : std::vector<int>{}) {
    const std::string p = std::to_string(pid);
    section(out, p + "/stat", fs.read_process_stat(pid),
            [&](const TaskStat& s) { print_task_stat(out, s); });
    section(out, p + "/status", fs.read_process_status(pid), [&](const TaskStatus& s) {
      out += fmt::format(
          "name={:?} state={} tgid={} pid={} ppid={} uid={} vm_rss_bytes={} vm_hwm_bytes={} "
          "threads={} voluntary={} nonvoluntary={}\n",
          s.name, s.state, s.tgid, s.pid, s.ppid, s.uid, opt(s.vm_rss_bytes), opt(s.vm_hwm_bytes),
          s.threads, s.voluntary_ctxt_switches, s.nonvoluntary_ctxt_switches);
    });
    section(out, p + "/limits", fs.read_limits(pid), [&](const Limits& l) {
      for (const auto& x : l.limits) {
        out += fmt::format("{:?} soft={} hard={} units={:?}\n", x.name, x.soft, x.hard, x.units);
      }
    });
    section(out, p + "/cgroup", fs.read_cgroup(pid), [&](const std::vector<CgroupEntry>& v) {
      for (const auto& e : v) {
        out += fmt::format("{} {} {:?}\n", e.hierarchy_id, fmt::join(e.controllers, ","), e.path);
      }
    });
    section(out, p + "/fd", fs.read_fd_targets(pid), [&](const std::vector<FdEntry>& v) {
      for (const auto& e : v) {
        // Paths of regular files name a random temp file in host/: print the kind only.
        out += fmt::format("{} {} inode={} deleted={}\n", e.fd, fd_kind_name(e.target.kind),
                           e.target.inode, e.target.deleted);
      }
    });
    auto tids = fs.list_tids(pid);
    section(out, p + "/task", tids, [&](const std::vector<int>& v) {
      for (int tid : v) out += fmt::format("{}\n", tid);
    });
    for (int tid : tids ? *tids : std::vector<int>{}) {
      const std::string t = p + "/task/" + std::to_string(tid);
      section(out, t + "/stat", fs.read_task_stat(pid, tid),
              [&](const TaskStat& s) { print_task_stat(out, s); });
      section(out, t + "/schedstat", fs.read_task_schedstat(pid, tid), [&](const Schedstat& s) {
        out += fmt::format("run_ns={} run_delay_ns={} timeslices={}\n", s.run_ns, s.run_delay_ns,
                           s.timeslices);
      });
      section(out, t + "/io", fs.read_task_io(pid, tid), [&](const TaskIo& io) {
        out += fmt::format(
            "rchar={} wchar={} syscr={} syscw={} read_bytes={} write_bytes={} cancelled={}\n",
            io.rchar, io.wchar, io.syscr, io.syscw, io.read_bytes, io.write_bytes,
            io.cancelled_write_bytes);
      });
      section(out, t + "/syscall", fs.read_task_syscall(pid, tid), [&](const SyscallState& s) {
        out += fmt::format("kind={} nr={} args={:#x} sp={:#x} pc={:#x}\n", static_cast<int>(s.kind),
                           s.nr, fmt::join(s.args, ","), s.sp, s.pc);
      });
      section(out, t + "/wchan", fs.read_task_wchan(pid, tid),
              [&](const std::string& w) { out += fmt::format("{:?}\n", w); });
    }
  }
  section(out, "stat", fs.read_system_stat(), [&](const SystemStat& s) {
    auto cpu = [&](const CpuTimes& c) {
      out += fmt::format(
          "cpu={} user={} nice={} system={} idle={} iowait={} irq={} softirq={} steal={} "
          "guest={} guest_nice={}\n",
          c.cpu, c.user_ns, c.nice_ns, c.system_ns, c.idle_ns, c.iowait_ns, c.irq_ns, c.softirq_ns,
          c.steal_ns, c.guest_ns, c.guest_nice_ns);
    };
    cpu(s.total);
    for (const auto& c : s.cpus) cpu(c);
    out += fmt::format("ctxt={} processes={} procs_running={} procs_blocked={} btime={}\n", s.ctxt,
                       s.processes, s.procs_running, s.procs_blocked, s.btime_sec);
  });
  section(out, "meminfo", fs.read_meminfo(), [&](const Meminfo& m) {
    for (const auto& [k, v] : m.values) out += fmt::format("{}={}\n", k, v);
  });
  section(out, "vmstat", fs.read_vmstat(), [&](const Vmstat& vm) {
    out += fmt::format(
        "entries={} pgmajfault={} refault_file={} refault_anon={} pgscan={} pgsteal={} "
        "oom_kill={}\n",
        vm.values.size(), opt(vm.pgmajfault()), opt(vm.workingset_refault_file()),
        opt(vm.workingset_refault_anon()), opt(vm.pgscan_total()), opt(vm.pgsteal_total()),
        opt(vm.oom_kill()));
  });
  section(out, "diskstats", fs.read_diskstats(), [&](const std::vector<DiskStats>& v) {
    for (const auto& d : v) {
      out += fmt::format(
          "{}:{} {} r={} rm={} rb={} rt={} w={} wm={} wb={} wt={} inflight={} io={} wio={} "
          "d={} dm={} db={} dt={} f={} ft={}\n",
          d.major, d.minor, d.name, d.reads, d.reads_merged, d.read_bytes, d.read_time_ns, d.writes,
          d.writes_merged, d.write_bytes, d.write_time_ns, d.in_flight, d.io_time_ns,
          d.weighted_io_time_ns, opt(d.discards), opt(d.discards_merged), opt(d.discard_bytes),
          opt(d.discard_time_ns), opt(d.flushes), opt(d.flush_time_ns));
    }
  });
  section(out, "net/dev", fs.read_net_dev(), [&](const std::vector<NetDevStats>& v) {
    for (const auto& d : v) {
      out += fmt::format("{} rx={}/{}/{}/{} tx={}/{}/{}/{}\n", d.name, d.rx_bytes, d.rx_packets,
                         d.rx_errs, d.rx_drops, d.tx_bytes, d.tx_packets, d.tx_errs, d.tx_drops);
    }
  });
  for (const char* name : {"snmp", "netstat"}) {
    auto r = std::string(name) == "snmp" ? fs.read_net_snmp() : fs.read_net_netstat();
    section(out, std::string("net/") + name, r, [&](const NetCounters& c) {
      for (const auto& [k, v] : c.values) out += fmt::format("{}={}\n", k, v);
    });
  }
  section(out, "net/sockstat", fs.read_sockstat(), [&](const Sockstat& s) {
    out += fmt::format(
        "used={} tcp_inuse={} orphan={} tw={} alloc={} tcp_mem_bytes={} udp_inuse={} "
        "udp_mem_bytes={}\n",
        s.sockets_used, s.tcp_inuse, s.tcp_orphan, s.tcp_tw, s.tcp_alloc, s.tcp_mem_bytes,
        s.udp_inuse, s.udp_mem_bytes);
  });
  for (const char* resource : {"cpu", "memory", "io"}) {
    section(out, std::string("pressure/") + resource, fs.read_pressure(resource),
            [&](const Pressure& p) {
              out += fmt::format("supported={}\n", p.supported);
              for (const auto* line : {&p.some, &p.full}) {
                if (!*line) continue;
                out += fmt::format("{} avg10={:.2f} avg60={:.2f} avg300={:.2f} total_ns={}\n",
                                   line == &p.some ? "some" : "full", (*line)->avg10,
                                   (*line)->avg60, (*line)->avg300, (*line)->total_ns);
              }
            });
  }
  section(out, "loadavg", fs.read_loadavg(), [&](const LoadAvg& l) {
    out += fmt::format("{:.2f} {:.2f} {:.2f} runnable={} total={} last_pid={}\n", l.load1, l.load5,
                       l.load15, l.runnable, l.total_tasks, l.last_pid);
  });
  section(out, "file-nr", fs.read_file_nr(), [&](const FileNr& f) {
    out += fmt::format("allocated={} free={} max={}\n", f.allocated, f.free, f.max);
  });
  section(out, "file-max", fs.read_file_max(),
          [&](std::uint64_t v) { out += fmt::format("{}\n", v); });
  return out;
}

class Golden : public ::testing::TestWithParam<const char*> {};

TEST_P(Golden, MatchesTheGoldenFile) {
  const std::string dir = std::string(CHOKEPOINT_FIXTURES_DIR) + "/proc/";
  const std::string actual = dump(ProcFs(dir + GetParam(), kUnits));
  test_support::expect_matches_golden(dir + GetParam() + ".golden", actual);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Golden,
                         ::testing::Values("host", "comm_weird", "old_kernel", "kernel_4_19",
                                           "vanished", "no_psi", "counters_max"));

}  // namespace
}  // namespace chokepoint::collect::procfs
