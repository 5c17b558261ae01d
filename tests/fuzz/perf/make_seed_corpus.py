#!/usr/bin/env python3
# Writes the seed corpus of perf_records_fuzzer: crafted ring-buffer records (layouts in
# src/collect/perf/records.cpp), each placed at offset 0 and near the end of the ring, so that
# records wrap. Input format: u16 start, u8 max_stack, ring bytes.
import os
import struct

d = os.path.join(os.path.dirname(__file__), '..', 'corpus', 'perf_records_fuzzer')
KERNEL = (1 << 64) - 128
USER = (1 << 64) - 512


def rec(t, misc, body):
    return struct.pack('<IHH', t, misc, 8 + len(body)) + body


def sample(pid, tid, chain):
    # sample_type 0x1a7: ip, pid/tid, time, cpu/res, period, callchain.
    body = struct.pack('<QIIQIIQ', 0x401000, pid, tid, 1234, 0, 0, 10101)
    body += struct.pack('<Q', len(chain)) + b''.join(struct.pack('<Q', c) for c in chain)
    return rec(9, 0, body)


def dwarf_sample(pid, tid, kernel_chain, abi, nregs, stack, dyn_size):
    # sample_type 0x3127: ip, pid/tid, time, period, callchain, regs_user (17 registers),
    # stack_user.
    body = struct.pack('<QIIQQ', 0x401000, pid, tid, 1234, 10101)
    body += struct.pack('<Q', len(kernel_chain)) + b''.join(struct.pack('<Q', c) for c in kernel_chain)
    body += struct.pack('<Q', abi)
    if abi:
        body += b''.join(struct.pack('<Q', 0x7ffd0000 + i) for i in range(nregs))
    body += struct.pack('<Q', len(stack)) + stack
    if stack:
        body += struct.pack('<Q', dyn_size)
    return rec(9, 0, body)


def lost(n):
    return rec(2, 0, struct.pack('<QQ', 1, n))


def comm(pid, tid, name):
    b = name.encode() + b'\0'
    b += b'\0' * (-len(b) % 8)
    return rec(3, 0x2000, struct.pack('<II', pid, tid) + b)


def pad_to_pow2(b):
    n = 8
    while n < len(b):
        n *= 2
    # A PERF_RECORD of an unused type fills the rest, as the decoder skips unknown types.
    rest = n - len(b)
    if rest >= 8:
        b += rec(99, 0, b'\0' * (rest - 8))
    return b


seeds = {
    'sample_kernel_user': sample(10, 11, [KERNEL, 0xffffffff81000010, USER, 0x401000, 0x402000]),
    'lost_and_comm': lost(42) + comm(7, 9, 'lab-loop-0'),
    'three_samples': b''.join(sample(1, i, [USER, 0x400000 + i]) for i in range(3)),
    'bad_size': struct.pack('<IHH', 9, 0, 4000) + b'\0' * 24,
    'dwarf_user_stack': dwarf_sample(10, 11, [KERNEL, 0xffffffff81000010], 2, 17,
                                     bytes(range(256)), 200),
    'dwarf_kernel_thread': dwarf_sample(2, 2, [KERNEL, 0xffffffff81000010], 0, 0, b'', 0),
    'dwarf_dyn_too_big': dwarf_sample(10, 11, [], 2, 17, b'\1' * 64, 72),
}
os.makedirs(d, exist_ok=True)
for name, body in seeds.items():
    body = pad_to_pow2(body)
    for start in (0, len(body) - 16):
        with open(os.path.join(d, f'{name}_{start}'), 'wb') as f:
            f.write(struct.pack('<HB', start, 127) + body)
