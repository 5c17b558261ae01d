// SPDX-License-Identifier: GPL-2.0
// Over 600 lines: one BPF object (one skeleton, stateacct.skel.h) is one .bpf.c. Its programs on
// sched_switch, sched_waking, process exit and the file calls share the task storage, the
// per-thread array, the sums and the .bss globals (targets_gen, next_slot, ...) declared here; split
// into two objects, the second would have to reuse every map by fd and could not share .bss.
/*
 * stateacct: the exact off-CPU split of the target's threads, summed in the kernel.
 *
 * sched_switch (prev): a target thread that blocks starts a BLOCKED phase (its state: S, D or
 *   other, and the system call it blocked in with that call's first argument: the fd, or the
 *   futex word); one that is preempted starts nothing: run-queue time is schedstat's, exact
 *   already, and the model takes it from there (summing it here cost a sums update per switch).
 *   The call is read from the user registers saved at kernel entry (orig_ax, di), as
 *   /proc/PID/syscall reads it: orig_ax is the call's number inside one and -1 in an exception or
 *   interrupt (a page fault), so the blocked call needs no raw_syscalls program (those below
 *   only time file calls on the CPU, and return at a number test for every other call).
 * sched_waking (p): a BLOCKED phase ends: its time goes to `sums` under (thread, start time,
 *   state, call, object). This runs in the waker's context: count_wake_edge adds the wakeup and
 *   the blocked time it ended to `edges` under (current tid, p's tid, call, object): issue 15's
 *   wait-for graph, one more map update per target wakeup. An interrupt's wakeup of a futex
 *   wait, a sleep or a file call (a timeout, a completion) is the interrupt's, not the
 *   interrupted thread's (task_context.h).
 * sched_switch (next): a BLOCKED phase whose wakeup was not seen ends (blocked up to now); a
 *   RUNNABLE phase (woken from a futex block) ends: its run-queue time is added under the
 *   block's key as STATEACCT_RUNQ_WAKEUP (the model counts it as lock when the word is a
 *   contended lock: docs/verdicts/lock.md's hand-off cost, which schedstat cannot tell apart).
 * file calls (fentry/fexit on __x64_sys_read & co., else raw_syscalls sys_enter/sys_exit): a
 *   target thread's time ON the CPU inside a file system call on a regular file (read, write,
 *   fsync, ...: file_call) is summed as STATEACCT_ONCPU_FILE under the fd, paused while it is off
 *   the CPU: issue 15's disk work done on the CPU. Other tasks' file calls return after one
 *   task-storage lookup; user space loads one of the two hooks, or neither (see below).
 * futex: the op and value of a futex wait are read at the switch-out with its word, and kept in
 *   the object's top byte (stateacct.h), so the model can tell a mutex from a condvar.
 *
 * Per-task state lives in task-local storage (`tasks`: whether the task's process is a target,
 * decided once per task and per change of the target set, and its slot in `threads`), so a switch
 * of a task outside the target costs one storage lookup and no hashing, and a target thread's
 * phase is an array element. `threads` stays a map user space can read: the blocks in progress
 * are added up to each read.
 *
 * Nothing is streamed per event: user space reads the sums, the edges and the open phases in
 * `threads` once per tick, in place (the three arrays are mmapable: no system call, no copy). A missed event cannot double-count: each event ends the phase it finds and starts the
 * next, so a lost one costs at most one phase, never time counted twice.
 *
 * Budget: the blocks that end on a CPU are counted in windows of STATEACCT_WINDOW_NS. When a
 * window ends more than window_block_budget, the next one thins by length (threshold sampling,
 * thin_block below): a block of at least the window's threshold tau is accounted as it is, a
 * shorter one of length d with probability d / tau, weighed by its inverse (its time counts as
 * tau). The decision is made where the block ends, with its length known, so a thinned-out block
 * costs its start and one test; a long block (a sleep, a long lock wait, a slow fsync) is never
 * thinned out, and a thread's sums, each the sum of many short blocks or exact, stay unbiased.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "stateacct.h"
#include "task_context.h"

#define TASK_RUNNING 0x0000
#define TASK_INTERRUPTIBLE 0x0001
#define TASK_UNINTERRUPTIBLE 0x0002
#define TASK_DEAD 0x0080
#define S_IFMT 00170000
#define S_IFREG 0100000
#define SYS_FUTEX STATEACCT_SYS_FUTEX
#define FUTEX_PRIVATE_FLAG 128

char LICENSE[] SEC("license") = "GPL";

/* Blocks ended per CPU per window accounted in full before the next window thins (0: never). */
const volatile __u32 window_block_budget = 0;
/* Count the wait-for edges (count_wake_edge); off only to measure their cost. */
const volatile __u8 count_edges = 1;

