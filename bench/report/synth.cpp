// Stretches a real recording to a longer one through the real store writer: the recording's
// ticks after the first are repeated back to back, each repeat shifted by the recording's span,
// with every cumulative counter (schedstat, stat, /proc/PID/io, taskstats, tcp_info, the system
// counters) advanced by what it grew over the source, so the result is what the same target,
// doing the same thing, would have given over the longer time.
// Usage: chokepoint-bench-report-synth SOURCE OUTPUT SECONDS
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "store/recording.h"

namespace {

using chokepoint::model::Tick;

std::uint64_t grow(std::uint64_t value, std::uint64_t first, std::uint64_t last, std::int64_t r) {
  return value + (last >= first ? last - first : 0) * static_cast<std::uint64_t>(r);
}

void grow_opt(std::optional<std::uint64_t>& v, const std::optional<std::uint64_t>& a,
              const std::optional<std::uint64_t>& b, std::int64_t r) {
  if (v && a && b) v = grow(*v, *a, *b, r);
}

// Each thread's counters in its first and last record of the source.
struct ThreadSpan {
  chokepoint::model::ThreadSample first, last;
  bool seen = false;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s SOURCE OUTPUT SECONDS\n", argv[0]);
    return 2;
  }
  auto source = chokepoint::store::read_all(argv[1]);
  if (!source || source->ticks.size() < 3) {
    std::fprintf(stderr, "error: %s: %s\n", argv[1],
                 source ? "fewer than 3 ticks" : source.error().message.c_str());
    return 1;
  }
  auto& ticks = source->ticks;
  if (ticks.back().closing) ticks.pop_back();  // the closing reads end the output only
  const std::int64_t span = ticks.back().at_ns - ticks.front().at_ns;
  const std::int64_t want_ns = std::atoll(argv[3]) * 1'000'000'000LL;
  const std::int64_t repeats = std::max<std::int64_t>(1, want_ns / span);

  std::map<std::pair<int, int>, ThreadSpan> threads;
  std::map<int, std::pair<chokepoint::model::ProcessSample, chokepoint::model::ProcessSample>>
      procs;
  std::optional<chokepoint::model::SystemSample> sys_first, sys_last;
  for (std::size_t i = 1; i < ticks.size(); ++i) {
    for (const auto& s : ticks[i].threads) {
      if (s.first) continue;
      auto& t = threads[{s.key.pid, s.key.tid}];
      if (!t.seen) t.first = s;
      t.last = s;
      t.seen = true;
    }
    for (const auto& p : ticks[i].processes) {
      auto [it, added] = procs.try_emplace(p.pid, p, p);
      if (!added) it->second.second = p;
    }
    if (ticks[i].system) {
      if (!sys_first) sys_first = ticks[i].system;
      sys_last = ticks[i].system;
    }
  }
  // A thread's counters grow per repeat by what they grew over the whole source span: from its
  // first record (or its base) to its last.
  std::map<std::pair<int, int>, chokepoint::model::ThreadSample> base;
  for (const auto& s : ticks.front().threads) base[{s.key.pid, s.key.tid}] = s;

