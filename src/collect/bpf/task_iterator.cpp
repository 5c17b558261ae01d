#include "collect/bpf/task_iterator.h"

#include <linux/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <string>

#include "bpf/taskiter.h"
#include "collect/bpf/bpf_support.h"
#include "collect/bpf/shared_object.h"
#include "util/owned.h"
#include "util/scoped_fd.h"

#ifdef CHOKEPOINT_HAVE_BPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "taskiter.skel.h"
#endif

namespace chokepoint::collect::bpf {

static_assert(sizeof(taskiter_record) == 176, "taskiter.h's record is 176 bytes on both sides");

char state_letter(std::uint32_t state, std::uint32_t exit_state) {
  constexpr std::uint32_t kReport = 0x7f;  // TASK_REPORT: R S D T t X Z P
  constexpr std::uint32_t kIdle = 0x402;   // TASK_IDLE = TASK_UNINTERRUPTIBLE | TASK_NOLOAD
  constexpr std::uint32_t kRtlockWait = 0x1000;
  constexpr std::uint32_t kFrozen = 0x8000;
  static constexpr char kLetters[] = "RSDTtXZPI";  // index fls(state): 0 R, 1 S, 2 D, ...
  std::uint32_t bits = (state | exit_state) & kReport;
  if ((state & kIdle) == kIdle) bits = kReport + 1;  // TASK_REPORT_IDLE: 'I'
  // Sleeping on an rtlock, or frozen, is reported as uninterruptible.
  if ((state & kRtlockWait) != 0 || (state & kFrozen) != 0) bits = 2;
  int index = 0;
  while (bits != 0) {
    ++index;
    bits >>= 1;
  }
  return kLetters[index];
}

std::size_t task_record_bytes() {
  return sizeof(taskiter_record);
}

util::Result<void> parse_task_records(const std::vector<std::uint8_t>& bytes, long ticks_per_s,
                                      std::vector<TaskRecord>& out) {
  out.clear();
  if (bytes.size() % sizeof(taskiter_record) != 0) {
    return util::Error{"the task iterator returned " + std::to_string(bytes.size()) +
                           " bytes, not a whole number of " +
                           std::to_string(sizeof(taskiter_record)) + "-byte records",
                       "a kernel and a build that disagree on src/bpf/taskiter.h; the sampler "
                       "reads /proc instead",
                       EPROTO};
  }
  const std::uint64_t ns_per_tick =
      ticks_per_s > 0 ? 1'000'000'000ULL / static_cast<std::uint64_t>(ticks_per_s) : 10'000'000ULL;
  out.reserve(bytes.size() / sizeof(taskiter_record));
  for (std::size_t at = 0; at < bytes.size(); at += sizeof(taskiter_record)) {
    taskiter_record r{};
    std::memcpy(&r, bytes.data() + at, sizeof(r));
    TaskRecord t;
    t.tgid = static_cast<int>(r.tgid);
    t.tid = static_cast<int>(r.tid);
    t.state = r.state;
    t.state_letter = state_letter(r.state, r.exit_state);
    const bool known = r.state_at_arrival != TASKITER_STATE_UNKNOWN && r.state_at_arrival <= 2;
    t.state_at_arrival = known ? r.state_at_arrival : r.state;
    t.state_letter_at_arrival = known ? state_letter(r.state_at_arrival, 0) : t.state_letter;
    t.kernel_thread = (r.flags & 0x00200000U) != 0;  // PF_KTHREAD
    t.comm.assign(r.comm, strnlen(r.comm, sizeof(r.comm)));
    // proc_pid_stat: nsec_to_clock_t(task->start_boottime), a truncating division.
    t.start_time_ticks = r.start_boottime_ns / ns_per_tick;
    t.run_ns = r.sum_exec_runtime_ns;
    t.run_delay_ns = r.run_delay_ns;
    t.timeslices = r.pcount;
    t.utime_ns = r.utime_ns;
    t.stime_ns = r.stime_ns;
    t.majflt = r.maj_flt;
    // stat's field 42 is nsec_to_clock_t(blkio_delay): the same truncation, back in ns.
    t.blkio_delay_ns = r.blkio_delay_ns / ns_per_tick * ns_per_tick;
    t.syscall_nr = t.kernel_thread ? -1 : r.syscall_nr;
    if (t.syscall_nr >= 0) {
      for (std::size_t i = 0; i < t.args.size(); ++i) t.args[i] = r.args[i];
    }
    t.sp = r.sp;
    t.pc = r.pc;
    out.push_back(t);
  }
  return {};
}

#ifndef CHOKEPOINT_HAVE_BPF

struct TaskIterator::Impl {};
TaskIterator::TaskIterator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TaskIterator::~TaskIterator() = default;
util::Result<std::unique_ptr<TaskIterator>> TaskIterator::create() {
  return util::Error{"task iterator: chokepoint was built without BPF support", kNoBpfHint, 0};
}
std::uint64_t TaskIterator::loads() {
  return 0;
}
std::uint32_t TaskIterator::program_id() const {
  return 0;
}
void TaskIterator::set_all_tasks(bool) {}
util::Result<void> TaskIterator::watch(int) {
  return util::Error{"task iterator: chokepoint was built without BPF support", kNoBpfHint, 0};
}
void TaskIterator::unwatch(int) {}
util::Result<void> TaskIterator::read(std::vector<TaskRecord>&) {
  return util::Error{"task iterator: chokepoint was built without BPF support", kNoBpfHint, 0};
}

#else

namespace {

using Skeleton = util::Owned<taskiter_bpf, taskiter_bpf__destroy>;

// The iterator's seq_file hands over at most 8 pages a read(); a larger buffer saves nothing.
constexpr std::size_t kReadChunkBytes = std::size_t{64} * 1024;

// The loaded program, shared by every TaskIterator of the process (shared_object.h): each makes
// its own links on it. The kernel creates each read's iterator from a link, so iterators of
// several threads on one program are independent.
struct Loaded {
  Skeleton skel;
};

constinit SharedObject<Loaded> shared_program;

util::Result<std::unique_ptr<Loaded>> load_program() {
  if (auto ok = check_btf_tracing("the task iterator"); !ok) return ok.error();
  LogCapture log;
  Skeleton skel(taskiter_bpf__open());
  if (!skel)
    return util::errno_error("cannot open the task-iterator BPF object", errno, kNoBpfHint);
  if (int err = taskiter_bpf__load(skel.get()); err != 0) {
    err = -err;
    if (err == EPERM) return permission_error("cannot load the task-iterator BPF program", err);
    return util::errno_error(
        "cannot load the task-iterator BPF program (iter/task)" + log.tail(4), err,
        "task iterators need Linux 5.8 or later with BTF; without one the sampler reads each "
        "thread's /proc/TID/schedstat");
  }
  auto loaded = std::make_unique<Loaded>();
  loaded->skel = std::move(skel);
  return loaded;
}

}  // namespace

using Link = util::Owned<bpf_link, bpf_link__destroy>;

struct TaskIterator::Impl {
  std::shared_ptr<Loaded> program;
  Link all_link;                // every task (the host)
  std::map<int, Link> by_tgid;  // one process's threads each
  bool all = false;
  long ticks_per_s = 100;
  std::vector<std::uint8_t> bytes;  // reused: one allocation for the session

