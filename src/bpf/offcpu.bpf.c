// SPDX-License-Identifier: GPL-2.0
// Over 600 lines: one BPF object (one skeleton, offcpu.skel.h) is one .bpf.c; its programs share
// the maps declared here, so they cannot be split into files without splitting the object.
/*
 * offcpu: where the target's threads block, for how long, and who woke them.
 *
 * sched_switch (prev): a target thread that leaves the CPU blocked (TASK_INTERRUPTIBLE or
 *   TASK_UNINTERRUPTIBLE, not preempted) gets an entry in `start`: the time, its user and kernel
 *   stack ids, and the return address into the target's own code found above the user stack
 *   pointer (the caller of a libc syscall wrapper built without frame pointers, which a frame
 *   pointer walk skips; a few candidates, which user space proves).
 * sched_waking (p): runs in the waker's context; if p has an entry, the blocked time so far is the
 *   block's: when it is >= min_block_ns the waker's stacks go into the key and the time is added
 *   to `counts`; the entry is removed either way.
 * sched_switch (next): an entry still there (no wakeup seen) is counted up to now and removed.
 * Stack walks cost microseconds; capture() reuses stack ids through a signature cache
 * (sig_cache), see there and docs/offcpu.md.
 *
 * Everything is summed in the kernel; user space reads `counts` and `stacks` once at the end.
 * A missed event cannot double-count: each switch-out overwrites the thread's entry and the wakeup
 * (or else the switch-in) consumes it, so a lost event costs one block, never time counted twice.
 * A runnable thread that is preempted is not off-CPU here: that is CPU wait (run-queue latency,
 * schedstat's run_delay), not blocking, and mixing the two would hide both.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "offcpu.h"
#include "task_context.h"
#include "thinning.h"

#define TASK_INTERRUPTIBLE 0x0001
#define TASK_UNINTERRUPTIBLE 0x0002

#ifndef EINTR
#define EINTR 4
#endif
#ifndef ENOENT
#define ENOENT 2
#endif
#ifndef ENODATA
#define ENODATA 61
#endif
#ifndef EEXIST
#define EEXIST 17
#endif

/* Options, set by user space before load. */
const volatile __u64 min_block_ns = 1000000;
const volatile __u32 filter_mode = OFFCPU_FILTER_TGIDS;
const volatile __u64 target_cgroup_id = 0;
const volatile __u32 target_cgroup_level = 0;
const volatile bool record_wakers = true;
const volatile bool kernel_stacks = true;
const volatile bool user_stacks = true;
const volatile bool leaf_callers = true;
/* Reuse stack ids while a thread's user registers and top two frames are unchanged (sig_cache). */
const volatile bool cache_stacks = true;
/* Also cache uninterruptible (IO) waits' kernel stacks instead of fingerprinting them. */
const volatile bool cache_block_kernel_stacks = false;
/* Record the kernel stack of an interrupt that wakes a thread (disk completion, timer...). */
const volatile bool interrupt_waker_stacks = true;
/* Blocks per CPU per OFFCPU_WINDOW_NS traced in full before the next window samples (0: all). */
const volatile __u32 window_block_budget = 0;

struct start_entry {
	__u64 start_ns;
	__u64 weight; /* 1 / the probability this block was traced with (1: not sampled) */
	struct offcpu_key key;
	char waker_comm[OFFCPU_TASK_COMM_LEN];
	__u64 uninterruptible; /* blocked in TASK_UNINTERRUPTIBLE (D): IO, where kernel paths matter */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tgid */
	__type(value, struct offcpu_target);
} targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32); /* thread id */
	__type(value, struct start_entry);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, struct offcpu_key);
	__type(value, struct offcpu_value);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16384);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, OFFCPU_MAX_STACK_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 4096);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, OFFCPU_INTERRUPT_STACK_DEPTH * sizeof(__u64));
} irq_stacks SEC(".maps");