/* The target processes (key: tgid), kept current by user space, which bumps targets_gen after
 * every change of the set. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STATEACCT_MAX_TARGETS);
	__type(key, __u32);
	__type(value, __u8);
} targets SEC(".maps");

__u32 targets_gen = 0;
/* Slots of `threads` handed out so far (user space reads that many); freed ones are reused. */
__u32 next_slot = 0;

/*
 * What this program remembers of every task it saw leave a CPU, in the task itself (task-local
 * storage: no hashing, freed with the task). Whether its process is a target is looked up in
 * `targets` once per task and per change of the set (gen), not once per switch: a switch of a
 * task outside the target costs one storage lookup.
 */
struct task_local {
	__u32 gen;    /* targets_gen when `target` was decided */
	__u32 slot;   /* its entry in `threads`, when has_slot */
	__u8 target;  /* its process is a target */
	__u8 has_slot;
	__u8 gone;    /* it exited: nothing more to account */
	__u8 pad[5];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_local);
} tasks SEC(".maps");

/*
 * The target threads' phases, one slot per thread (an array: its lookups are inlined; mmapable:
 * user space reads the slots in place, with no system call).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, STATEACCT_MAX_THREADS);
	__type(key, __u32);
	__type(value, struct stateacct_thread);
} threads SEC(".maps");

/* Slots of exited threads, for the next new thread. */
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, STATEACCT_MAX_THREADS);
	__type(value, __u32);
} free_slots SEC(".maps");

/* The sums: key -> index of its entry in sum_recs (stateacct.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STATEACCT_MAX_SUMS);
	__type(key, struct stateacct_key);
	__type(value, __u32);
} sums SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, STATEACCT_MAX_SUMS);
	__type(key, __u32);
	__type(value, struct stateacct_sum_rec);
} sum_recs SEC(".maps");

/* Entries of sum_recs user space took back (of threads that ended), for the next new sums. */
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, STATEACCT_MAX_SUMS);
	__type(value, __u32);
} sum_free SEC(".maps");

/* Entries of sum_recs handed out so far (user space reads that many). */
__u32 next_sum = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STATEACCT_STAT_NR);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* A CPU's thinning window (thin_block). */
struct thin_threshold {
	__u64 start_ns; /* the window's start */
	__u64 seen_ns;  /* the window's ended blocks' time, each at most tau_ns (tau_ns 0: whole) */
	__u64 tau_ns;   /* the window's threshold; 0: every block is accounted */
	__u32 blocks;   /* blocks ended in the window */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct thin_threshold);
} thresholds SEC(".maps");

static __always_inline void count_stat(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&stats, &which);

	if (n)
		*n += 1;
}

/*
 * A new key's index in `index` (sums or edges): an entry of `recs` (sum_recs, edge_recs: the key
 * first, then the value) taken from `free_list`, else the next of `*next`, with the key written
 * before the index is published, so a reader never sees a value under another key. NULL when the
 * table is full (counted as `full_stat`).
 */
static __always_inline __u32 *new_entry(void *index, void *recs, void *free_list, __u32 *next,
					__u32 max, const void *key, __u32 key_size, __u32 full_stat)
{
	__u32 *idx;
	void *r;
	__u32 i;

	if (bpf_map_pop_elem(free_list, &i) != 0) {
		/* Tested first, so a full table does not move *next on at every event. */
		if (*(volatile __u32 *)next >= max) {
			count_stat(full_stat);
			return NULL;
		}
		i = __sync_fetch_and_add(next, 1);
		if (i >= max) {
			count_stat(full_stat);
			return NULL;
		}
	}
	r = bpf_map_lookup_elem(recs, &i);
	if (!r)
		return NULL;
	__builtin_memcpy(r, key, key_size);
	if (bpf_map_update_elem(index, key, &i, BPF_NOEXIST) != 0) {
		/* Another CPU added the key first (or the index is full): the entry goes back. */
		bpf_map_push_elem(free_list, &i, 0);
	}
	idx = bpf_map_lookup_elem(index, key);
	if (!idx)
		count_stat(full_stat);
	return idx;
}

