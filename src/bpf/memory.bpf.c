// SPDX-License-Identifier: GPL-2.0
/*
 * memory: sampled allocations of the target processes and whether they were freed, by stack.
 *
 * uprobes on the allocator the target maps (glibc, jemalloc, tcmalloc: malloc, calloc, realloc,
 * posix_memalign, aligned_alloc, memalign, valloc) note the size asked for; their uretprobes see
 * the address returned. free's uprobe (and realloc's return, for the old block) ends an
 * allocation. Anonymous mmap/munmap called by the program itself come from the syscall
 * tracepoints.
 *
 * Sampling by bytes, as tcmalloc and jemalloc heap profiles do: each thread counts down the bytes
 * until its next sample, drawn from an exponential distribution with mean `sample_period` (the
 * draws are precomputed by user space in `distances`: BPF has no floating point). An allocation
 * of s bytes that crosses the countdown is sampled; by the exponential's lack of memory its
 * chance is 1 - exp(-s / period), so it stands for s / (1 - exp(-s / period)) bytes (`weights`,
 * precomputed too). Sums of those weights are unbiased estimates of the bytes allocated, and the
 * cost of stack walks and map updates follows the byte rate, not the call rate. The uprobe trap
 * itself is paid on every call.
 *
 * Nesting: allocator entry points call each other (glibc's realloc(NULL, n) is malloc, realloc(p,
 * 0) frees, a large malloc mmaps): only the outermost call of a thread counts (`depth`).
 *
 * Sampled allocations live in `allocs` (address -> size, weight, stack) until freed; `stats` sums
 * per stack what was allocated and what was freed. User space reads both once, at the end.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "memory.h"

#define MAP_ANONYMOUS 0x20

/* Options, set by user space before load. */
/* Mean bytes between samples; 0 samples every allocation (weight = size). */
const volatile __u64 sample_period = 0;
/* Exponential draws with mean sample_period (user space fills them). */
const volatile __u64 distances[MEMORY_DISTANCE_SLOTS] = {};
/* weights[i]: the weight of an allocation of about (i + 0.5) * weight_step bytes. */
const volatile __u64 weight_step = 1;
const volatile __u64 weights[MEMORY_WEIGHT_SLOTS] = {};

/* Cleared by user space at the end of the window, before the probes are detached (detaching
 * takes up to a second per probe here: RCU grace periods), so the window ends at once. */
bool enabled = true;

/* Processes traced (key: tgid). The uprobes are attached per process already; the tracepoints
 * fire for every process and need this. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct memory_target);
} targets SEC(".maps");

/* Per thread: the byte countdown and the allocator call in progress. */
struct thread_state {
	__u64 until_sample; /* bytes left before the next sample */
	__u64 size;         /* the outermost call's size */
	__u64 old_ptr;      /* realloc's block */
	__u64 memptr;       /* posix_memalign's out pointer */
	__u32 depth;        /* allocator calls in progress (nested ones are not counted) */
	__u8 sampled;       /* the outermost call is sampled */
	__u8 realloc;       /* the outermost call is a realloc (old_ptr is meaningful) */
	__u8 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct thread_state);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct memory_alloc_key);
	__type(value, struct memory_alloc);
} allocs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct memory_stack_key);
	__type(value, struct memory_stack_value);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16384);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MEMORY_MAX_STACK_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MEMORY_COUNTER_NR);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &which);
	if (v)
		*v += 1;
}

static __always_inline bool is_target(__u32 tgid)
{
	if (!enabled)
		return false;
	return bpf_map_lookup_elem(&targets, &tgid) != NULL;
}

static __always_inline __u64 draw_distance(void)
{
	__u32 i = bpf_get_prandom_u32() & (MEMORY_DISTANCE_SLOTS - 1);
	return distances[i];
}

static __always_inline __u64 weight_of(__u64 size)
{
	if (sample_period == 0)
		return size;
	__u64 i = size / weight_step;
	if (i >= MEMORY_WEIGHT_SLOTS)
		return size;
	return weights[i];
}

static __always_inline struct thread_state *thread_of(__u32 tid)
{
	struct thread_state *st = bpf_map_lookup_elem(&threads, &tid);
	if (st)
		return st;
	struct thread_state init = {};
	init.until_sample = draw_distance();
	bpf_map_update_elem(&threads, &tid, &init, BPF_NOEXIST);
	return bpf_map_lookup_elem(&threads, &tid);
}

