#!/usr/bin/env python3
"""chokepoint's time split against an independent bpftrace reference (issues 15 and 16).

For each lab scenario: start chokepoint-lab (and its upstream), start bench/reference/split.bt on
the lab's pid, start the load (wrk, loopback), then run one `chokepoint diagnose --mode exact
--json --record` window. The sampled split is `replay --mode sample` of that recording: the same
window, the kernel's sums set aside. The reference split is the bpftrace sums over the same window
(the recording's first and last tick; CLOCK_MONOTONIC, moved to bpftrace's CLOCK_BOOTTIME),
classed by the rules below, which use nothing of chokepoint's. Prints the L1 distance between
the reference and each mode, as shares of the whole process's thread time.

Two references: "direct" leaves each hand-off (below) as idle, a wait for another thread's work;
"wait-for" gives it its waker's split (issue 15's wait-for graph, the design's rule).

Usage: [BASE_BIN=other/chokepoint] bench/reference/compare.py [BUILD_DIR] [SCENARIO...] [--detail]
  BASE_BIN adds that build's exact and sampled splits of the same window (replays of the
    recording). WINDOW_S sets the window (default 3 s; diagnose's own default is 5 s). SAVE_DIR keeps each window's recording (SCENARIO.MS.chokepoint) and its
    reference (SCENARIO.MS.ref.json: the shares and each thread's ns by class) there. INTERVAL
    sets diagnose's --interval (its default 100ms): how often the sampler reads.
       bench/reference/compare.py [BUILD_DIR] --overhead
  --detail prints the sampled split, and each thread's reference time by (class, reason) beside
    chokepoint's waits_s.
  --overhead measures what split.bt costs the lab (none scenario, 2 loops): req/s without and
    with it, 5 alternating rounds.

Classes (the design's): on_cpu, cpu_wait, disk, network, lock, memory, sleep, idle.
  run queue (wakeup or preemption -> switch-in)             cpu_wait, but lock after a wakeup
    from a contended mutex (below): the lock's hand-off cost, as docs/verdicts/lock.md defines it
  on CPU inside a file system call (fsync, fdatasync, sync_file_range, fallocate, ftruncate,
    read/write/pread/pwrite/readv/writev on a regular file)  disk (issue 15, class 3)
  on CPU anywhere else                                      on_cpu
  blocked in a file system call (as above, or D state in open/openat/unlink/rename/io_*)  disk
  blocked in futex FUTEX_WAIT / LOCK_PI (glibc mutexes) on a word that 2 or more threads waited
    on in the window                                        lock (contention)
  blocked in futex FUTEX_WAIT_BITSET (glibc condvars, semaphores) on a word that 2 or more
    threads waited on: a pool parked for work               idle (the design's rule)
  blocked in futex on a word only this thread waited on in the window (a future, a join, a
    reply's condvar or semaphore), or reading a pipe or eventfd: a hand-off. Woken by a thread
    of the process: the time takes the waker's own split (wPerf's rule, with the waker's
    whole-window split standing for its state during the wait); woken by nothing of the process
    (timeout, signal): idle
  nanosleep, clock_nanosleep                                sleep
  accept, accept4, wait4, waitid, sigtimedwait, signalfd and other waits for events   idle
  epoll_wait/epoll_pwait(2), poll, ppoll, select, pselect6  network while a connection the process
    opened (connect(2)) had a request written and no reply read (split.bt counts these in the
    kernel), else idle
  read/recv on a socket the process connected itself        network (an upstream)
  read/recv on an accepted socket                           idle (waiting for the client)
  write/send blocked on any socket, connect                 network
  blocked outside a system call (page fault), mmap/munmap/mprotect/brk/madvise/mremap   memory
  anything else: D state -> disk, else idle (listed by --detail as "other")
Where it must guess: an fd the process connect(2)ed while traced is an upstream (split.bt marks
it); another fd is resolved through /proc/PID/fd at the end of the window (sockets through
/proc/PID/net/tcp: accepted if its local port is one the process listens on); an fd
closed by then is unknown: recv/send on it count as a socket (idle / network), read/write count
as disk in D state and idle otherwise. A thread the tracer never saw switch (blocked or running
the whole time) takes its /proc state and syscall at the end of the window for the whole window.
"""
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench", "lab"))
import lab_process  # noqa: E402
from lab_process import stop  # noqa: E402
ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
DETAIL = "--detail" in sys.argv
BUILD = ARGS[0] if ARGS else os.path.join(ROOT, "build")
ONLY = ARGS[1:]
BASE_BIN = os.environ.get("BASE_BIN")  # another build's chokepoint: replays each recording
SAVE_DIR = os.environ.get("SAVE_DIR")  # keeps each window's recording and reference there
BIN = os.path.join(BUILD, "bin")
BT = os.path.join(ROOT, "bench/reference/split.bt")
KEYS = os.path.join(ROOT, "bench/lab/keys_random.lua")
TMP = tempfile.mkdtemp(prefix="cp-reference.")
WINDOW_S = int(os.environ.get("WINDOW_S", "3"))  # the diagnose window, s (its default: 5)
INTERVAL = os.environ.get("INTERVAL")  # diagnose's --interval (its default: 100ms)
CLASSES = ["on_cpu", "cpu_wait", "disk", "network", "lock", "memory", "sleep", "idle"]

