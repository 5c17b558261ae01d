/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * memory: structs shared by memory.bpf.c (kernel) and collect/bpf (user space). Fixed-width
 * types only, no pointers, explicit padding: both sides must agree on every byte.
 */
#ifndef CHOKEPOINT_BPF_MEMORY_H
#define CHOKEPOINT_BPF_MEMORY_H

/* Frames per stack kept by the stack map; deeper stacks are cut here. */
#define MEMORY_MAX_STACK_DEPTH 127
/* Precomputed draws of the exponential sampling distance (a power of two: masked index). */
#define MEMORY_DISTANCE_SLOTS 1024
/* Precomputed sample weights for sizes below 16 sampling periods, in steps of period / 64. */
#define MEMORY_WEIGHT_SLOTS 1024
#define MEMORY_WEIGHT_STEPS_PER_PERIOD 64

/* Text ranges per target process where the caller of a frameless allocator wrapper is looked for. */
#define MEMORY_MAX_TEXT_RANGES 4
/* Words above the user stack pointer searched for that caller's return address. */
#define MEMORY_LEAF_SCAN_WORDS 16

/* Value of the "targets" map (key: u32 tgid): where the process's own code is mapped. When the
 * allocator returns into code outside it (operator new in libstdc++, built without frame pointers,
 * so a frame-pointer walk skips its caller), the first return address into it found above the
 * stack pointer is the service's allocating function. */
struct memory_target {
	__u64 text_start[MEMORY_MAX_TEXT_RANGES];
	__u64 text_end[MEMORY_MAX_TEXT_RANGES]; /* 0: unused slot */
};

/* Indexes of the per-CPU counters (map "counters"). */
enum memory_counter {
	MEMORY_ALLOC_CALLS = 0,     /* allocation calls seen (outermost allocator calls only) */
	MEMORY_ALLOC_SAMPLED = 1,   /* of those, sampled (a stack taken, an entry in "allocs") */
	MEMORY_FREES_MATCHED = 2,   /* frees (or reallocs, munmaps) of a sampled allocation */
	MEMORY_DROP_ALLOCS_FULL = 3, /* a sampled allocation lost: "allocs" was full */
	MEMORY_DROP_STATS_FULL = 4, /* a sampled allocation not summed: "stats" was full */
	MEMORY_DROP_STACK = 5,      /* the user stack could not be taken */
	MEMORY_FREE_CALLS = 6,      /* free calls seen */
	MEMORY_COUNTER_NR = 7,
};

/* Key of "allocs": one live sampled allocation. */
struct memory_alloc_key {
	__u32 tgid;
	__u32 pad;
	__u64 address;
};

/* Value of "allocs". */
struct memory_alloc {
	__u64 size;         /* bytes asked for */
	__u64 weight_bytes; /* bytes this sample stands for (size / the chance it was sampled) */
	__u64 time_ns;      /* bpf_ktime_get_ns() at the allocation */
	__u64 leaf_caller;  /* return address into the target's text above sp; 0: none */
	__s32 stack_id;     /* user stack in "stacks"; negative: -errno of bpf_get_stackid */
	__u32 pad;
};

/* Key of "stats": one allocating stack of one process. */
struct memory_stack_key {
	__u32 tgid;
	__s32 stack_id;
	__u64 leaf_caller; /* as in memory_alloc */
};

/* Value of "stats": what was allocated at that stack during the trace and what of it was freed.
 * Bytes are weighted (estimates); samples are counts of sampled allocations. */
struct memory_stack_value {
	__u64 alloc_bytes;
	__u64 alloc_samples;
	__u64 freed_bytes;
	__u64 freed_samples;
};

#endif /* CHOKEPOINT_BPF_MEMORY_H */
