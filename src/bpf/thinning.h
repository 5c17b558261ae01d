/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * thinning: the per-CPU budget of offcpu.bpf.c's blocks (stateacct.bpf.c thins by length
 * instead, where a block ends: its thin_block). Events are counted per CPU in windows of
 * window_ns; when the last window saw more than `budget`, the next one keeps each event with
 * probability 1/every (every = the last count / budget + 1, at most max_every) and weighs what it
 * keeps by `every`. Each event's chance is known when it is drawn, so every sum stays an unbiased
 * estimate, and the cost per CPU is bounded. A window after an idle one starts unthinned again.
 * Kernel side only (BPF C).
 */
#ifndef CHOKEPOINT_BPF_THINNING_H
#define CHOKEPOINT_BPF_THINNING_H

struct thin_window {
	__u64 start_ns;
	__u32 events;
	__u32 every;
};

/* The weight of an event at `now` (bpf_ktime_get_ns(), read by the caller, which mostly needs it
 * too): 0 when it is thinned out, else 1/its probability. `w` is this CPU's window (a
 * PERCPU_ARRAY element); budget 0 keeps every event. */
static __always_inline __u32 thin_event_at(struct thin_window *w, __u32 budget, __u64 window_ns,
					   __u32 max_every, __u64 now)
{
	if (!budget || !w)
		return 1;
	if (now - w->start_ns >= window_ns) {
		__u32 every = 1;

		if (now - w->start_ns < 2 * window_ns && w->events > budget)
			every = w->events / budget + 1;
		if (every > max_every)
			every = max_every;
		w->every = every;
		w->start_ns = now;
		w->events = 0;
	}
	w->events++;
	if (w->every > 1 && bpf_get_prandom_u32() % w->every)
		return 0;
	return w->every ? w->every : 1;
}

/* thin_event_at, now. */
static __always_inline __u32 thin_event(struct thin_window *w, __u32 budget, __u64 window_ns,
					__u32 max_every)
{
	if (!budget || !w)
		return 1;
	return thin_event_at(w, budget, window_ns, max_every, bpf_ktime_get_ns());
}

#endif /* CHOKEPOINT_BPF_THINNING_H */