# x86_64 system call numbers
READS = {0, 17, 19, 295}        # read, pread64, readv, preadv
WRITES = {1, 18, 20, 296}       # write, pwrite64, writev, pwritev
RECVS = {45, 47}                # recvfrom, recvmsg
SENDS = {44, 46}                # sendto, sendmsg
FILE_ONLY = {74, 75, 277, 285, 77}  # fsync, fdatasync, sync_file_range, fallocate, ftruncate
FILE_D = {2, 257, 437, 87, 263, 82, 264, 316, 85, 206, 208, 209, 426}  # open.., unlink.., io_*
MEMORY = {9, 10, 11, 12, 25, 28}  # mmap, mprotect, munmap, brk, mremap, madvise
SLEEPS = {35, 230}              # nanosleep, clock_nanosleep
EPOLL = {232, 281, 441, 7, 271, 23, 270}  # epoll_wait.., poll, ppoll, select, pselect6
IDLE_WAITS = {43, 288, 61, 247, 128, 130, 34}  # accept, accept4, wait4, waitid, sigtimedwait..
FUTEX = 202
CONNECT = 42

# name, lab args, load ("closed", "keys", "none"), wrk connections, upstream delay ms (or None)
SCENARIOS = [
    ("cpu", ["--scenario", "cpu"], "closed", 16, None),
    ("lock", ["--scenario", "lock"], "keys", 16, None),
    ("lock (threads)", ["--scenario", "lock", "--model", "threads"], "keys", 16, None),
    ("disk", ["--scenario", "disk"], "closed", 16, None),
    ("log", ["--scenario", "log"], "closed", 16, None),
    ("fsync", ["--scenario", "fsync"], "closed", 64, None),
    ("upstream", ["--scenario", "upstream"], "closed", 16, 5),
    ("proxy", ["--scenario", "proxy"], "closed", 16, 10),
    ("serial", ["--scenario", "serial"], "closed", 16, None),
    ("pipeline", ["--scenario", "pipeline"], "closed", 16, None),
    ("pipeline (condvar)", ["--scenario", "pipeline", "--handoff", "condvar"], "closed", 16,
     None),
    ("none (idle)", ["--scenario", "none"], "none", 0, None),
]


def start_lab(args):
    return lab_process.start_lab(BIN, TMP, args)