/*
 * The task's storage when its process is a target, else NULL. create: make the storage of a task
 * seen for the first time where something starts (a switch-out, a file call's entry); elsewhere a
 * task without one has no phase to end and no file call in progress.
 */
static __always_inline struct task_local *target_task(struct task_struct *task, bool create)
{
	struct task_local *l = bpf_task_storage_get(&tasks, task, 0,
						    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
	__u32 gen = *(volatile __u32 *)&targets_gen;

	if (!l || l->gone)
		return NULL;
	if (l->gen != gen) {
		__u32 tgid = task->tgid;

		l->target = bpf_map_lookup_elem(&targets, &tgid) != NULL;
		l->gen = gen;
	}
	return l->target ? l : NULL;
}

/* The task's entry in `threads`, given one on its first switch-out as a target (create). */
static __always_inline struct stateacct_thread *thread_entry(struct task_local *l,
							     struct task_struct *task, bool create)
{
	struct stateacct_thread *t;
	__u32 slot;

	if (l->has_slot)
		return bpf_map_lookup_elem(&threads, &l->slot);
	if (!create)
		return NULL;
	if (bpf_map_pop_elem(&free_slots, &slot) != 0) {
		slot = __sync_fetch_and_add(&next_slot, 1);
		if (slot >= STATEACCT_MAX_THREADS) {
			count_stat(STATEACCT_STAT_THREADS_FULL);
			l->gone = 1; /* not followed: do not try again at every switch */
			return NULL;
		}
	}
	t = bpf_map_lookup_elem(&threads, &slot);
	if (!t)
		return NULL;
	t->phase = STATEACCT_PHASE_NONE;
	t->blocked_nr = -1;
	t->edge_slot = 0;
	__builtin_memset(t->acc, 0, sizeof(t->acc));
	t->acc_last = 0;
	t->acc_next = 0;
	t->in_file = 0;
	t->file_since_ns = 0;
	t->file_acc_ns = 0;
	t->file_acc_count = 0;
	t->tgid = task->tgid;
	t->tid = task->pid;
	t->start_ns = task->start_boottime;
	l->slot = slot;
	l->has_slot = 1;
	return t;
}

static __always_inline void flush_acc(struct stateacct_thread *t, struct stateacct_acc *a);
static __always_inline void flush_file(struct stateacct_thread *t);

/* The task exits: its slot goes back to the free list (the phase it may have had is dropped). */
static __always_inline void release(struct task_local *l)
{
	struct stateacct_thread *t;

	l->gone = 1;
	if (!l->has_slot)
		return;
	l->has_slot = 0;
	t = bpf_map_lookup_elem(&threads, &l->slot);
	if (t) {
		t->phase = STATEACCT_PHASE_NONE;
		/* its sums stay until user space forgets the thread */
		for (int i = 0; i < STATEACCT_ACC_SLOTS; i++)
			flush_acc(t, &t->acc[i]);
		t->in_file = 0;
		flush_file(t);
		t->tid = 0;
	}
	bpf_map_push_elem(&free_slots, &l->slot, 0);
}

/* Adds (ns, count) to the thread's sum under (kind, nr, object) in `sums`. */
static __always_inline void add_sum(const struct stateacct_thread *t, __u32 kind, __s32 nr,
				    __u64 object, __u64 ns, __u64 count)
{
	struct stateacct_key key = {};
	struct stateacct_sum_rec *r;
	__u32 *idx;

	key.tgid = t->tgid;
	key.tid = t->tid;
	key.kind = kind;
	key.syscall_nr = nr;
	key.object = object;
	key.start_ns = t->start_ns;
	idx = bpf_map_lookup_elem(&sums, &key);
	if (!idx) {
		idx = new_entry(&sums, &sum_recs, &sum_free, &next_sum, STATEACCT_MAX_SUMS, &key,
				sizeof(key), STATEACCT_STAT_SUMS_FULL);
		if (!idx)
			return;
	}
	r = bpf_map_lookup_elem(&sum_recs, idx);
	if (!r)
		return;
	__sync_fetch_and_add(&r->value.ns, ns);
	__sync_fetch_and_add(&r->value.count, count);
}

/*
 * Adds one of the thread's accumulators (its blocks, and the run-queue time after them) to their
 * sums in `sums` and empties it.
 */
static __always_inline void flush_acc(struct stateacct_thread *t, struct stateacct_acc *a)
{
	__u64 ns = a->ns, count = a->count;
	__u64 rq_ns = a->rq_ns, rq_count = a->rq_count;

	if (!count)
		return;
	count_stat(STATEACCT_STAT_SUMS_HASHED);
	a->ns = 0;
	a->count = 0;
	a->rq_ns = 0;
	a->rq_count = 0;
	add_sum(t, a->kind, a->nr, a->object, ns, count);
	if (rq_count)
		add_sum(t, STATEACCT_RUNQ_WAKEUP, a->nr, a->object, rq_ns, rq_count);
}

/* Adds the thread's on-CPU time in file system calls (file_acc_*) to its sum and empties it. */
static __always_inline void flush_file(struct stateacct_thread *t)
{
	__u64 ns = t->file_acc_ns, count = t->file_acc_count;

	if (!ns && !count)
		return;
	t->file_acc_ns = 0;
	t->file_acc_count = 0;
	add_sum(t, STATEACCT_ONCPU_FILE, -1, t->file_acc_fd, ns, count);
}

/*
 * On the CPU in the file system call in progress from file_since_ns to now: added to file_acc_*
 * (count: one more call when the call ends). The accumulator is flushed when the fd changes.
 */
static __always_inline void add_file_cpu(struct stateacct_thread *t, __u64 now, bool ends)
{
	__u64 delta = t->file_since_ns && now > t->file_since_ns ? now - t->file_since_ns : 0;

	if ((t->file_acc_ns || t->file_acc_count) && t->file_acc_fd != t->file_fd)
		flush_file(t);
	t->file_acc_fd = t->file_fd;
	t->file_acc_ns += delta;
	if (ends)
		t->file_acc_count += 1;
	t->file_since_ns = 0;
}

/* Whether accumulator a holds the blocks of the thread's current (kind, call, object). */
static __always_inline bool acc_holds(const struct stateacct_thread *t,
				      const struct stateacct_acc *a)
{
	return a->count && a->kind == t->kind && a->nr == t->blocked_nr &&
	       a->object == t->blocked_object;
}

/*
 * Whether a block of `delta` ns that ends at `now` is accounted: 0 when it is thinned out, else
 * the weight of its count, with *ns_w the time it adds. Threshold sampling, per CPU: a window
 * whose blocks numbered more than the budget sets the next window's threshold tau so that about
 * the budget are kept, tau = the sum over its blocks of min(d, its tau) / the budget (the
 * fixed point of "the expected number kept, the sum of min(1, d / tau), is the budget", reached
 * from above: at first every block's whole time). A block of d >= tau is kept and counts as it is;
 * a shorter one is kept with probability d / tau and counts as tau ns and, rounded at random,
 * tau / d blocks. Each is the inverse of its probability, so every sum stays unbiased, and a
 * kept short block's error is at most tau.
 */
static __always_inline __u64 thin_block(__u64 delta, __u64 now, __u64 *ns_w)
{
	struct thin_threshold *w;
	__u32 zero = 0;
	__u64 tau;

	*ns_w = delta;
	if (!window_block_budget)
		return 1;
	w = bpf_map_lookup_elem(&thresholds, &zero);
	if (!w)
		return 1;
	if (now - w->start_ns >= STATEACCT_WINDOW_NS) {
		tau = 0;
		/* A window after an idle one (no block ended for a window) starts unthinned. */
		if (now - w->start_ns < 2 * STATEACCT_WINDOW_NS && w->blocks > window_block_budget)
			tau = w->seen_ns / window_block_budget;
		if (tau > STATEACCT_MAX_THIN_NS)
			tau = STATEACCT_MAX_THIN_NS;
		w->tau_ns = tau;
		w->start_ns = now;
		w->blocks = 0;
		w->seen_ns = 0;
		if (tau) {
			__u32 which = STATEACCT_STAT_MAX_THIN_NS;
			__u64 *max = bpf_map_lookup_elem(&stats, &which);

			if (max && *max < tau)
				*max = tau;
		}
	}
	tau = w->tau_ns;
	w->blocks++;
	w->seen_ns += tau && delta > tau ? tau : delta;
	if (!tau || delta >= tau)
		return 1;
	if (delta == 0)
		delta = 1;
	/* Kept with probability delta / tau (tau < 2^32: the product fits). */
	if ((((__u64)bpf_get_prandom_u32() * tau) >> 32) >= delta) {
		count_stat(STATEACCT_STAT_THINNED_OUT);
		return 0;
	}
	*ns_w = tau;
	__u64 count = tau / delta;

	if (bpf_get_prandom_u32() % delta < tau - count * delta)
		count++;
	return count;
}

/*
 * Adds the thread's ended block (ns_w, count_w: thin_block's weights) to its accumulators. A
 * block whose (kind, call, object) is in one of them (a requester on its reply's futex, a worker
 * on its queue, an event loop between epoll_wait and a lock) adds there, in its array element: no
 * hashing. A new key takes an empty accumulator, or the next in turn, which is flushed into
 * `sums` first (one hash update per new wait, not per block).
 */
static __always_inline void add_block(struct stateacct_thread *t, __u64 ns_w, __u64 count_w)
{
	_Static_assert((STATEACCT_ACC_SLOTS & (STATEACCT_ACC_SLOTS - 1)) == 0,
		       "a power of two: indexes are masked for the verifier");
	const __u32 mask = STATEACCT_ACC_SLOTS - 1;
	struct stateacct_acc *a;
	__u32 i;

	i = t->acc_last & mask;
	if (!acc_holds(t, &t->acc[i])) {
		__u32 found = STATEACCT_ACC_SLOTS, empty = STATEACCT_ACC_SLOTS;

#pragma unroll
		for (__u32 j = 0; j < STATEACCT_ACC_SLOTS; j++) {
			if (acc_holds(t, &t->acc[j]))
				found = j;
			else if (!t->acc[j].count && empty == STATEACCT_ACC_SLOTS)
				empty = j;
		}
		if (found < STATEACCT_ACC_SLOTS) {
			i = found;
		} else {
			if (empty < STATEACCT_ACC_SLOTS) {
				i = empty;
			} else {
				i = t->acc_next & mask;
				t->acc_next = (i + 1) & mask;
			}
			a = &t->acc[i & mask];
			flush_acc(t, a);
			a->kind = t->kind;
			a->nr = t->blocked_nr;
			a->object = t->blocked_object;
		}
	}
	i &= mask;
	a = &t->acc[i];
	t->acc_last = i;
	__sync_fetch_and_add(&a->ns, ns_w);
	__sync_fetch_and_add(&a->count, count_w);
}

/*
 * Ends the thread's phase at `now`: a block is accounted (add_block) unless it is thinned out
 * (thin_block); its count's weight is kept (t->weight) for the run-queue time after it. Returns
 * that weight, 0 when nothing was accounted, with *ns_w the time it added.
 */
static __always_inline __u64 end_phase(struct stateacct_thread *t, __u64 now, __u64 *ns_w)
{
	__u64 count_w;

	*ns_w = 0;
	if (t->phase != STATEACCT_PHASE_BLOCKED) {
		t->phase = STATEACCT_PHASE_NONE; /* a run-queue wait whose switch-in was not seen */
		return 0;
	}
	t->phase = STATEACCT_PHASE_NONE;
	count_w = thin_block(now > t->since_ns ? now - t->since_ns : 0, now, ns_w);
	t->weight = count_w;
	if (count_w)
		add_block(t, *ns_w, count_w);
	return count_w;
}

/* The wait-for edges: key -> index of its entry in edge_recs (stateacct.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STATEACCT_MAX_EDGES);
	__type(key, struct stateacct_edge_key);
	__type(value, __u32);
} edges SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, STATEACCT_MAX_EDGES);
	__type(key, __u32);
	__type(value, struct stateacct_edge_rec);
} edge_recs SEC(".maps");

/* Entries of edge_recs user space took back (of threads that ended), for the next new edges. */
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, STATEACCT_MAX_EDGES);
	__type(value, __u32);
} edge_free SEC(".maps");

