/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * taskiter: the record taskiter.bpf.c (kernel) writes for each target thread and
 * collect/bpf/task_iterator.cpp (user space) decodes. Fixed-width types only, no pointers, no
 * padding: both sides must agree on every byte (little-endian on x86-64).
 */
#ifndef CHOKEPOINT_BPF_TASKITER_H
#define CHOKEPOINT_BPF_TASKITER_H

/* Layout (Linux 6.x field names; CO-RE relocates them on other kernels), 176 bytes:
 *   tgid, tid            task->tgid, task->pid
 *   state, exit_state    task->__state (task->state before 5.14), task->exit_state: /proc's
 *                        state letter (stat field 3) is derived from both as task_state_index does
 *   flags                task->flags (PF_KTHREAD 0x00200000)
 *   state_at_arrival     the task's __state (0, 1 S or 2 D) when the reading task last got its
 *                        CPU, from the scheduler's clocks (taskiter.bpf.c's state_at), or
 *                        TASKITER_STATE_UNKNOWN (a task on a CPU, a kernel without the fields)
 *   start_boottime_ns    task->start_boottime: /proc/PID/stat's starttime (22) in ns
 *   sum_exec_runtime_ns  task->se.sum_exec_runtime: /proc/PID/schedstat's first field
 *   run_delay_ns         task->sched_info.run_delay: schedstat's second field
 *   pcount               task->sched_info.pcount: schedstat's third field
 *   utime_ns, stime_ns   task->utime, task->stime (raw, before /proc's cputime_adjust)
 *   maj_flt              task->maj_flt: /proc/PID/stat's majflt (12)
 *   blkio_delay_ns       task->delays->blkio_delay: stat's delayacct_blkio_ticks (42) in ns
 *                        (0 without delay accounting)
 *   syscall_nr, args, sp, pc
 *                        the task's user registers (bpf_task_pt_regs: orig_ax, di, si, dx, r10,
 *                        r8, r9, sp, ip): what /proc/TID/syscall prints for a task that is not
 *                        running; syscall_nr -1 for a kernel thread or an entry that was no
 *                        system call
 *   comm                 task->comm, NUL-terminated */
#define TASKITER_STATE_UNKNOWN 0xffffffffU

struct taskiter_record {
	__u32 tgid;
	__u32 tid;
	__u32 state;
	__u32 exit_state;
	__u32 flags;
	__u32 state_at_arrival;
	__u64 start_boottime_ns;
	__u64 sum_exec_runtime_ns;
	__u64 run_delay_ns;
	__u64 pcount;
	__u64 utime_ns;
	__u64 stime_ns;
	__u64 maj_flt;
	__u64 blkio_delay_ns;
	__s64 syscall_nr;
	__u64 args[6];
	__u64 sp;
	__u64 pc;
	char comm[16];
};

#endif /* CHOKEPOINT_BPF_TASKITER_H */