def ensure_tracefs():
    """bpftrace reads tracepoint formats from tracefs; mount it if nobody has."""
    if os.path.exists("/sys/kernel/tracing/events"):
        return False
    subprocess.run(["mount", "-t", "tracefs", "tracefs", "/sys/kernel/tracing"], check=True)
    return True


def start_tracer(pid):
    out = open(os.path.join(TMP, "bt.%d.out" % pid), "w+")
    env = dict(os.environ, BPFTRACE_MAP_KEYS_MAX="65536", BPFTRACE_STRLEN="16")

    p = subprocess.Popen(["bpftrace", "-B", "none", BT, str(pid), "60"], stdout=out,
                         stderr=open(os.path.join(TMP, "bt.%d.err" % pid), "w"), env=env)
    for _ in range(300):
        out.seek(0)
        if re.search(r"^T \d+", out.read(), re.M):
            return p, out
        if p.poll() is not None:
            break
        time.sleep(0.05)
    stop(p, signal.SIGINT)
    raise RuntimeError("bpftrace did not start (run as root; see bpftrace %s %d 1)" % (BT, pid))


MAP_LINE = re.compile(r"^@(\w+)\[([-0-9, ]+)\]: (-?\d+)$")


def parse_snapshots(text):
    """[(t_ns, {map: {key tuple: value}})] from split.bt's output."""
    snaps, cur = [], None
    for line in text.splitlines():
        if line.startswith("T "):
            cur = (int(line[2:]), {})
        elif line == "E" and cur:
            snaps.append(cur)
            cur = None
        elif cur:
            m = MAP_LINE.match(line)
            if m:
                key = tuple(int(x) for x in m.group(2).split(","))
                cur[1].setdefault(m.group(1), {})[key] = int(m.group(3))
    return snaps


def cumulative(snap):
    """Each (tid, kind, key...) -> ns up to the snapshot, the phases in progress included."""
    t, maps = snap
    acc = {}

    def add(k, v):
        acc[k] = acc.get(k, 0) + v
    for (tid, sc1, arg), v in maps.get("cpu", {}).items():
        add((tid, "cpu", sc1, arg), v)
    for (tid, sc1, arg), v in maps.get("rq", {}).items():
        add((tid, "rq", sc1, arg), v)
    for (tid, st, sc1, arg, wk), v in maps.get("blk", {}).items():
        add((tid, "blk", st, sc1, arg, wk), v)
    g = lambda m, tid: maps.get(m, {}).get((tid,), 0)  # noqa: E731
    for (tid,), ph in maps.get("ph", {}).items():
        since = t - g("t0", tid)
        if since < 0 or since > 3600e9:
            continue
        if ph == 1:
            add((tid, "cpu", g("insc", tid), g("arg", tid)), since)
        elif ph == 2:
            add((tid, "rq", g("rsc", tid), g("rarg", tid)), since)
        elif ph == 3:
            add((tid, "blk", g("bst", tid), g("bsc", tid), g("barg", tid), 0), since)
    return t, acc


def at(cums, t_ns):
    """The cumulative sums interpolated to t_ns between the two snapshots around it."""
    before = [c for c in cums if c[0] <= t_ns]
    after = [c for c in cums if c[0] >= t_ns]
    if not before or not after:
        raise RuntimeError("the tracer's snapshots (%s to %s, %d) do not cover %d" % (
            cums[0][0] if cums else None, cums[-1][0] if cums else None, len(cums), t_ns))
    (t0, a), (t1, b) = before[-1], after[0]
    f = 0.0 if t1 == t0 else (t_ns - t0) / (t1 - t0)
    return {k: a.get(k, 0) * (1 - f) + b.get(k, 0) * f for k in set(a) | set(b)}