/* Entries of edge_recs handed out so far (user space reads that many). */
__u32 next_edge = 0;

/*
 * A futex wait's object: the word, and how the thread waits on it (stateacct.h), which tells a
 * mutex (FUTEX_WAIT with val 2, LOCK_PI) from a condvar, a semaphore or a join (WAIT_BITSET)
 * without the sampler having seen the word.
 */
static __always_inline __u64 futex_object(__u64 uaddr, __u64 op, __u64 val)
{
	__u64 how = STATEACCT_FUTEX_RECORDED | (op & STATEACCT_FUTEX_CMD_MASK);

	if (val == 2)
		how |= STATEACCT_FUTEX_VAL2;
	if (op & FUTEX_PRIVATE_FLAG)
		how |= STATEACCT_FUTEX_PRIVATE;
	return (uaddr & STATEACCT_FUTEX_WORD_MASK) | (how << STATEACCT_FUTEX_SHIFT);
}

static __always_inline void switch_out(bool preempt, struct task_struct *prev, long state)
{
	struct task_local *l;
	struct stateacct_thread *t;

	if (prev->pid == 0)
		return;
	l = target_task(prev, true);
	if (!l)
		return;
	if (state & TASK_DEAD) {
		/* The last switch of an exiting thread (after sched_process_exit): nothing follows. */
		release(l);
		return;
	}
	t = thread_entry(l, prev, true);
	if (!t)
		return;
	__u64 now = bpf_ktime_get_ns();

	if (t->in_file)
		add_file_cpu(t, now, false); /* off the CPU inside a file system call */
	__u64 ns_w;

	end_phase(t, now, &ns_w); /* a block whose wakeup was not seen */
	count_stat(STATEACCT_STAT_SWITCHES);
	if (preempt || state == TASK_RUNNING) {
		/* Preempted: its run-queue time is schedstat's (the model takes it from there). */
		return;
	}
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(prev);

	t->since_ns = now;
	t->blocked_nr = -1;
	t->blocked_object = 0;
	if (regs && !(prev->flags & PF_KTHREAD)) {
		long nr = regs->orig_ax;

		if (nr >= 0) {
			t->blocked_nr = nr;
			t->blocked_object = regs->di;
			if (nr == SYS_FUTEX)
				t->blocked_object = futex_object(t->blocked_object, regs->si,
								 regs->dx);
		}
	}
	t->phase = STATEACCT_PHASE_BLOCKED;
	if (state & TASK_UNINTERRUPTIBLE) {
		t->kind = STATEACCT_UNINTERRUPTIBLE;
	} else if (state & TASK_INTERRUPTIBLE) {
		t->kind = STATEACCT_INTERRUPTIBLE;
	} else {
		t->kind = STATEACCT_OTHER;
	}
}