/* Blocked kernel stack id -> the interrupt stack id that last woke such a wait (S waits only). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __s32);
	__type(value, __s32);
} irq_cache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OFFCPU_DROP_NR);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* Per-CPU sampling state: the current window's start and target blocks, and the interval
 * (1 block in `every`) this window traces, chosen from the last window's count. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct thin_window);
} windows SEC(".maps");

/* Scratch for the switch-out entry: too large for the 512-byte BPF stack with the rest. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct start_entry);
} scratch SEC(".maps");

/*
 * What identifies a user stack without walking it: the user registers saved at kernel entry and
 * the return addresses of the two frames the frame pointer leads to. A thread that blocks (or
 * wakes others) again at the same call site and depth has the same signature; a walk costs a few
 * microseconds per stack here, the signature two 16-byte user reads.
 */
struct user_sig {
	__u64 ip, sp, bp, ret1, ret2;
};

/* Key of the signature cache: the signature of one thread's stack at one site (the stack
 * pointer makes it per thread), and whether it was captured blocking or waking another. Too big
 * for the BPF stack next to the rest: built in per-CPU scratch. */
struct sig_key {
	__u32 tgid;
	__u32 wake;
	struct user_sig sig;
	/* Blocking side: the innermost kernel frames (a shallow walk is cheaper than a full one),
	 * so an fsync that waits on the journal and one that waits on writeback stay apart. */
	__u64 kernel_fingerprint[OFFCPU_KERNEL_FINGERPRINT_FRAMES];
};

struct stack_slot {
	__s32 user_stack_id;
	__s32 kernel_stack_id;
	__u64 leaf_callers[OFFCPU_LEAF_CANDIDATES];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sig_key);
} sig_scratch SEC(".maps");

/* LRU: an evicted signature only costs one more walk. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct sig_key);
	__type(value, struct stack_slot);
} sig_cache SEC(".maps");

/* task_struct::state was renamed __state in 5.14. */
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

static __always_inline long task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___pre514 *)t, state);
}

static __always_inline void count_drop(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &which);

	if (n)
		*n += 1;
}

/* bpf_get_stackid with the failure counted: -EEXIST is a bucket taken by another stack. */
static __always_inline __s32 stack_id(void *ctx, __u64 flags)
{
	long id = bpf_get_stackid(ctx, &stacks, flags);

	if (id < 0)
		count_drop(id == -EEXIST ? OFFCPU_DROP_STACK_COLLISION : OFFCPU_DROP_STACK_FAILED);
	return id;
}

static __always_inline bool is_target(struct task_struct *t, __u32 tgid)
{
	if (BPF_CORE_READ(t, pid) == 0) /* the per-CPU idle tasks */
		return false;
	if (filter_mode == OFFCPU_FILTER_TGIDS)
		return bpf_map_lookup_elem(&targets, &tgid) != NULL;
	if (filter_mode == OFFCPU_FILTER_CGROUP)
		return bpf_get_current_ancestor_cgroup_id(target_cgroup_level) == target_cgroup_id;
	return true;
}

/*
 * The first OFFCPU_LEAF_CANDIDATES words in the OFFCPU_LEAF_SCAN_WORDS above the user stack
 * pointer that point into the target's own text, innermost first, into `out` (zero-filled): the
 * return address of a leaf wrapper (fdatasync, __lll_lock_wait, read) that keeps no frame pointer
 * is among them. Not always the first: glibc's read reserves a slot it never writes, and on a
 * thread stack reused from a joined thread that slot can hold an old return address into the
 * target. User space keeps the first candidate whose call leads to the leaf (call_site.h).
 */