  chokepoint::store::WriterOptions options;
  options.chokepoint_version = "bench";
  auto writer = chokepoint::store::RecordingWriter::create(argv[2], options);
  if (!writer) {
    std::fprintf(stderr, "error: %s\n", writer.error().message.c_str());
    return 1;
  }
  (*writer)->begin(source->info);
  (*writer)->add(ticks.front());
  for (std::int64_t r = 0; r < repeats; ++r) {
    for (std::size_t i = 1; i < ticks.size(); ++i) {
      Tick t = ticks[i];
      const std::int64_t shift = r * span;
      t.at_ns += shift;
      t.new_pids.clear();
      std::vector<chokepoint::model::ThreadSample> kept;
      for (auto& s : t.threads) {
        if (s.first && r > 0) continue;
        const auto id = std::make_pair(s.key.pid, s.key.tid);
        auto b = base.find(id);
        auto sp = threads.find(id);
        if (!s.first && b != base.end() && sp != threads.end()) {
          const auto& a = b->second;
          const auto& z = sp->second.last;
          s.run_ns = grow(s.run_ns, a.run_ns, z.run_ns, r);
          s.run_delay_ns = grow(s.run_delay_ns, a.run_delay_ns, z.run_delay_ns, r);
          s.utime_ns = grow(s.utime_ns, a.utime_ns, z.utime_ns, r);
          s.stime_ns = grow(s.stime_ns, a.stime_ns, z.stime_ns, r);
          s.majflt = grow(s.majflt, a.majflt, z.majflt, r);
          s.blkio_delay_ns = grow(s.blkio_delay_ns, a.blkio_delay_ns, z.blkio_delay_ns, r);
        }
        s.at_ns += shift;
        s.prev_poll_ns += shift;
        kept.push_back(std::move(s));
      }
      t.threads = std::move(kept);
      for (auto& p : t.processes) {
        p.at_ns += shift;
        if (r > 0) p.name.reset();
        const auto& [a, z] = procs[p.pid];
        if (p.io && a.io && z.io) {
          p.io->read_bytes = grow(p.io->read_bytes, a.io->read_bytes, z.io->read_bytes, r);
          p.io->write_bytes = grow(p.io->write_bytes, a.io->write_bytes, z.io->write_bytes, r);
          p.io->syscw = grow(p.io->syscw, a.io->syscw, z.io->syscw, r);
        }
        if (p.delays && a.delays && z.delays) {
          p.delays->cpu_ns = grow(p.delays->cpu_ns, a.delays->cpu_ns, z.delays->cpu_ns, r);
          p.delays->blkio_ns = grow(p.delays->blkio_ns, a.delays->blkio_ns, z.delays->blkio_ns, r);
        }
      }
      for (auto& s : t.sockets) s.at_ns += shift;
      if (t.system && sys_first && sys_last) {
        auto& s = *t.system;
        const auto& a = *sys_first;
        const auto& z = *sys_last;
        s.at_ns += shift;
        s.cpu_total_ns = grow(s.cpu_total_ns, a.cpu_total_ns, z.cpu_total_ns, r);
        s.cpu_busy_ns = grow(s.cpu_busy_ns, a.cpu_busy_ns, z.cpu_busy_ns, r);
        s.cpu_iowait_ns = grow(s.cpu_iowait_ns, a.cpu_iowait_ns, z.cpu_iowait_ns, r);
        s.pgmajfault = grow(s.pgmajfault, a.pgmajfault, z.pgmajfault, r);
        s.refault_file = grow(s.refault_file, a.refault_file, z.refault_file, r);
        s.refault_anon = grow(s.refault_anon, a.refault_anon, z.refault_anon, r);
        grow_opt(s.tcp_retrans_segs, a.tcp_retrans_segs, z.tcp_retrans_segs, r);
        grow_opt(s.listen_overflows, a.listen_overflows, z.listen_overflows, r);
        grow_opt(s.psi_cpu.some_total_ns, a.psi_cpu.some_total_ns, z.psi_cpu.some_total_ns, r);
        grow_opt(s.psi_io.some_total_ns, a.psi_io.some_total_ns, z.psi_io.some_total_ns, r);
        grow_opt(s.psi_memory.some_total_ns, a.psi_memory.some_total_ns, z.psi_memory.some_total_ns,
                 r);
        if (s.disks && a.disks && z.disks && s.disks->size() == a.disks->size() &&
            s.disks->size() == z.disks->size()) {
          for (std::size_t d = 0; d < s.disks->size(); ++d) {
            auto& x = (*s.disks)[d];
            const auto& da = (*a.disks)[d];
            const auto& dz = (*z.disks)[d];
            x.reads = grow(x.reads, da.reads, dz.reads, r);
            x.writes = grow(x.writes, da.writes, dz.writes, r);
            x.io_time_ns = grow(x.io_time_ns, da.io_time_ns, dz.io_time_ns, r);
            x.weighted_io_time_ns =
                grow(x.weighted_io_time_ns, da.weighted_io_time_ns, dz.weighted_io_time_ns, r);
            x.read_time_ns = grow(x.read_time_ns, da.read_time_ns, dz.read_time_ns, r);
            x.write_time_ns = grow(x.write_time_ns, da.write_time_ns, dz.write_time_ns, r);
            grow_opt(x.flushes, da.flushes, dz.flushes, r);
          }
        }
      }
      // The collector's counters are the recorder's own cost: kept only from the last repeat.
      if (r + 1 < repeats) t.collector.reset();
      t.closing = r + 1 == repeats && i + 1 == ticks.size();
      (*writer)->add(std::move(t));
    }
  }
  std::printf("%lld repeats of %.1f s: %.0f s, %llu ticks, %llu thread rows\n",
              static_cast<long long>(repeats), static_cast<double>(span) / 1e9,
              static_cast<double>(repeats * span) / 1e9,
              static_cast<unsigned long long>((*writer)->ticks_written()),
              static_cast<unsigned long long>((*writer)->thread_rows_written()));
  return (*writer)->ticks_lost() > 0 ? 1 : 0;
}
