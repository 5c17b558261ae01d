/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * stateacct: structs shared by stateacct.bpf.c (kernel) and collect/bpf (user space). Fixed-width
 * types only, no pointers: both sides must agree on every byte.
 */
#ifndef CHOKEPOINT_BPF_STATEACCT_H
#define CHOKEPOINT_BPF_STATEACCT_H

/* What a target thread's time was spent in between two scheduler events. */
enum stateacct_kind {
	STATEACCT_INTERRUPTIBLE = 0,   /* blocked in TASK_INTERRUPTIBLE (S) */
	STATEACCT_UNINTERRUPTIBLE = 1, /* blocked in TASK_UNINTERRUPTIBLE (D) */
	STATEACCT_OTHER = 2,           /* any other blocked state: stopped, traced, ... */
	/* Run-queue time, no longer summed (schedstat has it exactly); kept for older recordings. */
	STATEACCT_RUNQ_WAKEUP = 3,     /* runnable from its wakeup to its switch-in: summed again, but
					* only after futex blocks (the lock hand-off's cost), keyed by
					* the futex block's call and word */
	STATEACCT_RUNQ_PREEMPTED = 4,  /* runnable from its preemption to its switch-in */
	STATEACCT_ONCPU_FILE = 5,      /* ON the CPU inside a file system call (read, write, pread,
					* pwrite, readv, writev, fsync, fdatasync, sync_file_range,
					* fallocate, ftruncate) on a regular file; syscall_nr -1,
					* object the fd: issue 15's disk work done on the CPU */
	STATEACCT_KIND_NR = 6,
};

/*
 * A futex wait's object: the futex word's address in bits 0-55 (user addresses on x86_64 stay
 * below 2^56, with 5-level paging too) and, in bits 56-63, how the thread waited, read from the
 * call's arguments at the switch-out (rsi: op, rdx: val), so the model can class a word the
 * sampler never caught a thread on. User space (collect/bpf) splits the two: sums by word, and
 * the way in StateSum::futex_how.
 */
#define STATEACCT_SYS_FUTEX 202 /* x86_64 */
#define STATEACCT_FUTEX_WORD_MASK 0x00ffffffffffffffULL
#define STATEACCT_FUTEX_SHIFT 56
#define STATEACCT_FUTEX_RECORDED 0x80 /* the op below was read */
#define STATEACCT_FUTEX_CMD_MASK 0x0f /* op & FUTEX_CMD_MASK: WAIT 0, LOCK_PI 6, WAIT_BITSET 9 */
#define STATEACCT_FUTEX_VAL2 0x10     /* val == 2: glibc's "locked, with waiters" mutex wait */
#define STATEACCT_FUTEX_PRIVATE 0x20  /* op had FUTEX_PRIVATE_FLAG */

/*
 * Key of a sum (the "sums" hash, stateacct_sum_rec): one thread, one kind, and for blocked kinds
 * the system call it blocked in (-1: outside one, e.g. a page fault) with that call's first
 * argument, which names the wait object: the fd of fd syscalls (model::fd_argument_index is 0 for
 * all of them), the futex word of futex, with how it waited in the top byte (STATEACCT_FUTEX_*).
 * Run-queue kinds carry the call the thread was in too (what it will resume).
 */
struct stateacct_key {
	__u32 tgid;
	__u32 tid;
	__s32 syscall_nr;
	__u32 kind;
	__u64 object;
	__u64 start_ns; /* the thread's start_boottime: tells a reused thread id from the old one */
};

/* A sum's value: weighted (see the thinning in stateacct.bpf.c) ns and events, cumulative. */
struct stateacct_value {
	__u64 ns;
	__u64 count;
};

/*
 * An entry of the "sum_recs" array: one sum, its key and its value. As with the edges
 * (stateacct_edge_rec), the array is mmapable and read in place, and the "sums" hash maps a key to
 * its entry's index; ns and count both 0: an entry not in use (yet).
 */
struct stateacct_sum_rec {
	struct stateacct_key key;
	struct stateacct_value value;
};

/* Phases of a thread in the "threads" map. */
enum stateacct_phase {
	STATEACCT_PHASE_NONE = 0,     /* running, or not accounted (thinned out, never seen leave) */
	STATEACCT_PHASE_BLOCKED = 1,  /* off the CPU since since_ns, in kind/blocked_nr/object */
	STATEACCT_PHASE_RUNNABLE = 2, /* woken from a futex block, waiting for a CPU since since_ns */
};

/*
 * A thread's blocks under one key (kind, call, object) not yet added to `sums`, and the
 * run-queue time after them (key: kind RUNQ_WAKEUP with nr and object; futex blocks only).
 */
struct stateacct_acc {
	__u64 ns;
	__u64 count; /* 0: the slot is empty */
	__u64 object;
	__s32 nr;
	__u32 kind;
	__u64 rq_ns;
	__u64 rq_count;
};

/*
 * Accumulator slots per thread (a power of two): a thread mostly cycles through a few waits (an
 * event loop's epoll_wait and a lock; a pipeline stage's two queues and its reply's futex), and
 * four keep such a cycle off the sums' hash (two did not: the lab's pipeline workers cycle
 * through three futex words, and a cycle longer than the slots misses at every block).
 */
#define STATEACCT_ACC_SLOTS 4

/*
 * Value of the "threads" array (one slot per target thread, handed out at its first switch-out
 * and taken back at its exit; tid 0: a free slot): where the thread is now.
 */