static __always_inline void find_leaf_callers(struct task_struct *t, __u32 tgid, __u64 *out)
{
	struct offcpu_target *text = bpf_map_lookup_elem(&targets, &tgid);
	__u64 words[OFFCPU_LEAF_SCAN_WORDS];
	struct pt_regs *regs;
	int i, r, n = 0;
	__u64 sp;

	if (!text)
		return;
	regs = (struct pt_regs *)bpf_task_pt_regs(t);
	if (!regs)
		return;
	sp = BPF_CORE_READ(regs, sp);
	if (bpf_probe_read_user(words, sizeof(words), (void *)sp))
		return;
	for (i = 0; i < OFFCPU_LEAF_SCAN_WORDS; i++) {
		for (r = 0; r < OFFCPU_MAX_TEXT_RANGES; r++) {
			if (words[i] >= text->text_start[r] && words[i] < text->text_end[r]) {
				if (n < OFFCPU_LEAF_CANDIDATES)
					out[n] = words[i];
				n++;
				break;
			}
		}
		if (n >= OFFCPU_LEAF_CANDIDATES)
			break;
	}
}

/* A frame pointer that can be one: on the thread's stack, above sp, aligned. Anything else is a
 * register a frameless libc function reused, and reading it would fault (microseconds here). */
static __always_inline bool plausible_frame(__u64 fp, __u64 sp)
{
	return fp >= sp && fp - sp < (8u << 20) && !(fp & 7);
}

static __always_inline bool read_sig(struct task_struct *t, struct user_sig *sig)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(t);
	__u64 frame[2];

	if (!regs)
		return false;
	sig->ip = BPF_CORE_READ(regs, ip);
	sig->sp = BPF_CORE_READ(regs, sp);
	sig->bp = BPF_CORE_READ(regs, bp);
	/* A walk stops at the first implausible frame too, so what follows it does not matter. */
	if (!plausible_frame(sig->bp, sig->sp) ||
	    bpf_probe_read_user(frame, sizeof(frame), (void *)sig->bp))
		return true;
	sig->ret1 = frame[1];
	if (!plausible_frame(frame[0], sig->bp) ||
	    bpf_probe_read_user(frame, sizeof(frame), (void *)frame[0]))
		return true;
	sig->ret2 = frame[1];
	return true;
}

/*
 * The current task's stack ids (and leaf caller candidates) into the key fields given. `t` is
 * current; `btf` says it is a BTF pointer (tp_btf), which bpf_task_pt_regs needs: raw_tp neither
 * caches nor recovers leaf callers. `wake` picks the thread's waker slot instead of its blocking slot.
 */
static __always_inline void capture(void *ctx, struct task_struct *t, __u32 pid, __u32 tgid,
				    bool btf, bool wake, bool exact_kernel, __s32 *user_id,
				    __s32 *kernel_id, __u64 *leaf /* [OFFCPU_LEAF_CANDIDATES] */)
{
	bool user = user_stacks && !(BPF_CORE_READ(t, flags) & PF_KTHREAD);
	bool fingerprint = kernel_stacks && exact_kernel;
	struct sig_key *sk = NULL;
	struct stack_slot *hit;
	__u32 zero = 0;

	if (user && btf && cache_stacks)
		sk = bpf_map_lookup_elem(&sig_scratch, &zero);
	if (sk) {
		__builtin_memset(sk, 0, sizeof(*sk));
		if (!read_sig(t, &sk->sig)) {
			sk = NULL;
		} else {
			sk->tgid = tgid;
			sk->wake = wake;
			if (fingerprint)
				bpf_get_stack(ctx, sk->kernel_fingerprint,
					      sizeof(sk->kernel_fingerprint), 0);
			hit = bpf_map_lookup_elem(&sig_cache, sk);
			count_drop(hit ? OFFCPU_CACHE_HITS : OFFCPU_CACHE_MISSES);
			if (hit) {
				*user_id = hit->user_stack_id;
				__builtin_memcpy(leaf, hit->leaf_callers,
						 sizeof(hit->leaf_callers));
				*kernel_id = kernel_stacks ? hit->kernel_stack_id
							   : (wake ? -ENODATA : -ENOENT);
				return;
			}
		}
	}
	if (kernel_stacks)
		*kernel_id = stack_id(ctx, 0);
	else
		*kernel_id = wake ? -ENODATA : -ENOENT;
	*user_id = user ? stack_id(ctx, BPF_F_USER_STACK) : -ENOENT;
	__builtin_memset(leaf, 0, OFFCPU_LEAF_CANDIDATES * sizeof(__u64));
	if (user && btf && leaf_callers)
		find_leaf_callers(t, tgid, leaf);
	if (sk && *user_id >= 0 && (*kernel_id >= 0 || !kernel_stacks)) {
		struct stack_slot v = {
			.user_stack_id = *user_id,
			.kernel_stack_id = *kernel_id,
		};

		__builtin_memcpy(v.leaf_callers, leaf, sizeof(v.leaf_callers));
		bpf_map_update_elem(&sig_cache, sk, &v, BPF_ANY);
	}
}

