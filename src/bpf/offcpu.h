/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * offcpu: structs shared by offcpu.bpf.c (kernel) and collect/bpf (user space). Fixed-width
 * types only, no pointers, explicit padding: both sides must agree on every byte.
 */
#ifndef CHOKEPOINT_BPF_OFFCPU_H
#define CHOKEPOINT_BPF_OFFCPU_H

#define OFFCPU_TASK_COMM_LEN 16
/* Frames per stack kept by the stack maps; deeper stacks are cut here. */
#define OFFCPU_MAX_STACK_DEPTH 127
/* Frames kept of an interrupt's kernel stack when it wakes a thread: enough to reach the
 * interrupt entry, not the unrelated code it interrupted (which would make every stack distinct). */
#define OFFCPU_INTERRUPT_STACK_DEPTH 16
/* Text ranges per target process searched for the caller of a frameless libc leaf. */
#define OFFCPU_MAX_TEXT_RANGES 4
/* Words above the user stack pointer searched for that caller's return address. */
#define OFFCPU_LEAF_SCAN_WORDS 8
/* Words of that scan kept that point into the target's text, innermost first: a leaf can leave a
 * slot of its frame unwritten, and on a reused thread stack that slot can hold a stale return
 * address nearer sp than the real one. User space keeps the first it proves (call_site.h). */
#define OFFCPU_LEAF_CANDIDATES 3

/* Innermost kernel frames that identify a blocked thread's kernel path for the stack cache. */
#define OFFCPU_KERNEL_FINGERPRINT_FRAMES 8

/* Sampling windows: a CPU that saw more target blocks than its budget in one window samples
 * blocks in the next (see offcpu.bpf.c, sample_block). */
#define OFFCPU_WINDOW_NS 10000000ULL
/* The largest sampling interval (1 block in this many). */
#define OFFCPU_MAX_SAMPLE_EVERY 256

/* Indexes of the per-CPU drop counters (map "drops"). */
enum offcpu_drop {
	OFFCPU_DROP_STACK_COLLISION = 0, /* stack map bucket held another stack (-EEXIST) */
	OFFCPU_DROP_STACK_FAILED = 1,    /* the kernel could not walk a stack (-EFAULT etc.) */
	OFFCPU_DROP_COUNTS_FULL = 2,     /* the summary hash map was full: a block was lost */
	OFFCPU_DROP_START_FULL = 3,      /* the switch-out map was full: a block was lost */
	OFFCPU_CACHE_HITS = 4,           /* not drops: stack captures served by the signature cache */
	OFFCPU_CACHE_MISSES = 5,         /* not drops: stack captures that walked */
	OFFCPU_INTERRUPT_WAKEUPS = 6,    /* not drops: wakeups done in interrupt context */
	OFFCPU_BLOCKS_TRACED = 7,        /* not drops: blocks whose stacks were taken */
	OFFCPU_BLOCKS_SAMPLED_OUT = 8,   /* not drops: blocks left out by sampling (estimated in) */
	OFFCPU_DROP_NR = 9,
};

/* Filter modes (rodata filter_mode). */
enum offcpu_filter {
	OFFCPU_FILTER_ALL = 0,    /* every task except the idle tasks */
	OFFCPU_FILTER_TGIDS = 1,  /* tgids in the "targets" map */
	OFFCPU_FILTER_CGROUP = 2, /* tasks in target_cgroup_id or below it (cgroup v2) */
};

/* Value of the "targets" map (key: u32 tgid): where the process's own code is mapped, so the
 * kernel side can find the return address into it above a frameless libc leaf. */
struct offcpu_target {
	__u64 text_start[OFFCPU_MAX_TEXT_RANGES];
	__u64 text_end[OFFCPU_MAX_TEXT_RANGES]; /* 0: unused slot */
};

/* One distinct blocked stack: the key of the "counts" summary map. Stack ids are indexes into
 * the "stacks" map; a negative id is the -errno bpf_get_stackid returned, or -ENOENT when that
 * stack is not recorded (a kernel thread's user stack, or the option is off). */
struct offcpu_key {
	__u32 tgid;
	__u32 pid;                  /* thread id */
	__s32 user_stack_id;
	__s32 kernel_stack_id;
	/* words above the user sp that point into the target's text, innermost first; 0: none */
	__u64 leaf_callers[OFFCPU_LEAF_CANDIDATES];
	__u32 waker_tgid;           /* the task current at sched_waking (in an interrupt: the
	                             * interrupted task) */
	__u32 waker_pid;            /* 0: wakers are summed per process (see waking()) */
	__s32 waker_user_stack_id;  /* -ENOENT: a kernel thread woke it; -EINTR: an interrupt did */
	__s32 waker_kernel_stack_id; /* -ENOENT: no wakeup seen (timeout, signal, missed);
	                              * -ENODATA: woken, kernel stacks switched off. With
	                              * waker_user_stack_id -EINTR, an id in "irq_stacks". */
	__u64 waker_leaf_callers[OFFCPU_LEAF_CANDIDATES]; /* as leaf_callers, for the waker (when
	                                                   * it is a target too) */
};

/* Value of the "counts" map. */
struct offcpu_value {
	__u64 total_ns; /* time blocked, summed over `count` blocks; scaled by the sampling weight */
	__u64 count;    /* blocks (switch-out ... wakeup) summed here; scaled likewise */
	__u64 measured; /* blocks actually measured (count without the scaling) */
	char comm[OFFCPU_TASK_COMM_LEN];       /* the blocked thread's name at its first block */
	char waker_comm[OFFCPU_TASK_COMM_LEN]; /* the waker thread's name at the first block */
};

#endif /* CHOKEPOINT_BPF_OFFCPU_H */
