#!/usr/bin/env python3
"""The sampler's observer effect: what the disk lab's workers were doing at the instants the
sampler looks, against their time average (docs/benchmarks.md, "The sampled split's disk miss:
the sampler's own CPU").

Starts chokepoint-lab --scenario disk under wrk (-c16 or CONNS, loopback), then at once: `perf record -a`
of sched_switch and sched_waking (perf's own tracepoint handling, without BPF's recursion limits,
on CLOCK_MONOTONIC like the recording's ticks) and one `chokepoint diagnose --mode sample
--record` window. From perf's events, each lab-worker's timeline: on CPU, runnable (from its
wakeup or preemption to its switch-in), blocked in D or in S (from its switch-out to its wakeup).
Prints, as shares of the workers' time:
  time average          the timelines over the window (the truth a sampled split estimates)
  at tick +N us         every worker's state N us after each tick's start (the recording's
                        tick.at_ns, taken when the sampler wakes), over the window's ticks
  sampled split         chokepoint's split of the workers (replay --mode sample)
BASE_BIN (another build's chokepoint) alternates windows of both builds (base, this, base, this:
SECONDS each) in one session against one timeline, and prints each window's rows.
With --reader, a control: a reader in this process reads each worker's /proc/TID/stat at random
instants, and its reads are set against the timeline at the read's instant (how often /proc's
state is the kernel's at that instant).
Usage: [CONNS=16] [BASE_BIN=...] bench/reference/observer.py [BUILD_DIR] [SECONDS] [--reader]   (root)
"""
import bisect
import collections
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench", "lab"))
import lab_process  # noqa: E402
from lab_process import stop  # noqa: E402

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
BUILD = ARGS[0] if ARGS else os.path.join(ROOT, "build")
SECONDS = int(ARGS[1]) if len(ARGS) > 1 else 20
READER = "--reader" in sys.argv
CONNS = int(os.environ.get("CONNS", "16"))  # wrk connections (16: both CPUs busy)
BIN = os.path.join(BUILD, "bin")
BASE_BIN = os.environ.get("BASE_BIN")
OFFSETS_US = (-1000, -100, 0, 20, 50, 100, 200, 500, 1000, 2000)


def worker_tids(pid):
    task = "/proc/%d/task" % pid
    return [int(t) for t in os.listdir(task)
            if open("%s/%s/comm" % (task, t)).read().strip() == "lab-worker"]


def read_at_random(pid, tids, seconds, out):
    """Each worker's /proc/TID/stat state at Poisson instants (mean 30 ms), with the read's
    CLOCK_MONOTONIC midpoint."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(random.expovariate(1 / 0.03))
        for t in tids:
            t0 = time.monotonic_ns()
            try:
                st = open("/proc/%d/task/%d/stat" % (pid, t)).read()
            except OSError:
                continue
            out.append((t, (t0 + time.monotonic_ns()) // 2, st[st.rindex(")") + 2]))


def timelines(perf_data, tids):
    """tid -> [(ns, state)], each state lasting to the next entry: run, rq, blkD, blkS."""
    txt = subprocess.run(["perf", "script", "-i", perf_data, "-F", "tid,time,event,trace"],
                         capture_output=True, text=True, check=True).stdout
    seg = collections.defaultdict(list)
    wanted = set(tids)
    for line in txt.splitlines():
        m = re.match(r"\s*(\d+)\s+([\d.]+):\s+sched:(\w+):\s+(.*)", line)
        if not m:
            continue
        ns = int(round(float(m.group(2)) * 1e9))
        a = dict(re.findall(r"(\w+)=(\S+)", m.group(4)))
        if m.group(3) == "sched_switch":
            prev, nxt = int(a["prev_pid"]), int(a["next_pid"])
            if prev in wanted:
                seg[prev].append((ns, "rq" if a["prev_state"].startswith("R")
                                  else "blk" + a["prev_state"][0]))
            if nxt in wanted:
                seg[nxt].append((ns, "run"))
        elif int(a["pid"]) in wanted:  # sched_waking: a blocked thread becomes runnable
            s = seg[int(a["pid"])]
            if s and s[-1][1].startswith("blk"):
                s.append((ns, "rq"))
    return seg


def state_at(seg, tid, ns):
    s = seg.get(tid)
    if not s:
        return None
    i = bisect.bisect_right(s, (ns, "~")) - 1
    return s[i][1] if i >= 0 else None


def shares(counter):
    n = sum(counter.values()) or 1
    return " ".join("%s %.3f" % (k, counter[k] / n) for k in ("run", "rq", "blkD", "blkS"))


def report(label, binary, rec, seg, tids):
    """One window's rows: the workers' time average and states after the ticks (perf), and the
    window's sampled split of them."""
    db = sqlite3.connect("file:%s?mode=ro" % rec, uri=True)
    ticks = [r[0] for r in db.execute("SELECT at_ns FROM tick ORDER BY id")]
    db.close()
    lo, hi = ticks[0], ticks[-1]
    total = collections.Counter()
    for s in seg.values():
        for (a, st), (b, _) in zip(s, s[1:]):
            if min(b, hi) > max(a, lo):
                total[st] += min(b, hi) - max(a, lo)
    print("%s (%s): %d workers, %d ticks over %.1f s" % (label, binary, len(tids), len(ticks),
                                                      (hi - lo) / 1e9))
    print("  %-22s %s" % ("time average", shares(total)))
    for off in OFFSETS_US:
        c = collections.Counter(state_at(seg, t, tk + off * 1000)
                                for tk in ticks[1:-1] for t in tids)
        c.pop(None, None)
        print("  %-22s %s" % ("at tick %+d us" % off, shares(c)))
    r = subprocess.run([binary, "replay", rec, "--mode", "sample", "--json"],
                       capture_output=True, text=True, check=True)
    split = collections.Counter()
    for t in json.loads(r.stdout)["threads"]:
        if t["comm"] == "lab-worker":
            for k, v in t["time_split"].items():
                split[k] += v * t["observed_s"]
    n = sum(split.values()) or 1
    print("  %-22s %s" % ("sampled split", " ".join(
        "%s %.3f" % (k, split[k] / n) for k in ("on_cpu", "cpu_wait", "disk", "idle"))))
    print("  %-22s %.3f (time average %.3f)" % ("disk share of off-CPU", split["disk"] / max(
        1, split["disk"] + split["idle"]), total["blkD"] / max(1, total["blkD"] + total["blkS"])))


