// SPDX-License-Identifier: GPL-2.0
/*
 * sockorder: the exact order of each target TCP socket's last send and last receive.
 *
 * tcp_info gives a socket's last send and receive times in jiffies (4 ms at HZ=250), so an event
 * loop that sends the next request on a kept-alive upstream connection in the same jiffy as the
 * previous reply arrived looks the same as one whose request was answered at once: the loop reads
 * as idle while every client waits for the upstream. The sock tracepoints (kernel 6.3+) fire in
 * sock_sendmsg/sock_recvmsg with the socket and the bytes moved; here each call that moved data on
 * a TCP socket of a target process stamps the socket's entry with the monotonic time.
 *
 * Cost: one task-storage lookup (no hashing: whether the caller's process is a target is decided
 * once per task) on every socket send and receive in the system that moved data; a hash lookup
 * and two stores for the target's TCP sockets. Nothing is streamed: user space
 * looks a socket up by inode when it classifies an event loop's wait.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "sockorder.h"

#define SOCKORDER_MSG_PEEK 0x2
#define SOCKORDER_IPPROTO_TCP 6

char LICENSE[] SEC("license") = "GPL";

/* The target processes (key: tgid), kept current by user space, which bumps targets_gen after
 * each change. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} targets SEC(".maps");

__u32 targets_gen = 0;

/* Per task: whether its process is a target, decided once per targets_gen. */
struct sockorder_task {
	__u32 gen;
	__u8 target;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sockorder_task);
} tasks SEC(".maps");

/* Key: socket inode. LRU: sockets that closed long ago make room for new ones. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct sockorder_value);
} sockets SEC(".maps");

/* Whether the current task's process is a target: one storage lookup, no hashing, except after
 * the target set changed (a tgid lookup, once per task). */
static __always_inline bool current_is_target(void)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct sockorder_task *l =
		bpf_task_storage_get(&tasks, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	__u32 gen = *(volatile __u32 *)&targets_gen;

	if (!l)
		return false;
	if (l->gen != gen) {
		__u32 tgid = task->tgid;

		l->target = bpf_map_lookup_elem(&targets, &tgid) != NULL;
		l->gen = gen;
	}
	return l->target;
}

static __always_inline int note(struct sock *sk, int ret, int flags, int send)
{
	struct socket *so;
	struct file *file;
	struct inode *ino;

	if (ret <= 0 || (!send && (flags & SOCKORDER_MSG_PEEK)))
		return 0;
	if (!current_is_target())
		return 0;
	/* Direct loads through the BTF pointers (a faulting one reads 0): no helper call each. */
	if (sk->sk_protocol != SOCKORDER_IPPROTO_TCP)
		return 0;
	so = sk->sk_socket;
	if (!so)
		return 0;
	file = so->file;
	if (!file)
		return 0;
	ino = file->f_inode;
	if (!ino)
		return 0;
	__u64 inode = ino->i_ino;
	if (inode == 0)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	struct sockorder_value *v = bpf_map_lookup_elem(&sockets, &inode);
	if (!v) {
		struct sockorder_value zero = {};
		bpf_map_update_elem(&sockets, &inode, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&sockets, &inode);
		if (!v)
			return 0;
	}
	if (send) {
		v->last_send_ns = now;
		__sync_fetch_and_add(&v->sends, 1);
	} else {
		v->last_recv_ns = now;
		__sync_fetch_and_add(&v->recvs, 1);
	}
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(sockorder_send, struct sock *sk, int ret, int flags)
{
	return note(sk, ret, flags, 1);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(sockorder_recv, struct sock *sk, int ret, int flags)
{
	return note(sk, ret, flags, 0);
}
