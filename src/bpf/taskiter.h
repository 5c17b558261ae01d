/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * taskiter: the record taskiter.bpf.c (kernel) writes for each target thread and
 * collect/bpf/task_iterator.cpp (user space) decodes. Fixed-width types only, no pointers, no
 * padding: both sides must agree on every byte (80 bytes, little-endian on x86-64).
 */
#ifndef CHOKEPOINT_BPF_TASKITER_H
#define CHOKEPOINT_BPF_TASKITER_H

/* Layout (Linux 5.14+ field names; CO-RE relocates them on other kernels):
 *   tgid, tid            task->tgid, task->pid
 *   state                task->__state (task->state before 5.14): 0 running/runnable,
 *                        1 interruptible, 2 uninterruptible, 4 stopped, 8 traced, ...
 *   flags                task->flags (PF_KTHREAD 0x00200000)
 *   start_boottime_ns    task->start_boottime: /proc/PID/stat's starttime (22) in ns
 *   sum_exec_runtime_ns  task->se.sum_exec_runtime: /proc/PID/schedstat's first field
 *   run_delay_ns         task->sched_info.run_delay: schedstat's second field
 *   pcount               task->sched_info.pcount: schedstat's third field
 *   utime_ns, stime_ns   task->utime, task->stime (raw, before /proc's cputime_adjust)
 *   maj_flt              task->maj_flt: /proc/PID/stat's majflt (12)
 *   syscall_nr           orig_ax of the task's user registers: the system call it entered last
 *                        (-1 for a kernel thread or an interrupt entry) */
struct taskiter_record {
	__u32 tgid;
	__u32 tid;
	__u32 state;
	__u32 flags;
	__u64 start_boottime_ns;
	__u64 sum_exec_runtime_ns;
	__u64 run_delay_ns;
	__u64 pcount;
	__u64 utime_ns;
	__u64 stime_ns;
	__u64 maj_flt;
	__s64 syscall_nr;
};

#endif /* CHOKEPOINT_BPF_TASKITER_H */