/*
 * Whether to trace this block, and its weight (1 / the probability it was traced with): 0 leaves
 * it out. A block costs two stack captures (the blocked and the waker side), a few microseconds
 * at the highest context-switch rates; beyond window_block_budget blocks per CPU in a window, the
 * next window traces each block with probability 1/every (every = last window's blocks / budget)
 * and weighs what it traces by `every`. That keeps every sum an unbiased estimate (each block's
 * chance is known when it is drawn), and bounds the cost per CPU per second. A window after an
 * idle one starts unsampled again. User space reports the estimate and the measured blocks.
 */
static __always_inline __u64 sample_block(void)
{
	__u32 zero = 0;
	__u32 weight;

	if (!window_block_budget)
		return 1;
	weight = thin_event(bpf_map_lookup_elem(&windows, &zero), window_block_budget,
			    OFFCPU_WINDOW_NS, OFFCPU_MAX_SAMPLE_EVERY);
	count_drop(weight ? OFFCPU_BLOCKS_TRACED : OFFCPU_BLOCKS_SAMPLED_OUT);
	return weight;
}

/*
 * btf: prev is a BTF pointer (tp_btf); see capture(). state: the state __schedule decided on
 * (the tracepoint's prev_state, 5.18+), or -1 to read prev->__state, which a concurrent wakeup
 * may already have set back to running (TASK_WAKING): such a block would be lost.
 */
static __always_inline void switch_out(void *ctx, bool preempt, struct task_struct *prev,
				       bool btf, long state)
{
	__u32 tgid = BPF_CORE_READ(prev, tgid);
	__u32 pid = BPF_CORE_READ(prev, pid);
	struct start_entry *e;
	__u32 zero = 0;
	__u64 weight;

	if (!is_target(prev, tgid))
		return;
	if (state < 0)
		state = task_state(prev);
	if (preempt || !(state & (TASK_INTERRUPTIBLE | TASK_UNINTERRUPTIBLE))) {
		/* Runnable (CPU wait) or exiting: not a block. Drop an entry a lost switch-in left. */
		if (bpf_map_lookup_elem(&start, &pid))
			bpf_map_delete_elem(&start, &pid);
		return;
	}
	/* The wakeup or switch-in consumed the thread's last entry: nothing stale to drop. */
	weight = sample_block();
	if (!weight)
		return;
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return;
	__builtin_memset(e, 0, sizeof(*e));
	e->weight = weight;
	e->key.tgid = tgid;
	e->key.pid = pid;
	/*
	 * Uninterruptible (D) waits are IO: one call site can wait on the journal, on writeback or on
	 * a flush, and that difference is the evidence, so their kernel path is fingerprinted (a
	 * shallow walk) unless cache_block_kernel_stacks. Interruptible (S) waits (futex, epoll,
	 * sockets, sleeps) take the kernel path their syscall implies: cached per user call site.
	 */
	e->uninterruptible = !!(state & TASK_UNINTERRUPTIBLE);
	capture(ctx, prev, pid, tgid, btf, false, e->uninterruptible && !cache_block_kernel_stacks,
		&e->key.user_stack_id, &e->key.kernel_stack_id, e->key.leaf_callers);
	e->key.waker_user_stack_id = -ENOENT;
	e->key.waker_kernel_stack_id = -ENOENT;
	e->start_ns = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&start, &pid, e, BPF_ANY))
		count_drop(OFFCPU_DROP_START_FULL);
}

