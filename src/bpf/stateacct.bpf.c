// SPDX-License-Identifier: GPL-2.0
/*
 * stateacct: the exact off-CPU split of the target's threads, summed in the kernel.
 *
 * sched_switch (prev): a target thread that blocks starts a BLOCKED phase (its state: S, D or
 *   other, and the system call it blocked in with that call's first argument: the fd, or the
 *   futex word); one that is preempted starts a RUNNABLE phase. The call is read from the user
 *   registers saved at kernel entry (orig_ax, di), as /proc/PID/syscall reads it: orig_ax is the
 *   call's number inside one and -1 in an exception or interrupt (a page fault). That needs no
 *   program on raw_syscalls sys_enter/sys_exit, which would run on every system call of the whole
 *   system (measured: about 10% of a core at 50,000 requests/s of the lab, docs/benchmarks.md).
 * sched_waking (p): a BLOCKED phase ends: its time goes to `sums` under (thread, state, call,
 *   object), and a RUNNABLE phase (wakeup to switch-in) starts. This runs in the waker's context:
 *   count_wake_edge adds the wakeup and the blocked time it ended to `edges` under (current tid,
 *   p's tid, call, object): issue 15's wait-for graph, one more map update per target wakeup.
 * sched_switch (next): a RUNNABLE phase ends into `sums`; a BLOCKED one whose wakeup was not seen
 *   ends too (counted as blocked up to now).
 *
 * Nothing is streamed per event: user space reads `sums` (and the open phases in `threads`) once
 * per tick. A missed event cannot double-count: each event ends the phase it finds and starts the
 * next, so a lost one costs at most one phase, never time counted twice.
 *
 * Budget: every target switch-out is counted per CPU in windows of STATEACCT_WINDOW_NS; above
 * window_switch_budget the next window accounts each phase with probability 1/every and weighs it
 * by `every`, as offcpu.bpf.c does: the sums stay unbiased and the cost per CPU is bounded.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "stateacct.h"
#include "thinning.h"

#define TASK_RUNNING 0x0000
#define TASK_INTERRUPTIBLE 0x0001
#define TASK_UNINTERRUPTIBLE 0x0002
#define TASK_DEAD 0x0080
#define PF_KTHREAD 0x00200000

char LICENSE[] SEC("license") = "GPL";

/* Switch-outs per CPU per window accounted in full before the next window thins (0: never). */
const volatile __u32 window_switch_budget = 0;
/* Count the wait-for edges (count_wake_edge); off only to measure their cost. */
const volatile __u8 count_edges = 1;

/* The target processes (key: tgid), kept current by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STATEACCT_MAX_TARGETS);
	__type(key, __u32);
	__type(value, __u8);
} targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STATEACCT_MAX_THREADS);
	__type(key, __u32);
	__type(value, struct stateacct_thread);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STATEACCT_MAX_SUMS);
	__type(key, struct stateacct_key);
	__type(value, struct stateacct_value);
} sums SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STATEACCT_STAT_NR);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct thin_window);
} windows SEC(".maps");

static __always_inline void count_stat(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&stats, &which);

	if (n)
		*n += 1;
}

static __always_inline bool is_target_tgid(__u32 tgid)
{
	return bpf_map_lookup_elem(&targets, &tgid) != NULL;
}

/* The thread's entry, created for a target thread (tgid checked by the caller). */
static __always_inline struct stateacct_thread *thread_entry(__u32 tid, __u32 tgid, bool create)
{
	struct stateacct_thread *t = bpf_map_lookup_elem(&threads, &tid);

	if (t || !create)
		return t;
	struct stateacct_thread zero = {};

	zero.blocked_nr = -1;
	zero.tgid = tgid;
	if (bpf_map_update_elem(&threads, &tid, &zero, BPF_NOEXIST) != 0) {
		t = bpf_map_lookup_elem(&threads, &tid); /* a racing creator won */
		if (!t)
			count_stat(STATEACCT_STAT_THREADS_FULL);
		return t;
	}
	return bpf_map_lookup_elem(&threads, &tid);
}

/* Ends the thread's phase at `now` into `sums`. */
static __always_inline void end_phase(struct stateacct_thread *t, __u32 tid, __u64 now)
{
	struct stateacct_key key = {};
	struct stateacct_value *v;

	if (t->phase == STATEACCT_PHASE_NONE)
		return;
	__u64 delta = now > t->since_ns ? now - t->since_ns : 0;

	key.tgid = t->tgid;
	key.tid = tid;
	key.kind = t->kind;
	key.syscall_nr = t->blocked_nr;
	key.object = t->blocked_object;
	t->phase = STATEACCT_PHASE_NONE;
	v = bpf_map_lookup_elem(&sums, &key);
	if (!v) {
		struct stateacct_value zero = {};

		if (bpf_map_update_elem(&sums, &key, &zero, BPF_NOEXIST) != 0 &&
		    !bpf_map_lookup_elem(&sums, &key)) {
			count_stat(STATEACCT_STAT_SUMS_FULL);
			return;
		}
		v = bpf_map_lookup_elem(&sums, &key);
		if (!v)
			return;
	}
	__sync_fetch_and_add(&v->ns, delta * t->weight);
	__sync_fetch_and_add(&v->count, t->weight);
}

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STATEACCT_MAX_EDGES);
	__type(key, struct stateacct_edge_key);
	__type(value, struct stateacct_edge_value);
} edges SEC(".maps");