/* Byte sampling: whether an allocation of `size` bytes is sampled. */
static __always_inline __u8 sample(struct thread_state *st, __u64 size)
{
	if (sample_period == 0)
		return 1;
	if (size < st->until_sample) {
		st->until_sample -= size;
		return 0;
	}
	st->until_sample = draw_distance();
	return 1;
}

static __always_inline bool in_text(const struct memory_target *text, __u64 address)
{
	for (int r = 0; r < MEMORY_MAX_TEXT_RANGES; r++) {
		if (address >= text->text_start[r] && address < text->text_end[r])
			return true;
	}
	return false;
}

/*
 * When the allocator returned into code outside the target's own text (a wrapper such as
 * libstdc++'s operator new, which keeps no frame pointer), the first word in the
 * MEMORY_LEAF_SCAN_WORDS above the user stack pointer that points into the target's text: the
 * wrapper's return address into the service's allocating function, or a stale word in a slot of
 * the wrapper's frame that it never wrote (a reused thread stack). User space keeps it only when
 * the call before it leads to the wrapper (collect/bpf/call_site.h), so a stale word costs the
 * caller, never names a wrong one. regs: the uretprobe's user registers, NULL elsewhere.
 */
static __always_inline __u64 find_leaf_caller(struct pt_regs *regs, __u32 tgid)
{
	struct memory_target *text = bpf_map_lookup_elem(&targets, &tgid);
	__u64 words[MEMORY_LEAF_SCAN_WORDS];

	if (!text || !regs || in_text(text, PT_REGS_IP(regs)))
		return 0;
	if (bpf_probe_read_user(words, sizeof(words), (void *)PT_REGS_SP(regs)))
		return 0;
	for (int i = 0; i < MEMORY_LEAF_SCAN_WORDS; i++) {
		if (in_text(text, words[i]))
			return words[i];
	}
	return 0;
}

/* Ends a sampled allocation, if `address` is one. */
static __always_inline void forget(__u32 tgid, __u64 address)
{
	struct memory_alloc_key key = {.tgid = tgid, .address = address};
	struct memory_alloc *a = bpf_map_lookup_elem(&allocs, &key);
	if (!a)
		return;
	struct memory_stack_key sk = {
		.tgid = tgid, .stack_id = a->stack_id, .leaf_caller = a->leaf_caller};
	struct memory_stack_value *v = bpf_map_lookup_elem(&stats, &sk);
	if (v) {
		__sync_fetch_and_add(&v->freed_bytes, a->weight_bytes);
		__sync_fetch_and_add(&v->freed_samples, 1);
	}
	bpf_map_delete_elem(&allocs, &key);
	count(MEMORY_FREES_MATCHED);
}

/* Records a sampled allocation at `address`; ctx is where the stack is taken (the allocator's
 * return, so the innermost frame is its caller); regs: the user registers of a uretprobe, or
 * NULL. */
static __always_inline void remember(void *ctx, struct pt_regs *regs, __u32 tgid, __u64 address,
				     __u64 size)
{
	struct memory_alloc a = {};
	a.size = size;
	a.weight_bytes = weight_of(size);
	a.time_ns = bpf_ktime_get_ns();
	a.stack_id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	a.leaf_caller = find_leaf_caller(regs, tgid);
	if (a.stack_id < 0)
		count(MEMORY_DROP_STACK);
	struct memory_alloc_key key = {.tgid = tgid, .address = address};
	/* An address still in the map was freed by a path not probed: replace it. */
	if (bpf_map_update_elem(&allocs, &key, &a, BPF_ANY) != 0) {
		count(MEMORY_DROP_ALLOCS_FULL);
		return;
	}
	count(MEMORY_ALLOC_SAMPLED);
	struct memory_stack_key sk = {
		.tgid = tgid, .stack_id = a.stack_id, .leaf_caller = a.leaf_caller};
	struct memory_stack_value *v = bpf_map_lookup_elem(&stats, &sk);
	if (!v) {
		struct memory_stack_value zero = {};
		bpf_map_update_elem(&stats, &sk, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&stats, &sk);
		if (!v) {
			count(MEMORY_DROP_STATS_FULL);
			return;
		}
	}
	__sync_fetch_and_add(&v->alloc_bytes, a.weight_bytes);
	__sync_fetch_and_add(&v->alloc_samples, 1);
}