def main():
    tmp = tempfile.mkdtemp(prefix="cp-observer.")
    lab = w = perf = None
    try:
        lab, port = lab_process.start_lab(BIN, tmp, ["--scenario", "disk"])
        w = subprocess.Popen(["wrk", "-t1", "-c%d" % CONNS, "-d%ds" % ((4 if BASE_BIN else 1) * (SECONDS + 3) + 12),
                              "http://127.0.0.1:%d/" % port],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2)
        tids = worker_tids(lab.pid)
        perf_data = os.path.join(tmp, "perf.data")
        perf = subprocess.Popen(["perf", "record", "-q", "-k", "CLOCK_MONOTONIC", "-o",
                                 perf_data, "-a", "-e", "sched:sched_switch", "-e",
                                 "sched:sched_waking", "--", "sleep",
                                 str((4 if BASE_BIN else 1) * (SECONDS + 3))],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        reads = []
        reader = None
        if READER:
            reader = threading.Thread(target=read_at_random,
                                      args=(lab.pid, tids, SECONDS, reads))
            reader.start()
        windows = [("base", BASE_BIN), ("this", os.path.join(BIN, "chokepoint"))] * 2 \
            if BASE_BIN else [("this", os.path.join(BIN, "chokepoint"))]
        recs = []
        for i, (label, binary) in enumerate(windows):
            rec = os.path.join(tmp, "window.%d.chokepoint" % i)
            subprocess.run([binary, "diagnose", "--pid", str(lab.pid), "--duration",
                            "%ds" % SECONDS, "--no-stacks", "--mode", "sample", "--record", rec,
                            "--json"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=SECONDS + 60, check=True)
            recs.append((label, binary, rec))
        if reader:
            reader.join()
        perf.wait(len(windows) * (SECONDS + 5) + 30)
        stop(w)
        stop(lab)
        seg = timelines(perf_data, tids)
        for label, binary, rec in recs:
            report(label, binary, rec, seg, tids)
        if READER:
            agree = collections.Counter()
            for tid, ns, st in reads:
                k = state_at(seg, tid, ns)
                if k:
                    agree[(k, st)] += 1
            n = sum(agree.values()) or 1
            same = sum(v for (k, st), v in agree.items()
                       if st == {"run": "R", "rq": "R", "blkD": "D", "blkS": "S"}[k])
            print("  /proc reads at random instants: %d, the kernel's state at the read in %.3f"
                  % (n, same / n))
            print("    by (kernel, /proc): " + ", ".join(
                "%s/%s %.3f" % (k, st, v / n) for (k, st), v in agree.most_common(6)))
    finally:
        stop(perf)
        stop(w)
        stop(lab)
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