static __always_inline void switch_in(struct task_struct *next)
{
	struct task_local *l;
	struct stateacct_thread *t;

	if (next->pid == 0)
		return;
	l = target_task(next, false);
	if (!l)
		return;
	t = thread_entry(l, next, false);
	if (!t)
		return;
	if (t->phase == STATEACCT_PHASE_RUNNABLE) {
		/* Woken from a futex block: its wait for a CPU, added under the block's key. */
		__u64 now = bpf_ktime_get_ns();

		struct stateacct_acc *a = &t->acc[t->acc_last & (STATEACCT_ACC_SLOTS - 1)];

		t->phase = STATEACCT_PHASE_NONE;
		if (a->count && now > t->since_ns) {
			__sync_fetch_and_add(&a->rq_ns, (now - t->since_ns) * t->weight);
			__sync_fetch_and_add(&a->rq_count, t->weight);
		}
		if (t->in_file)
			t->file_since_ns = now;
		return;
	}
	if (t->phase != STATEACCT_PHASE_NONE || t->in_file) {
		__u64 now = bpf_ktime_get_ns(), ns_w;

		end_phase(t, now, &ns_w); /* a block whose wakeup was not seen */
		if (t->in_file)
			t->file_since_ns = now; /* back on the CPU inside a file system call */
	}
}