/* Adds one block of `t` (the entry's thread) to `counts`. */
static __always_inline void count_block(struct start_entry *e, struct task_struct *t,
					__u64 delta_ns)
{
	__u64 weight = e->weight ? e->weight : 1;
	struct offcpu_value *v, fresh = {};

	v = bpf_map_lookup_elem(&counts, &e->key);
	if (!v) {
		fresh.total_ns = delta_ns * weight;
		fresh.count = weight;
		fresh.measured = 1;
		BPF_CORE_READ_STR_INTO(&fresh.comm, t, comm);
		__builtin_memcpy(fresh.waker_comm, e->waker_comm, sizeof(fresh.waker_comm));
		if (!bpf_map_update_elem(&counts, &e->key, &fresh, BPF_NOEXIST))
			return;
		/* Another CPU inserted the key first, or the map is full. */
		v = bpf_map_lookup_elem(&counts, &e->key);
		if (!v) {
			count_drop(OFFCPU_DROP_COUNTS_FULL);
			return;
		}
	}
	__sync_fetch_and_add(&v->total_ns, delta_ns * weight);
	__sync_fetch_and_add(&v->count, weight);
	__sync_fetch_and_add(&v->measured, 1);
}

/* The thread's pending block (its switch-out entry) and the time blocked so far; NULL if none. */
static __always_inline struct start_entry *pending_block(__u32 pid, __u64 *delta_ns)
{
	struct start_entry *e = bpf_map_lookup_elem(&start, &pid);

	if (e)
		*delta_ns = bpf_ktime_get_ns() - e->start_ns;
	return e;
}

/*
 * A block normally ends at its wakeup (waking() counts it and removes the entry). An entry still
 * here at switch-in had no wakeup seen (the waking program not attached, or the wakeup raced the
 * switch-out): count it up to now, which then includes the run-queue wait.
 */
static __always_inline void switch_in(struct task_struct *next)
{
	__u32 pid = BPF_CORE_READ(next, pid);
	__u64 delta_ns;
	struct start_entry *e = pending_block(pid, &delta_ns);

	if (!e)
		return;
	if ((__s64)delta_ns >= (__s64)min_block_ns)
		count_block(e, next, delta_ns);
	bpf_map_delete_elem(&start, &pid);
}

/*
 * The interrupt's stack for a wakeup of `e`'s thread. A D-state (IO) wait is walked every time:
 * which completion ended it is the evidence. Other waits (timers ending sleeps, packets ending
 * socket waits) are ended by the same interrupt path each time, so the stack is cached per
 * blocked kernel stack in irq_cache.
 */
static __always_inline long interrupt_stack(void *ctx, struct start_entry *e)
{
	__s32 blocked = e->key.kernel_stack_id;
	__s32 *cached;
	long id;

	if (!kernel_stacks || !interrupt_waker_stacks)
		return -ENODATA;
	if (!e->uninterruptible && blocked >= 0) {
		cached = bpf_map_lookup_elem(&irq_cache, &blocked);
		if (cached)
			return *cached;
	}
	id = bpf_get_stackid(ctx, &irq_stacks, 0);
	if (id < 0) {
		count_drop(id == -EEXIST ? OFFCPU_DROP_STACK_COLLISION : OFFCPU_DROP_STACK_FAILED);
		return id;
	}
	if (!e->uninterruptible && blocked >= 0) {
		__s32 v = id;

		bpf_map_update_elem(&irq_cache, &blocked, &v, BPF_ANY);
	}
	return id;
}

