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