/*
 * Calls whose blocks only a task (from a system call), a timer or a device ends: woken in
 * interrupt context, such a block was ended by a timer (a futex wait's or a sleep's timeout) or
 * a device (a completed read or flush), never by the thread the interrupt happened to interrupt.
 * Not the calls a socket can end: a loopback send delivers in a softirq in the sender's context
 * (interrupt context too, by task_context.h's test), and the sender is the waker there. x86_64
 * numbers.
 */
static __always_inline bool woken_by_task_timer_or_device(long nr)
{
	switch (nr) {
	case SYS_FUTEX:
	case 35:  /* nanosleep */
	case 230: /* clock_nanosleep */
	case 17:  /* pread64: regular files and block devices only */
	case 18:  /* pwrite64 */
	case 295: /* preadv */
	case 296: /* pwritev */
	case 327: /* preadv2 */
	case 328: /* pwritev2 */
	case 74:  /* fsync */
	case 75:  /* fdatasync */
	case 277: /* sync_file_range */
	case 285: /* fallocate */
	case 77:  /* ftruncate */
		return true;
	default:
		return false;
	}
}

static __always_inline bool same_edge_key(const struct stateacct_edge_key *a,
					  const struct stateacct_edge_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	_Static_assert(sizeof(*a) == 4 * sizeof(__u64), "the edge key is four words, no padding");
	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

/*
 * The wait-for graph's edge: the current task, or an interrupt, woke target thread `tid` from its
 * block in t's call and object, which end_phase accounted with weights ns_w and count_w (the
 * edge adds the same). Called from sched_waking (ctx: its arguments, on the stack it fired on).
 * A thread is mostly woken the same way again (a worker by its queue's producer, a loop by the
 * same client): the entry of its last edge (t->edge_slot) is tried first, and the hash is looked
 * up only when that entry's key is another (user space poisons a deleted key:
 * KernelTable::forget).
 */
static __always_inline void count_wake_edge(void *ctx, struct stateacct_thread *t, __u32 tid,
					    __u64 ns_w, __u64 count_w)
{
	struct task_struct *waker = bpf_get_current_task_btf();
	struct stateacct_edge_key key = {};
	struct stateacct_edge_rec *r;
	__u32 *idx;

	if (!count_edges)
		return;
	key.wakee_tgid = t->tgid;
	key.wakee_tid = tid;
	key.syscall_nr = t->blocked_nr;
	key.object = t->blocked_object;
	if (waker->pid == 0 || (woken_by_task_timer_or_device((long)t->blocked_nr) &&
				!in_task_context(ctx, waker, true))) {
		/* On an idle CPU, or a timer's or a device's: one edge per wakee and object, however
		 * many threads the interrupts came in on. */
		key.waker_kind = STATEACCT_WAKER_INTERRUPT;
	} else {
		key.waker_tgid = waker->tgid;
		key.waker_tid = waker->pid;
		if (waker->flags & PF_KTHREAD)
			key.waker_kind = STATEACCT_WAKER_KTHREAD;
	}
	if (t->edge_slot) {
		__u32 last = t->edge_slot - 1;

		r = bpf_map_lookup_elem(&edge_recs, &last);
		if (r && same_edge_key(&r->key, &key))
			goto add;
	}
	idx = bpf_map_lookup_elem(&edges, &key);
	if (!idx) {
		idx = new_entry(&edges, &edge_recs, &edge_free, &next_edge, STATEACCT_MAX_EDGES, &key,
				sizeof(key), STATEACCT_STAT_EDGES_FULL);
		if (!idx)
			return;
	}
	t->edge_slot = *idx + 1;
	r = bpf_map_lookup_elem(&edge_recs, idx);
	if (!r)
		return;
add:
	__sync_fetch_and_add(&r->value.ns, ns_w);
	__sync_fetch_and_add(&r->value.count, count_w);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(stateacct_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	switch_out(preempt, prev, prev_state);
	switch_in(next);
	return 0;
}

SEC("tp_btf/sched_waking")
int BPF_PROG(stateacct_waking, struct task_struct *p)
{
	struct task_local *l = target_task(p, false);
	struct stateacct_thread *t;

	if (!l)
		return 0;
	t = thread_entry(l, p, false);
	if (!t || t->phase != STATEACCT_PHASE_BLOCKED)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	__u64 ns_w, count_w = end_phase(t, now, &ns_w);

	if (!count_w)
		return 0; /* thinned out: no edge, no run-queue time after it */
	count_wake_edge(ctx, t, t->tid, ns_w, count_w);
	if (t->blocked_nr == SYS_FUTEX) {
		/* Its wait for a CPU from now on is summed (the lock hand-off's cost when the word is a
		 * contended lock; the model decides). */
		t->phase = STATEACCT_PHASE_RUNNABLE;
		t->since_ns = now;
	}
	return 0;
}

/* The file system calls whose first argument is the fd: x86_64 numbers. */
static __always_inline bool file_call(long id)
{
	switch (id) {
	case 0:   /* read */
	case 1:   /* write */
	case 17:  /* pread64 */
	case 18:  /* pwrite64 */
	case 19:  /* readv */
	case 20:  /* writev */
	case 74:  /* fsync */
	case 75:  /* fdatasync */
	case 77:  /* ftruncate */
	case 277: /* sync_file_range */
	case 285: /* fallocate */
	case 295: /* preadv */
	case 296: /* pwritev */
	case 327: /* preadv2 */
	case 328: /* pwritev2 */
		return true;
	default:
		return false;
	}
}

/* Whether the task's fd is open on a regular file. */
static __always_inline bool regular_file(struct task_struct *task, __u64 fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *f = NULL;

	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return false;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) != 0 || !f)
		return false;
	return (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) == S_IFREG;
}

