// SPDX-License-Identifier: GPL-2.0
/*
 * taskiter: every target thread's scheduler counters in one read().
 *
 * A task iterator (iter/task, Linux 5.8+) visits every task when user space reads the iterator's
 * fd; this program writes one fixed-size record (taskiter.h) for each thread of a target process:
 * the counters /proc/TID/schedstat and /proc/TID/stat give, without a pread per thread.
 *
 * Which tasks: user space attaches one link per target process with the iterator's pid option
 * (Linux 6.1+), which walks that process's threads only, or one link for every task (the host).
 * Cost: the kernel's walk, one program run and an 80-byte copy per thread.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "taskiter.h"

char LICENSE[] SEC("license") = "GPL";

/* task->state was renamed __state in 5.14. */
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

static __always_inline __u32 task_state(struct task_struct *task)
{
	if (bpf_core_field_exists(task->__state))
		return task->__state;
	struct task_struct___pre514 *old = (void *)task;
	return (__u32)BPF_CORE_READ(old, state);
}

/* The state a task was in when the reading task last got its CPU (`since`: the reader's
 * sched_info.last_arrival, rq clock ns), or TASKITER_STATE_UNKNOWN. The reader's own read takes a
 * CPU from the target: on a busy host, blocked threads that wake while it reads wait in the run
 * queue, and fewer of the others run on to block, so a state read later in the walk is less often
 * the block it was when the reader woke (docs/benchmarks.md, "The sampler's own CPU"). The
 * scheduler's clocks undo part of that. In rq_clock ns: the task last got a CPU at
 * sched_info.last_arrival and left it after its last run's CPU time (sum_exec_runtime less
 * prev_sum_exec_runtime, its value when the fair class picked it: so fair-class tasks only), and
 * was queued again at sched_info.last_queued.
 *  - off its CPU since before `since`: blocked then in the block it is in now, or, queued now
 *    and queued after `since`, woken since from a block: D when sched_contributes_to_load says
 *    so (set at its switch-out for an uninterruptible sleep), else S; its registers still hold
 *    the call it blocked in (it has not run since); queued before `since`: queued then too;
 *  - got its CPU before `since` and left it after: on a CPU then (0);
 *  - got its CPU after `since` (or is on one now): what it was doing before is gone; as read.
 * (A queued task moved to another CPU is queued again there: taken for a wakeup if it blocked
 * last in D or S, a rare error on the side of the block.) */
static __always_inline __u32 state_at(struct task_struct *task, __u32 state,
				      struct task_struct *reader)
{
	if (!bpf_core_field_exists(task->sched_info.last_queued) ||
	    !bpf_core_field_exists(task->se.prev_sum_exec_runtime) ||
	    !bpf_core_field_exists(task->sched_contributes_to_load) || task->on_cpu)
		return TASKITER_STATE_UNKNOWN;
	/* SCHED_NORMAL, SCHED_BATCH, SCHED_IDLE: the fair class, which keeps prev_sum_exec_runtime */
	if (task->policy != 0 && task->policy != 3 && task->policy != 5)
		return TASKITER_STATE_UNKNOWN;
	__u64 since = reader->sched_info.last_arrival;
	if (since == 0)
		return TASKITER_STATE_UNKNOWN;
	__u64 arrived = task->sched_info.last_arrival;
	__u64 left = arrived + (task->se.sum_exec_runtime - task->se.prev_sum_exec_runtime);
	if (left <= since) {
		if (state == 0 && task->sched_info.last_queued > since)
			return BPF_CORE_READ_BITFIELD(task, sched_contributes_to_load) ? 2 : 1;
		return state;
	}
	return arrived < since ? 0 : TASKITER_STATE_UNKNOWN;
}

/* ctx->task is a trusted pointer (PTR_TO_BTF_ID): its fields are read directly, relocated by
 * CO-RE, without a bpf_probe_read_kernel call each (a third of the cost per task when they were). */
SEC("iter/task")
int dump_task(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	if (!task)
		return 0;
	struct taskiter_record r = {};
	struct task_struct *reader = bpf_get_current_task_btf();
	r.tgid = task->tgid;
	r.tid = task->pid;
	r.state = task_state(task);
	r.flags = task->flags;
	r.start_boottime_ns = task->start_boottime;
	r.sum_exec_runtime_ns = task->se.sum_exec_runtime;
	r.run_delay_ns = task->sched_info.run_delay;
	r.pcount = task->sched_info.pcount;
	r.utime_ns = task->utime;
	r.stime_ns = task->stime;
	r.maj_flt = task->maj_flt;
	r.exit_state = task->exit_state;
	r.state_at_arrival =
		r.exit_state ? TASKITER_STATE_UNKNOWN : state_at(task, r.state, reader);
	/* Pointers from a trusted BTF pointer are read directly too (a faulting load reads 0). */
	if (bpf_core_field_exists(task->delays)) {
		struct task_delay_info *delays = task->delays;
		if (delays)
			r.blkio_delay_ns = delays->blkio_delay;
	}
	__builtin_memcpy(r.comm, task->comm, sizeof(r.comm));
	r.comm[sizeof(r.comm) - 1] = 0;
	r.syscall_nr = -1;
	if (!(r.flags & 0x00200000 /* PF_KTHREAD */)) {
		struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
		if (regs) {
			r.syscall_nr = regs->orig_ax;
			r.args[0] = regs->di;
			r.args[1] = regs->si;
			r.args[2] = regs->dx;
			r.args[3] = regs->r10;
			r.args[4] = regs->r8;
			r.args[5] = regs->r9;
			r.sp = regs->sp;
			r.pc = regs->ip;
		}
	}
	bpf_seq_write(seq, &r, sizeof(r));
	return 0;
}