struct stateacct_thread {
	__u64 since_ns;       /* bpf_ktime_get_ns() at the phase's start */
	__u64 weight;         /* the count weight of the last block accounted (and its run queue) */
	__u64 blocked_object; /* the first argument of the system call it left the CPU in */
	__s32 blocked_nr;     /* that system call, -1 outside one */
	/* 1 + the edge_recs entry the thread's last wakeup was counted in (0: none): the next
	 * wakeup with the same edge key adds there without hashing (an entry whose key changed,
	 * or that user space poisoned when it deleted the key, is looked up again). */
	__u32 edge_slot;
	__u32 phase;          /* enum stateacct_phase */
	__u32 kind;           /* enum stateacct_kind of the phase */
	__u32 tgid;
	__u32 tid;
	__u64 start_ns;       /* as in stateacct_key */
	/*
	 * The blocked time of the thread's latest STATEACCT_ACC_SLOTS (kind, call, object) keys not
	 * yet added to `sums` (stateacct_acc): an ended block whose key is in a slot adds there, in
	 * the array element, with no hashing; a new key takes an empty slot, or the next in turn,
	 * whose sums are updated first; all are at the thread's exit. Readers add each slot to
	 * its key's sums (count 0: empty).
	 */
	struct stateacct_acc acc[STATEACCT_ACC_SLOTS];
	__u32 acc_last;  /* the slot the latest block went to */
	__u32 acc_next;  /* the slot a new key takes when none is empty (round robin) */
	/*
	 * A file system call on a regular file in progress (in_file): its fd, and since when it is on
	 * the CPU (file_since_ns; 0 while it is off the CPU). Its on-CPU time accumulates in
	 * file_acc_* under (ONCPU_FILE, -1, file_acc_fd) and is flushed when the fd changes.
	 */
	__u64 file_fd;
	__u64 file_since_ns;
	__u64 file_acc_fd;
	__u64 file_acc_ns;
	__u64 file_acc_count;
	__u32 in_file;
	__u32 pad1;
};

/* Who woke the waker: a thread, or kernel context. */
enum stateacct_waker {
	STATEACCT_WAKER_THREAD = 0,  /* a user thread (of the target or not) */
	STATEACCT_WAKER_KTHREAD = 1, /* a kernel thread (kworker, ksoftirqd, ...) */
	STATEACCT_WAKER_INTERRUPT = 2, /* an interrupt (waker tid 0): on an idle CPU, or a timer's or
					* a device's while a thread ran (stateacct.bpf.c) */
};

/*
 * Key of an edge (the "edges" hash, stateacct_edge_rec; issue 15's wait-for graph): a target
 * thread (wakee) that was BLOCKED in (syscall_nr, object) was woken by waker_tid (of
 * waker_tgid), or by an interrupt (waker_kind STATEACCT_WAKER_INTERRUPT, waker 0): a wakeup on an
 * idle CPU, and a timer's or a device's of a futex wait, a sleep or a file call taken while a
 * thread ran. Other interrupts' wakeups (a socket's softirq) are the interrupted thread's: a
 * loopback send delivers that way in the sender's context.
 */
struct stateacct_edge_key {
	__u32 waker_tgid;
	__u32 waker_tid;
	__u32 wakee_tgid;
	__u32 wakee_tid;
	__s32 syscall_nr;
	__u32 waker_kind; /* enum stateacct_waker */
	__u64 object;
};

/* An edge's weighted wakeups and the wakee's blocked time they ended, cumulative. */
struct stateacct_edge_value {
	__u64 ns;
	__u64 count;
};

/*
 * An entry of the "edge_recs" array: one edge, its key and its value. The array is mmapable, so
 * user space reads the edges in place at every tick, with no system call and no copy; the "edges"
 * hash only maps a key to its entry's index. Entries are handed out from next_edge, or from
 * "edge_free" (the ones user space took back from ended threads, zeroed); ns and count both 0:
 * an entry not in use (yet).
 */
struct stateacct_edge_rec {
	struct stateacct_edge_key key;
	struct stateacct_edge_value value;
};

/* Counters (per CPU, summed by user space). */
enum stateacct_stat {
	STATEACCT_STAT_SWITCHES = 0,    /* target switch-outs seen */
	STATEACCT_STAT_THINNED_OUT = 1, /* blocks not accounted (thinned out above the budget) */
	STATEACCT_STAT_SUMS_FULL = 2,   /* an interval lost: the sums map was full */
	STATEACCT_STAT_THREADS_FULL = 3, /* a thread not followed: the threads map was full */
	STATEACCT_STAT_MAX_THIN_NS = 4, /* the largest thinning threshold used, ns (max, not a sum) */
	STATEACCT_STAT_EDGES_FULL = 5,  /* a wakeup not counted: the edges map was full */
	STATEACCT_STAT_SUMS_HASHED = 6, /* a thread's accumulated blocks added to the sums' hash */
	STATEACCT_STAT_NR = 7,
};

/* Thinning windows, per CPU, and the largest threshold (stateacct.bpf.c's thin_block: below
 * 2^32, so a 32-bit random number times it fits 64 bits). */
#define STATEACCT_WINDOW_NS 10000000ULL
#define STATEACCT_MAX_THIN_NS 0xffffffffULL

#define STATEACCT_MAX_TARGETS 4096
#define STATEACCT_MAX_THREADS 32768
#define STATEACCT_MAX_SUMS 65536
#define STATEACCT_MAX_EDGES 16384

#endif /* CHOKEPOINT_BPF_STATEACCT_H */
