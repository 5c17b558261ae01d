/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * task_context: whether the current task woke a thread itself, from a system call, or an
 * interrupt woke it while that task happened to run (a timer's expiry, a device's completion).
 * The tracepoint runs in the current task's context either way, so without this test an
 * interrupt's wakeup is charged to whichever thread it interrupted. Used by offcpu.bpf.c (the
 * waker's stacks) and stateacct.bpf.c (the wait-for graph's edges). Kernel side only (BPF C);
 * the includer has vmlinux.h, bpf_helpers.h and bpf_core_read.h.
 */
#ifndef CHOKEPOINT_BPF_TASK_CONTEXT_H
#define CHOKEPOINT_BPF_TASK_CONTEXT_H

#ifndef PF_KTHREAD
#define PF_KTHREAD 0x00200000
#endif

/* THREAD_SIZE is 16 KiB on x86-64 (32 KiB with KASAN); the interrupt stacks lie far away. */
#define TASK_CONTEXT_MAX_THREAD_STACK (64 * 1024)

/*
 * True when current (`t`) woke the thread itself, from a system call, rather than an interrupt
 * that happened to interrupt it. preempt_count would say it directly, but it is a per-CPU variable
 * whose address kernels without CONFIG_KALLSYMS_ALL do not give BPF. Instead, on x86-64:
 * - an interrupt of kernel code runs on the per-CPU interrupt stack, so the tracepoint's argument
 *   array (ctx, in bpf_trace_run's frame on the stack the tracepoint fired on) is not on the
 *   task's stack. (The program's own frame may be a per-CPU private stack on 6.13+.) Softirqs
 *   run there too, also those a system call runs as it leaves a bottom-half-disabled section
 *   (a loopback send delivers the packet that way, in the sender's context).
 * - an interrupt of user code runs on the task stack, but then the task's saved user registers
 *   are the interrupt's: orig_ax is negative there, and the system call number in a syscall.
 * `btf` says t is a BTF pointer, which bpf_task_pt_regs needs; raw_tp only has the stack test.
 * Comparing a pointer with a number is allowed to privileged loaders only, which we are.
 */
static __always_inline bool in_task_context(void *ctx, struct task_struct *t, bool btf)
{
	__u64 base = (__u64)BPF_CORE_READ(t, stack);
	__u64 here = (__u64)ctx;
	struct pt_regs *regs;

	if (here < base || here >= base + TASK_CONTEXT_MAX_THREAD_STACK)
		return false;
	if (!btf || (BPF_CORE_READ(t, flags) & PF_KTHREAD))
		return true;
	regs = (struct pt_regs *)bpf_task_pt_regs(t);
	return regs && (long)BPF_CORE_READ(regs, orig_ax) >= 0;
}

#endif /* CHOKEPOINT_BPF_TASK_CONTEXT_H */