def resolve_fds(pid):
    """fd -> "file", "client", "upstream", "listen", "socket", "pipe", "eventfd", "other"."""
    listening, by_inode = set(), {}
    for name in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, name)) as f:
                next(f)
                for line in f:
                    c = line.split()
                    lport, st, inode = int(c[1].split(":")[1], 16), c[3], c[9]
                    by_inode[inode] = (lport, st)
                    if st == "0A":
                        listening.add(lport)
        except OSError:
            pass
    kinds = {}
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return kinds
    for fd in fds:
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", link)
        if m:
            lport, st = by_inode.get(m.group(1), (None, None))
            if st == "0A":
                kinds[int(fd)] = "listen"
            elif lport is None:
                kinds[int(fd)] = "socket"
            else:
                kinds[int(fd)] = "client" if lport in listening else "upstream"
        elif link.startswith("pipe:"):
            kinds[int(fd)] = "pipe"
        elif link.startswith("anon_inode:[eventfd]"):
            kinds[int(fd)] = "eventfd"
        elif link.startswith("/") and not link.startswith(("/dev/", "/proc/", "/sys/")):
            kinds[int(fd)] = "file"
        else:
            kinds[int(fd)] = "other"
    return kinds


def unseen_threads(pid, seen):
    """Threads the tracer never saw switch: their /proc state and syscall now."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        if int(tid) in seen:
            continue
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open("/proc/%d/task/%s/syscall" % (pid, tid)) as f:
                sc = f.read().split()
        except (OSError, IndexError):
            continue
        out[int(tid)] = (state, sc)
    return out


def file_call(sc, arg, fds):
    return sc in FILE_ONLY or ((sc in READS or sc in WRITES) and fds.get(arg) == "file")


def class_blocked(st, sc, arg, fds, futex_waiters):
    """(class or "handoff", reason) of a blocked interval; sc is the syscall nr or -1."""
    kind = "upstream" if (sc != FUTEX and arg >> 32 == 1) else fds.get(arg)
    if sc < 0:
        return "memory", "blocked outside a syscall"
    if file_call(sc, arg, fds) or (st == 2 and sc in FILE_D):
        return "disk", "syscall %d on a file" % sc
    if sc == FUTEX:
        addr, op = arg >> 8, arg & 0xFF
        waiters = len(futex_waiters.get(addr, ()))
        if op in (0, 6, 11) and waiters >= 2:
            return "lock", "futex op %d, %d waiters" % (op, waiters)
        if waiters >= 2:
            return "idle", "futex op %d, %d waiters (a pool parked for work)" % (op, waiters)
        return "handoff", "futex op %d, 1 waiter" % op
    if sc in SLEEPS:
        return "sleep", "syscall %d" % sc
    if sc in EPOLL:
        return ("network", "epoll/poll, upstream call outstanding") if arg else \
            ("idle", "epoll/poll")
    if sc in IDLE_WAITS:
        return "idle", "syscall %d" % sc
    if sc == CONNECT:
        return "network", "connect"
    if sc in READS or sc in RECVS:
        if kind == "upstream":
            return "network", "read upstream socket"
        if kind in ("client", "socket") or (kind is None and sc in RECVS):
            return "idle", "read client socket"
        if kind in ("pipe", "eventfd"):
            return "handoff", "read " + kind
        if kind is None and st == 2:
            return "disk", "read closed fd in D"
        return "idle", "read %s" % kind
    if sc in WRITES or sc in SENDS:
        if kind in ("client", "upstream", "socket") or (kind is None and sc in SENDS):
            return "network", "write socket"
        if kind is None and st == 2:
            return "disk", "write closed fd in D"
        return "idle", "write %s" % kind
    if sc in MEMORY:
        return "memory", "syscall %d" % sc
    return ("disk" if st == 2 else "idle"), "other syscall %d state %d" % (sc, st)


def reference_split(window, fds, unseen, window_ns, resolve_handoffs=True):
    """Per thread: {class: ns}, with hand-offs resolved by their waker's split, and reasons."""
    direct, handoff, reasons = {}, {}, {}
    futex_waiters = {}
    for key in window:
        if key[1] == "blk" and key[3] - 1 == FUTEX:
            futex_waiters.setdefault(key[4] >> 8, set()).add(key[0])
    for tid, (state, sc) in unseen.items():
        if len(sc) > 2 and sc[0] == str(FUTEX):
            futex_waiters.setdefault(int(sc[1], 16), set()).add(tid)

    def add(tid, cls, why, ns):
        direct.setdefault(tid, {})
        direct[tid][cls] = direct[tid].get(cls, 0) + ns
        reasons.setdefault(tid, {})
        reasons[tid][(cls, why)] = reasons[tid].get((cls, why), 0) + ns
    for key, ns in window.items():
        tid, what = key[0], key[1]
        if what == "rq":
            sc, arg = key[2] - 1, key[3]
            if sc == FUTEX and class_blocked(1, sc, arg, fds, futex_waiters)[0] == "lock":
                # docs/verdicts/lock.md's definition: woken at unlock, a waiter's wait for a core
                # is the lock's hand-off cost
                add(tid, "lock", "run queue after a contended futex wake", ns)
            else:
                add(tid, "cpu_wait", "run queue", ns)
        elif what == "cpu":
            sc, arg = key[2] - 1, key[3]
            if sc >= 0 and file_call(sc, arg, fds):
                add(tid, "disk", "on CPU in syscall %d on a file" % sc, ns)
            else:
                add(tid, "on_cpu", "on CPU", ns)
        else:
            st, sc, arg, wk = key[2], key[3] - 1, key[4], key[5]
            cls, why = class_blocked(st, sc, arg, fds, futex_waiters)
            if cls == "handoff" and wk == 0:
                cls, why = "idle", why + ", woken from outside"
            if cls == "handoff":
                handoff.setdefault(tid, {})
                handoff[tid][wk] = handoff[tid].get(wk, 0) + ns
                reasons.setdefault(tid, {})
                r = ("handoff", why + " <- %d" % wk)
                reasons[tid][r] = reasons[tid].get(r, 0) + ns
            else:
                add(tid, cls, why, ns)
    for tid, (state, sc) in unseen.items():
        if state == "R":
            add(tid, "on_cpu", "never switched, running", window_ns)
        else:
            nr = int(sc[0]) if sc and sc[0].lstrip("-").isdigit() else -1
            a = int(sc[1], 16) if len(sc) > 1 else 0
            if nr in EPOLL:
                a = 0  # whether an upstream call was outstanding is unknown: idle
            if nr == FUTEX and len(sc) > 2:
                a = a << 8 | (int(sc[2], 16) & 127)
            cls, why = class_blocked(2 if state == "D" else 1, nr, a, fds, futex_waiters)
            if cls == "handoff":
                cls = "idle"
            add(tid, cls, "never switched: " + why, window_ns)
    if not resolve_handoffs:
        for tid, by_waker in handoff.items():
            direct.setdefault(tid, {})
            direct[tid]["idle"] = direct[tid].get("idle", 0) + sum(by_waker.values())
        return direct, reasons
    # Hand-offs take their waker's split; iterate so chains resolve (a depth limit of 8).
    final = {tid: dict(c) for tid, c in direct.items()}
    for _ in range(8):
        nxt = {tid: dict(c) for tid, c in direct.items()}
        for tid, by_waker in handoff.items():
            for wk, ns in by_waker.items():
                w = final.get(wk, {})
                tot = sum(w.values())
                nxt.setdefault(tid, {})
                if tot <= 0:
                    nxt[tid]["idle"] = nxt[tid].get("idle", 0) + ns
                    continue
                for cls, v in w.items():
                    nxt[tid][cls] = nxt[tid].get(cls, 0) + ns * v / tot
        final = nxt
    return final, reasons


