// Fuzzes the system-wide parsers (system.h). Input: one selector byte, then the file's text.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "collect/procfs/ipc.h"
#include "collect/procfs/system.h"
#include "fuzz/procfs/fuzz_input.h"

using namespace chokepoint::collect::procfs;

using fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view text = fuzz::text_after_selector(data, size);
  const Units units = fuzz::kUnits;
  switch (fuzz::selector(data) % 9) {
    case 0:
      if (auto s = parse_system_stat(text, units)) {
        check(s->total.cpu == -1);
        check(s->total.total_ns() >= s->total.busy_ns());
        for (const auto& cpu : s->cpus) check(cpu.cpu >= 0);
      }
      break;
    case 1:
      if (auto m = parse_meminfo(text)) {
        check(!m->values.empty());
        (void)m->mem_available_bytes();
      }
      break;
    case 2:
      if (auto vm = parse_vmstat(text)) {
        (void)vm->pgscan_total();
        (void)vm->pgsteal_total();
        (void)vm->workingset_refault_file();
      }
      break;
    case 3:
      if (auto disks = parse_diskstats(text)) {
        for (const auto& d : *disks) {
          check(!d.name.empty());
          check(!d.flushes || d.discards);  // 20-field lines have the 18-field ones too
        }
      }
      break;
    case 4:
      if (auto p = parse_pressure(text)) check(p->some.has_value() && p->supported);
      break;
    case 5:
      (void)parse_loadavg(text);
      break;
    case 6:
      (void)parse_file_nr(text);
      break;
    case 7:
      (void)parse_file_max(text);
      break;
    case 8:
      if (auto segs = parse_sysvipc_shm(text)) {
        for (const auto& s : *segs) check(s.creator_pid >= 0 && s.last_pid >= 0);
      }
      break;
  }
  return 0;
}