/* The weight this CPU accounts the next phase with: 0 to skip it (thinned out). */
static __always_inline __u64 sample_switch(void)
{
	__u32 zero = 0;
	__u32 weight;

	count_stat(STATEACCT_STAT_SWITCHES);
	if (!window_switch_budget)
		return 1;
	struct thin_window *w = bpf_map_lookup_elem(&windows, &zero);

	weight = thin_event(w, window_switch_budget, STATEACCT_WINDOW_NS,
			    STATEACCT_MAX_SAMPLE_EVERY);
	if (w && w->every > 1) {
		__u32 which = STATEACCT_STAT_MAX_EVERY;
		__u64 *max = bpf_map_lookup_elem(&stats, &which);

		if (max && *max < w->every)
			*max = w->every;
	}
	if (!weight)
		count_stat(STATEACCT_STAT_THINNED_OUT);
	return weight;
}

static __always_inline void switch_out(bool preempt, struct task_struct *prev, long state)
{
	__u32 tgid = BPF_CORE_READ(prev, tgid);
	__u32 tid = BPF_CORE_READ(prev, pid);

	if (tid == 0 || !is_target_tgid(tgid))
		return;
	struct stateacct_thread *t = thread_entry(tid, tgid, true);

	if (!t)
		return;
	__u64 now = bpf_ktime_get_ns();

	end_phase(t, tid, now); /* a phase a lost switch-in left open */
	if (state & TASK_DEAD) {
		/* The last switch of an exiting thread (after sched_process_exit): nothing follows. */
		bpf_map_delete_elem(&threads, &tid);
		return;
	}
	__u64 weight = sample_switch();

	if (!weight)
		return;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(prev);

	t->weight = weight;
	t->since_ns = now;
	t->blocked_nr = -1;
	t->blocked_object = 0;
	if (regs && !(BPF_CORE_READ(prev, flags) & PF_KTHREAD)) {
		long nr = BPF_CORE_READ(regs, orig_ax);

		if (nr >= 0) {
			t->blocked_nr = nr;
			t->blocked_object = BPF_CORE_READ(regs, di);
		}
	}
	t->phase = STATEACCT_PHASE_BLOCKED;
	if (preempt || state == TASK_RUNNING) {
		t->phase = STATEACCT_PHASE_RUNNABLE;
		t->kind = STATEACCT_RUNQ_PREEMPTED;
	} else if (state & TASK_UNINTERRUPTIBLE) {
		t->kind = STATEACCT_UNINTERRUPTIBLE;
	} else if (state & TASK_INTERRUPTIBLE) {
		t->kind = STATEACCT_INTERRUPTIBLE;
	} else {
		t->kind = STATEACCT_OTHER;
	}
}

static __always_inline void switch_in(struct task_struct *next)
{
	__u32 tid = BPF_CORE_READ(next, pid);
	struct stateacct_thread *t;

	if (tid == 0)
		return;
	t = bpf_map_lookup_elem(&threads, &tid);
	if (t)
		end_phase(t, tid, bpf_ktime_get_ns());
}

/*
 * The wait-for graph's edge: the current task woke target thread `tid`, blocked (phase BLOCKED,
 * not yet ended) since t->since_ns in t's call and object. Called before the phase ends.
 */
static __always_inline void count_wake_edge(const struct stateacct_thread *t, __u32 tid, __u64 now)
{
	struct task_struct *waker = bpf_get_current_task_btf();
	struct stateacct_edge_key key = {};
	struct stateacct_edge_value *v;
	__u64 delta = now > t->since_ns ? now - t->since_ns : 0;

	if (!count_edges)
		return;
	key.waker_tgid = waker->tgid;
	key.waker_tid = waker->pid;
	key.wakee_tgid = t->tgid;
	key.wakee_tid = tid;
	key.syscall_nr = t->blocked_nr;
	key.object = t->blocked_object;
	if (key.waker_tid == 0)
		key.waker_kind = STATEACCT_WAKER_IDLE;
	else if (waker->flags & PF_KTHREAD)
		key.waker_kind = STATEACCT_WAKER_KTHREAD;
	v = bpf_map_lookup_elem(&edges, &key);
	if (!v) {
		struct stateacct_edge_value zero = {};

		if (bpf_map_update_elem(&edges, &key, &zero, BPF_NOEXIST) != 0 &&
		    !bpf_map_lookup_elem(&edges, &key)) {
			count_stat(STATEACCT_STAT_EDGES_FULL);
			return;
		}
		v = bpf_map_lookup_elem(&edges, &key);
		if (!v)
			return;
	}
	__sync_fetch_and_add(&v->ns, delta * t->weight);
	__sync_fetch_and_add(&v->count, t->weight);
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
	__u32 tid = BPF_CORE_READ(p, pid);
	struct stateacct_thread *t = bpf_map_lookup_elem(&threads, &tid);

	if (!t || t->phase != STATEACCT_PHASE_BLOCKED)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	__u64 weight = t->weight;

	count_wake_edge(t, tid, now);
	end_phase(t, tid, now);
	t->weight = weight;
	t->since_ns = now;
	t->kind = STATEACCT_RUNQ_WAKEUP;
	t->phase = STATEACCT_PHASE_RUNNABLE;
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(stateacct_exit, struct task_struct *p)
{
	__u32 tid = BPF_CORE_READ(p, pid);

	bpf_map_delete_elem(&threads, &tid);
	return 0;
}
