// Fuzzes the per-task parsers (task.h). Input: one selector byte, then the file's text.
// Beyond "no crash, no sanitizer report", it checks invariants a caller relies on.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "collect/procfs/task.h"
#include "fuzz/procfs/fuzz_input.h"

using namespace chokepoint::collect::procfs;

using fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view text = fuzz::text_after_selector(data, size);
  const Units units = fuzz::kUnits;
  switch (fuzz::selector(data) % 10) {
    case 0:
      if (auto s = parse_task_stat(text, units)) {
        check(s->comm.size() < text.size());
        check(s->start_time_ns >= s->start_time_ticks || s->start_time_ticks == 0);
        check(!s->delayacct_blkio_ns || s->processor);  // (42) comes after (39)
      }
      break;
    case 1:
      (void)parse_schedstat(text);
      break;
    case 2:
      if (auto s = parse_task_status(text)) check(s->name.size() < text.size());
      break;
    case 3:
      (void)parse_task_io(text);
      break;
    case 4:
      if (auto s = parse_syscall(text)) {
        check(s->kind == SyscallState::Kind::kInSyscall ? s->nr >= 0 : s->nr == -1);
      }
      break;
    case 5:
      check(parse_wchan(text).size() <= text.size());
      break;
    case 6:
      if (auto t = parse_fd_target(text)) {
        check(t->path.size() <= text.size());
        check(!fd_kind_name(t->kind).empty());
      } else {
        check(text.empty());
      }
      break;
    case 7:
      if (auto l = parse_limits(text)) {
        check(!l->limits.empty());
        (void)l->max_open_files();
      }
      break;
    case 8:
      if (auto c = parse_cgroup(text)) {
        check(!c->empty());
        (void)cgroup_v2_path(*c);
      }
      break;
    case 9:
      if (auto f = parse_fdinfo_flags(text)) check(text.find("flags:") != std::string_view::npos);
      break;
  }
  return 0;
}