/*
 * The current task entered a file system call (file_call) with `fd`: when it is a target thread
 * and the fd is open on a regular file, its on-CPU time in the call starts. Other tasks return
 * after one storage lookup. The storage is made here if the task has none: a thread that has not
 * left a CPU since the programs were attached (one that runs on, unpreempted, or every thread a
 * second object in the same process finds, whose storage of the first went with that object's
 * map) would otherwise have its file calls untimed until its first switch-out (issue 16).
 */
static __always_inline void file_call_enter(__u64 fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct task_local *l = target_task(task, true);
	struct stateacct_thread *t;

	if (!l)
		return;
	t = thread_entry(l, task, true);
	if (!t)
		return;
	if (!regular_file(task, fd)) {
		t->in_file = 0;
		return;
	}
	t->file_fd = fd;
	t->in_file = 1;
	t->file_since_ns = bpf_ktime_get_ns();
}

/* The current task returns from a file system call: its on-CPU time in it is added. */
static __always_inline void file_call_exit(void)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct task_local *l = target_task(task, false);
	struct stateacct_thread *t;

	if (!l)
		return;
	t = thread_entry(l, task, false);
	if (!t || !t->in_file)
		return;
	add_file_cpu(t, bpf_ktime_get_ns(), true);
	t->in_file = 0;
}

