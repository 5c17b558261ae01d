/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * sockorder: structs shared by sockorder.bpf.c (kernel) and collect/bpf (user space). Fixed-width
 * types only, no pointers: both sides must agree on every byte.
 */
#ifndef CHOKEPOINT_BPF_SOCKORDER_H
#define CHOKEPOINT_BPF_SOCKORDER_H

/* Value of the "sockets" map (key: __u64 socket inode, as sock_diag and /proc/PID/fd name it):
 * when the target last sent and received data on a TCP socket, in bpf_ktime_get_ns() (the
 * monotonic clock), and how many calls moved data each way. */
struct sockorder_value {
	__u64 last_send_ns;
	__u64 last_recv_ns;
	__u64 sends;
	__u64 recvs;
};

#endif /* CHOKEPOINT_BPF_SOCKORDER_H */