/* The waker of `e`'s thread: the current task's stacks, or the interrupt's kernel stack. */
static __always_inline void record_waker(void *ctx, struct start_entry *e, bool btf)
{
	struct task_struct *waker;

	/*
	 * In an interrupt (disk completion, timer, packet), current is whoever was interrupted and
	 * its user stack says nothing about the wakeup. Telling that apart needs preempt_count, a
	 * per-CPU variable whose address kernels without CONFIG_KALLSYMS_ALL do not give BPF; user
	 * space classifies the waker by its kernel stack instead (interrupt entry frames).
	 */
	waker = btf ? bpf_get_current_task_btf() : (struct task_struct *)bpf_get_current_task();
	if (!in_task_context(ctx, waker, btf)) {
		/* Only the interrupt's kernel stack says what woke the thread. */
		long id = interrupt_stack(ctx, e);

		e->key.waker_kernel_stack_id = id;
		e->key.waker_tgid = 0;
		e->key.waker_pid = 0;
		e->key.waker_user_stack_id = -EINTR;
		__builtin_memcpy(e->waker_comm, "[interrupt]", 12);
		count_drop(OFFCPU_INTERRUPT_WAKEUPS);
		return;
	}
	/* The waker's process, not its thread: with N threads handing work to each other, thread
	 * pairs would multiply the distinct keys by N for no insight the stacks do not give. */
	e->key.waker_tgid = BPF_CORE_READ(waker, tgid);
	e->key.waker_pid = 0;
	capture(ctx, waker, BPF_CORE_READ(waker, pid), e->key.waker_tgid, btf, true, false,
		&e->key.waker_user_stack_id, &e->key.waker_kernel_stack_id,
		e->key.waker_leaf_callers);
	bpf_get_current_comm(e->waker_comm, sizeof(e->waker_comm));
}

/*
 * The wakeup ends the block: the time after it, waiting for a CPU, is run-queue wait (CPU wait,
 * schedstat's run_delay), as for a preempted thread. A block shorter than min_block_ns is dropped
 * here, before any waker stack is walked: at the highest context-switch rates almost every block
 * is that short, and the waker's stacks were most of the cost. sched_waking fires under p's
 * pi_lock, once per wakeup, so two wakers never race on one entry.
 */
static __always_inline void waking(void *ctx, struct task_struct *p, bool btf)
{
	__u32 pid = BPF_CORE_READ(p, pid);
	__u64 delta_ns;
	struct start_entry *e = pending_block(pid, &delta_ns);

	if (!e)
		return;
	if ((__s64)delta_ns >= (__s64)min_block_ns) {
		if (record_wakers)
			record_waker(ctx, e, btf);
		count_block(e, p, delta_ns);
	}
	bpf_map_delete_elem(&start, &pid);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(offcpu_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	switch_out(ctx, preempt, prev, true, prev_state);
	switch_in(next);
	return 0;
}

/* Kernels before 5.18 pass no prev_state. */
SEC("tp_btf/sched_switch")
int BPF_PROG(offcpu_switch_nostate, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	switch_out(ctx, preempt, prev, true, -1);
	switch_in(next);
	return 0;
}

SEC("tp_btf/sched_waking")
int BPF_PROG(offcpu_waking, struct task_struct *p)
{
	waking(ctx, p, true);
	return 0;
}

/* The same programs for kernels without BTF-typed tracepoints (tp_btf needs 5.5). */
SEC("raw_tp/sched_switch")
int BPF_PROG(offcpu_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	switch_out(ctx, preempt, prev, false, -1);
	switch_in(next);
	return 0;
}

SEC("raw_tp/sched_waking")
int BPF_PROG(offcpu_waking_raw, struct task_struct *p)
{
	waking(ctx, p, false);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