/* `track`: false for a call that is not an allocation (a file mmap) but must still nest. */
static __always_inline int alloc_enter(__u64 size, __u64 old_ptr, bool realloc, __u64 memptr,
				       bool track)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!is_target(id >> 32))
		return 0;
	struct thread_state *st = thread_of((__u32)id);
	if (!st)
		return 0;
	st->depth += 1;
	if (st->depth != 1)
		return 0;
	st->realloc = 0;
	st->sampled = 0;
	if (!track)
		return 0;
	count(MEMORY_ALLOC_CALLS);
	st->size = size;
	st->old_ptr = old_ptr;
	st->realloc = realloc;
	st->memptr = memptr;
	st->sampled = sample(st, size);
	return 0;
}

/* `address`: what the call returned; for posix_memalign, 0 means read it from memptr. */
static __always_inline int alloc_exit(struct pt_regs *ctx, __u64 address, bool posix)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	__u32 tid = (__u32)id;
	struct thread_state *st = bpf_map_lookup_elem(&threads, &tid);
	if (!st || st->depth == 0)
		return 0;
	st->depth -= 1;
	if (st->depth != 0)
		return 0;
	if (posix) {
		/* posix_memalign returns 0 or an error number; the block is in *memptr. */
		__u64 out = 0;
		if (address != 0 || st->memptr == 0 ||
		    bpf_probe_read_user(&out, sizeof(out), (void *)st->memptr) != 0)
			return 0;
		address = out;
	}
	/* realloc frees its block when it returns a block (moved or resized in place: counted as a
	 * free and a new allocation, as tcmalloc does) and when asked for 0 bytes. */
	if (st->realloc && st->old_ptr != 0 && (address != 0 || st->size == 0))
		forget(tgid, st->old_ptr);
	if (st->sampled && address != 0)
		remember(ctx, ctx, tgid, address, st->size);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(memory_malloc, __u64 size)
{
	return alloc_enter(size, 0, false, 0, true);
}

SEC("uprobe")
int BPF_KPROBE(memory_calloc, __u64 n, __u64 size)
{
	return alloc_enter(n * size, 0, false, 0, true);
}

SEC("uprobe")
int BPF_KPROBE(memory_realloc, __u64 ptr, __u64 size)
{
	return alloc_enter(size, ptr, true, 0, true);
}

SEC("uprobe")
int BPF_KPROBE(memory_posix_memalign, __u64 memptr, __u64 alignment, __u64 size)
{
	return alloc_enter(size, 0, false, memptr, true);
}

/* aligned_alloc(alignment, size) and memalign(alignment, size). */
SEC("uprobe")
int BPF_KPROBE(memory_aligned_alloc, __u64 alignment, __u64 size)
{
	return alloc_enter(size, 0, false, 0, true);
}

SEC("uretprobe")
int BPF_KRETPROBE(memory_alloc_return, __u64 address)
{
	return alloc_exit(ctx, address, false);
}

SEC("uretprobe")
int BPF_KRETPROBE(memory_posix_memalign_return, __u64 ret)
{
	return alloc_exit(ctx, ret, true);
}

static __always_inline int memory_free_common(__u64 ptr)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (ptr == 0 || !is_target(id >> 32))
		return 0;
	__u32 tid = (__u32)id;
	struct thread_state *st = bpf_map_lookup_elem(&threads, &tid);
	if (st && st->depth != 0)
		return 0; /* inside realloc: its return decides */
	count(MEMORY_FREE_CALLS);
	forget(id >> 32, ptr);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(memory_free, __u64 ptr)
{
	return memory_free_common(ptr);
}

/* mmap(addr, length, prot, flags, fd, offset) in libc: anonymous memory asked for by the program
 * itself (the allocator's own mmaps are nested: depth > 1). A file mapping is not an allocation,
 * but it still raises the depth, as its return lowers it. */
SEC("uprobe")
int BPF_KPROBE(memory_mmap, __u64 addr, __u64 length, __u64 prot, __u64 flags)
{
	return alloc_enter(length, 0, false, 0, (flags & MAP_ANONYMOUS) != 0);
}

SEC("uretprobe")
int BPF_KRETPROBE(memory_mmap_return, __u64 address)
{
	/* MAP_FAILED is (void *)-1. */
	return alloc_exit(ctx, address == (__u64)-1 ? 0 : address, false);
}

/* munmap(addr, length) of a whole sampled mapping ends it; partial unmaps are not followed. */
SEC("uprobe")
int BPF_KPROBE(memory_munmap, __u64 addr)
{
	return memory_free_common(addr);
}

char LICENSE[] SEC("license") = "GPL";