/*
 * Two ways to see a file system call begin and end; user space loads one (state_accounting.cpp):
 *
 * fentry/fexit on the calls' own entry points (__x64_sys_read, ...: BPF trampolines, Linux 5.5+):
 *   only those 15 functions are patched, so every other system call of the host runs as if
 *   nothing were attached. Some kernels refuse trampolines (the 6.18 VM kernel measured here:
 *   EPERM at load, before verification, for fentry, fexit and lsm alike); user space falls back.
 * raw_syscalls sys_enter/sys_exit (tp_btf): every system call of the host runs the program (a
 *   number test) and takes the kernel's traced entry and exit path while it is attached.
 */
#define FILE_CALL_TRAMPOLINES(call)                                                  \
	SEC("fentry/__x64_sys_" #call)                                               \
	int BPF_PROG(stateacct_fentry_##call, const struct pt_regs *regs)            \
	{                                                                            \
		file_call_enter(regs->di);                                           \
		return 0;                                                            \
	}                                                                            \
	SEC("fexit/__x64_sys_" #call)                                                \
	int BPF_PROG(stateacct_fexit_##call, const struct pt_regs *regs, long ret)   \
	{                                                                            \
		file_call_exit();                                                    \
		return 0;                                                            \
	}

/* Every number file_call() accepts, one pair each. */
FILE_CALL_TRAMPOLINES(read)
FILE_CALL_TRAMPOLINES(write)
FILE_CALL_TRAMPOLINES(pread64)
FILE_CALL_TRAMPOLINES(pwrite64)
FILE_CALL_TRAMPOLINES(readv)
FILE_CALL_TRAMPOLINES(writev)
FILE_CALL_TRAMPOLINES(fsync)
FILE_CALL_TRAMPOLINES(fdatasync)
FILE_CALL_TRAMPOLINES(ftruncate)
FILE_CALL_TRAMPOLINES(sync_file_range)
FILE_CALL_TRAMPOLINES(fallocate)
FILE_CALL_TRAMPOLINES(preadv)
FILE_CALL_TRAMPOLINES(pwritev)
FILE_CALL_TRAMPOLINES(preadv2)
FILE_CALL_TRAMPOLINES(pwritev2)

/* The raw_syscalls pair: other system calls return at the number test. */
SEC("tp_btf/sys_enter")
int BPF_PROG(stateacct_sys_enter, struct pt_regs *regs, long id)
{
	if (file_call(id))
		file_call_enter(regs->di);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(stateacct_sys_exit, struct pt_regs *regs, long ret)
{
	if (file_call(regs->orig_ax))
		file_call_exit();
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(stateacct_exit, struct task_struct *p)
{
	struct task_local *l = bpf_task_storage_get(&tasks, p, 0, 0);

	if (l)
		release(l);
	return 0;
}