def shares(per_thread):
    tot = {c: 0.0 for c in CLASSES}
    for c in per_thread.values():
        for k, v in c.items():
            tot[k] += v
    s = sum(tot.values())
    return {k: (v / s if s > 0 else 0.0) for k, v in tot.items()}


def l1(a, b):
    return sum(abs(a.get(k, 0) - b.get(k, 0)) for k in CLASSES)


def fmt(split):
    return " ".join("%s %.2f" % (k, v) for k, v in sorted(split.items(), key=lambda x: -x[1])
                    if v >= 0.01)


def wrk(port, seconds, conns, keys):
    return subprocess.Popen(["wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds, "--timeout", "10s"] +
                            (["-s", KEYS] if keys else []) + ["http://127.0.0.1:%d/" % port],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run(name, args, load, conns, delay_ms):
    up = lab = tracer = w = None
    try:
        if delay_ms is not None:
            up, up_port = start_lab(["--role", "upstream", "--delay-ms", str(delay_ms)])
            args = args + ["--upstream", "127.0.0.1:%d" % up_port]
        lab, port = start_lab(args)
        tracer, bt_out = start_tracer(lab.pid)
        if load != "none":
            w = wrk(port, WINDOW_S + 20, conns, load == "keys")
        time.sleep(1)
        rec = os.path.join(TMP, "window.chokepoint")
        if os.path.exists(rec):
            os.unlink(rec)
        d = subprocess.run([os.path.join(BIN, "chokepoint"), "diagnose", "--pid", str(lab.pid),
                            "--duration", "%ds" % WINDOW_S, "--no-stacks", "--mode", "exact",
                            "--json", "--record", rec]
                           + (["--interval", INTERVAL] if INTERVAL else []),
                           capture_output=True, text=True,
                           timeout=120)
        exact = json.loads(d.stdout)
        fds = resolve_fds(lab.pid)
        db = sqlite3.connect("file:%s?mode=ro" % rec, uri=True)
        t_start, t_end = db.execute("SELECT min(at_ns), max(at_ns) FROM tick").fetchone()
        db.close()
        # bpftrace 0.17's nsecs is CLOCK_BOOTTIME; the recording's ticks are CLOCK_MONOTONIC
        boot = time.clock_gettime_ns(time.CLOCK_BOOTTIME) - \
            time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        # wait for a complete snapshot after the window's end (bpftrace prints asynchronously)
        for _ in range(300):
            bt_out.seek(0)
            snaps = parse_snapshots(bt_out.read())
            if snaps and snaps[-1][0] > t_end + boot:
                break
            time.sleep(0.1)
        stop(tracer, signal.SIGINT)
        if w:
            stop(w)
        bt_out.seek(0)
        snaps = parse_snapshots(bt_out.read())
        cums = [cumulative(s) for s in snaps]
        a, b = at(cums, t_start + boot), at(cums, t_end + boot)
        window = {k: b.get(k, 0) - a.get(k, 0) for k in set(a) | set(b)}
        seen = {k[0] for k in window if abs(window[k]) > 0} | \
            {k[0] for c in cums for k in c[1]}
        unseen = unseen_threads(lab.pid, seen)
        per_thread, reasons = reference_split(window, fds, unseen, t_end - t_start)
        direct_per_thread = reference_split(window, fds, unseen, t_end - t_start, False)[0]
        ref_direct = shares(direct_per_thread)
        r = subprocess.run([os.path.join(BIN, "chokepoint"), "replay", rec, "--mode", "sample",
                            "--json"], capture_output=True, text=True, timeout=120)
        sampled = json.loads(r.stdout)
        ref = shares(per_thread)
        thread_s = sum(sum(c.values()) for c in per_thread.values()) / 1e9
        cp_thread_s = sum(t["observed_s"] for t in exact["threads"])
        base = ""
        if BASE_BIN:
            # The same recording replayed by another build (e.g. main's): its exact split of the
            # very same window, side by side.
            r = subprocess.run([BASE_BIN, "replay", rec, "--json"], capture_output=True,
                               text=True, timeout=120)
            b = json.loads(r.stdout)
            # and its sampled split of the same window
            r = subprocess.run([BASE_BIN, "replay", rec, "--mode", "sample", "--json"],
                               capture_output=True, text=True, timeout=120)
            bs = json.loads(r.stdout)
            base = " %s | %.3f | %.3f | %.3f | %.3f |" % (
                b["verdict"], l1(ref_direct, b["time_split"]), l1(ref, b["time_split"]),
                l1(ref_direct, bs["time_split"]), l1(ref, bs["time_split"]))
        if SAVE_DIR:
            # The recording and its reference, to replay other builds' splits against later.
            stem = os.path.join(SAVE_DIR, "%s.%d" % (re.sub(r"[^a-z]+", "_", name),
                                                     time.time_ns() // 1000000))
            subprocess.run(["cp", rec, stem + ".chokepoint"], check=True)
            with open(stem + ".ref.json", "w") as f:
                json.dump({"scenario": name, "ref": ref, "ref_direct": ref_direct,
                           "per_thread": {str(k): v for k, v in per_thread.items()}}, f)
        print("| %s | %s | %.3f | %.3f | %.3f | %.3f | %.2f | %s | %s |%s" % (
            name, exact["verdict"], l1(ref_direct, exact["time_split"]),
            l1(ref_direct, sampled["time_split"]), l1(ref, exact["time_split"]),
            l1(ref, sampled["time_split"]), thread_s / cp_thread_s if cp_thread_s else 0,
            fmt(ref), fmt(exact["time_split"]), base), flush=True)
        if DETAIL:
            print("  sampled split: %s" % fmt(sampled["time_split"]))
            cp = {t["tid"]: t for t in exact["threads"]}
            sp = {t["tid"]: t for t in sampled["threads"]}
            for tid in sorted(set(per_thread) | set(cp)):
                tot = sum(per_thread.get(tid, {}).values()) or 1
                print("  tid %d %s ref: %s" % (tid, cp.get(tid, {}).get("comm", "?"),
                                               fmt({k: v / tot for k, v in
                                                    per_thread.get(tid, {}).items()})))
                print("    direct ref: %s" % fmt({k: v / tot for k, v in
                                                direct_per_thread.get(tid, {}).items()}))
                for (cls, why), ns in sorted(reasons.get(tid, {}).items(), key=lambda x: -x[1]):
                    if ns / tot >= 0.01:
                        print("      %-8s %5.1f%%  %s" % (cls, 100 * ns / tot, why))
                if tid in cp:
                    print("    exact:  %s  %s" % (fmt(cp[tid]["time_split"]),
                                                  json.dumps(cp[tid].get("waits_s", {}))))
                if tid in sp:
                    print("    sample: %s" % fmt(sp[tid]["time_split"]))
    finally:
        stop(w)
        stop(tracer, signal.SIGINT)
        stop(lab)
        stop(up)


def overhead(rounds=5):
    """The lab's throughput (none scenario, 2 loops: trivial requests, a syscall-heavy target;
    wrk closed loop) without and with split.bt attached, alternating rounds, medians: what the
    reference itself costs the target."""
    lab, port = start_lab(["--scenario", "none", "--workers", "2"])
    got = {"none": [], "split.bt": []}
    core_share, events = [], []
    old_stats = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
    try:
        for _ in range(rounds):
            for mode in ("none", "split.bt"):
                tracer, progs = None, []
                if mode == "split.bt":
                    before = {p["id"] for p in bpf_progs()}
                    open("/proc/sys/kernel/bpf_stats_enabled", "w").write("1")
                    tracer = start_tracer(lab.pid)[0]
                    progs = [p["id"] for p in bpf_progs() if p["id"] not in before and
                             p.get("type") == "tracepoint" and p.get("name") in BT_PROGS]
                    r0 = bpf_run(progs)
                t0 = time.monotonic()
                w = subprocess.Popen(["wrk", "-t1", "-c16", "-d5s",
                                      "http://127.0.0.1:%d/" % port], stdout=subprocess.PIPE,
                                     text=True)
                m = re.search(r"Requests/sec:\s+([0-9.]+)", w.communicate()[0])
                got[mode].append(float(m.group(1)) if m else 0.0)
                if tracer:
                    r1, elapsed = bpf_run(progs), time.monotonic() - t0
                    both = set(r0) & set(r1)  # programs that lived through the round
                    core_share.append(sum(r1[i][0] - r0[i][0] for i in both) / (elapsed * 1e9))
                    events.append(sum(r1[i][1] - r0[i][1] for i in both) / elapsed)
                    open("/proc/sys/kernel/bpf_stats_enabled", "w").write(old_stats)
                stop(tracer, signal.SIGINT)
            print("round: none %.0f req/s, split.bt %.0f; its programs %.2f%% of one core, "
                  "%.0f runs/s" % (got["none"][-1], got["split.bt"][-1], core_share[-1] * 100,
                                   events[-1]), flush=True)
    finally:
        open("/proc/sys/kernel/bpf_stats_enabled", "w").write(old_stats)
        stop(lab)
    a, b = statistics.median(got["none"]), statistics.median(got["split.bt"])
    print("medians: none %.0f req/s, split.bt attached %.0f (ratio %.3f); its programs %.2f%% of "
          "one core (bpf_stats), %.0f runs/s, %.2f us per run" % (
              a, b, b / a, statistics.median(core_share) * 100, statistics.median(events),
              statistics.median(core_share) * 1e6 / max(statistics.median(events), 1)))


BT_PROGS = {"sched_switch", "sched_wakeup", "sched_wakeup_ne", "sys_enter", "sys_exit"}


def bpf_progs():
    out = subprocess.run(["bpftool", "prog", "show", "--json"], capture_output=True,
                         text=True).stdout
    return json.loads(out or "[]")


def bpf_run(ids):
    """{id: (run_time_ns, run_cnt)} of the programs ids that are loaded."""
    return {p["id"]: (p.get("run_time_ns", 0), p.get("run_cnt", 0)) for p in bpf_progs()
            if p["id"] in ids}


def main():
    mounted = ensure_tracefs()
    if "--overhead" in sys.argv:
        try:
            overhead()
        finally:
            if mounted:
                subprocess.run(["umount", "/sys/kernel/tracing"])
            subprocess.run(["rm", "-rf", TMP])
        return
    print("| scenario | verdict (exact) | L1 exact (direct ref) | L1 sampled (direct ref) |"
          " L1 exact (wait-for ref) | L1 sampled (wait-for ref) | thread time ref/cp |"
          " wait-for reference split | exact split |" +
          (" BASE_BIN verdict | BASE_BIN L1 exact (direct ref) |"
           " BASE_BIN L1 exact (wait-for ref) | BASE_BIN L1 sampled (direct ref) |"
           " BASE_BIN L1 sampled (wait-for ref) |" if BASE_BIN else ""))
    print("|---|---|---:|---:|---:|---:|---:|---|---|" +
          ("---|---:|---:|---:|---:|" if BASE_BIN else ""))
    try:
        for sc in SCENARIOS:
            if not ONLY or sc[0] in ONLY or sc[0].split()[0] in ONLY:
                for attempt in (1, 2):  # once more when the tracer fell behind
                    try:
                        run(*sc)
                        break
                    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
                        if attempt == 2:
                            print("| %s | not measured: %s |" % (
                                sc[0], str(e).replace("\n", " ")[:300]), flush=True)
    finally:
        if mounted:
            subprocess.run(["umount", "/sys/kernel/tracing"])
        if os.environ.get("KEEP_TMP") is None:
            subprocess.run(["rm", "-rf", TMP])
        else:
            print("kept " + TMP)


if __name__ == "__main__":
    main()