  // Appends one pass of the link's iterator to bytes.
  util::Result<void> read_link(bpf_link* link);
};

TaskIterator::TaskIterator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TaskIterator::~TaskIterator() = default;

util::Result<std::unique_ptr<TaskIterator>> TaskIterator::create() {
  auto program = shared_program.acquire(load_program);
  if (!program) return program.error();
  LogCapture log;
  // The link for every task is attached here, as a check that the kernel takes iter/task; each
  // read() creates a fresh iterator from a link (bpf_iter_create).
  Link all(bpf_program__attach_iter((*program)->skel->progs.dump_task, nullptr));
  if (!all) {
    return util::errno_error("cannot attach the task iterator" + log.tail(4), errno,
                             "task iterators need Linux 5.8 or later with BTF");
  }
  auto impl = std::make_unique<Impl>();
  impl->program = std::move(*program);
  impl->all_link = std::move(all);
  if (const long hz = sysconf(_SC_CLK_TCK); hz > 0) impl->ticks_per_s = hz;
  return std::unique_ptr<TaskIterator>(new TaskIterator(std::move(impl)));
}

std::uint64_t TaskIterator::loads() {
  return shared_program.loads();
}

std::uint32_t TaskIterator::program_id() const {
  bpf_prog_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(bpf_program__fd(impl_->program->skel->progs.dump_task), &info, &len) !=
      0) {
    return 0;
  }
  return info.id;
}

void TaskIterator::set_all_tasks(bool all) {
  impl_->all = all;
}

// A link with the iterator's pid option (Linux 6.1+) walks that process's threads only; an
// unfiltered walk visits every task on the host (get_pid_task for each: about 0.7 us a task
// here, which a target of 1,000 threads on a host of 11,000 would pay for all 11,000).
util::Result<void> TaskIterator::watch(int tgid) {
  if (impl_->by_tgid.count(tgid) != 0) return {};
  union bpf_iter_link_info info {};
  info.task.pid = static_cast<__u32>(tgid);
  bpf_iter_attach_opts opts{};
  opts.sz = sizeof(opts);
  opts.link_info = &info;
  opts.link_info_len = sizeof(info);
  Link link(bpf_program__attach_iter(impl_->program->skel->progs.dump_task, &opts));
  if (!link) {
    return util::errno_error("cannot attach a task iterator to pid " + std::to_string(tgid),
                             "the iterator's pid option needs Linux 6.1 or later; the sampler "
                             "reads /proc instead");
  }
  impl_->by_tgid.emplace(tgid, std::move(link));
  return {};
}

void TaskIterator::unwatch(int tgid) {
  impl_->by_tgid.erase(tgid);
}

util::Result<void> TaskIterator::read(std::vector<TaskRecord>& out) {
  impl_->bytes.clear();
  if (impl_->all) {
    if (auto r = impl_->read_link(impl_->all_link.get()); !r) return r.error();
  } else {
    for (const auto& [tgid, link] : impl_->by_tgid) {
      if (auto r = impl_->read_link(link.get()); !r) return r.error();
    }
  }
  return parse_task_records(impl_->bytes, impl_->ticks_per_s, out);
}

util::Result<void> TaskIterator::Impl::read_link(bpf_link* link) {
  util::ScopedFd fd(bpf_iter_create(bpf_link__fd(link)));
  if (!fd.valid()) {
    return util::errno_error("cannot create a task iterator", "the sampler reads /proc instead");
  }
  for (;;) {
    const std::size_t at = bytes.size();
    bytes.resize(at + kReadChunkBytes);
    const ssize_t n = ::read(fd.get(), bytes.data() + at, kReadChunkBytes);
    if (n < 0) {
      if (errno == EINTR) {
        bytes.resize(at);
        continue;
      }
      const int err = errno;
      bytes.resize(at);
      return util::errno_error("cannot read the task iterator", err,
                               "the sampler reads /proc instead");
    }
    bytes.resize(at + static_cast<std::size_t>(n));
    if (n == 0) return {};
  }
}

#endif

}  // namespace chokepoint::collect::bpf
