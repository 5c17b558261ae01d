#!/usr/bin/env python3
"""The exact split of one window as two builds collect it, side by side (issue 10's map reads).

For each lab scenario: start chokepoint-lab and its load (wrk, loopback), record the lab with
OLD's and NEW's `chokepoint record --mode exact --stacks off --no-probes -i 1s` at the same time
(two independent sets of eBPF programs on the same events), then replay both recordings with
NEW's `replay --json` (one model for both: only the collection differs) and print each side's
process split, verdict and the L1 distance between the two splits (shares of thread time; the
same collector run twice gives the noise floor: its own programs see the same events, but each
recording's ticks fall at different instants).

Usage: bench/exact/split_ab.py OLD_BIN NEW_BIN [SECONDS] [SCENARIO...]
  OLD_BIN/NEW_BIN: directories holding chokepoint (NEW_BIN's chokepoint-lab runs the lab).
"""
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench", "lab"))
import lab_process  # noqa: E402
from lab_process import stop  # noqa: E402

OLD, NEW = sys.argv[1], sys.argv[2]
SECONDS = int(sys.argv[3]) if len(sys.argv) > 3 else 10
ONLY = sys.argv[4:]
TMP = tempfile.mkdtemp(prefix="cp-split-ab.")
CLASSES = ["on_cpu", "cpu_wait", "disk", "network", "lock", "memory", "sleep", "idle"]
SCENARIOS = [
    ("lock", ["--scenario", "lock"]),
    ("lock (threads)", ["--scenario", "lock", "--model", "threads"]),
    ("disk", ["--scenario", "disk"]),
    ("log", ["--scenario", "log"]),
    ("serial", ["--scenario", "serial"]),
    ("pipeline", ["--scenario", "pipeline"]),
    ("pipeline (condvar)", ["--scenario", "pipeline", "--handoff", "condvar"]),
]


def l1(a, b):
    return sum(abs(a.get(k, 0) - b.get(k, 0)) for k in set(a) | set(b))


def fmt(split):
    return " ".join("%s %.3f" % (k, split.get(k, 0)) for k in CLASSES if split.get(k, 0) >= 0.005)


def main():
    print("| scenario | old verdict | new verdict | L1(old, new) | old split | new split |")
    print("|---|---|---|---:|---|---|")
    for name, args in SCENARIOS:
        if ONLY and name not in ONLY:
            continue
        lab, port = lab_process.start_lab(NEW, TMP, args)
        load = subprocess.Popen(["wrk", "-t1", "-c16", "-d%ds" % (SECONDS + 6), "--timeout", "10s",
                                 "http://127.0.0.1:%d/" % port],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2)
        recs, files = [], {}
        for side, bin_dir in (("old", OLD), ("new", NEW)):
            files[side] = os.path.join(TMP, "%s.%d.chokepoint" % (side, lab.pid))
            recs.append(subprocess.Popen(
                [os.path.join(bin_dir, "chokepoint"), "record", "--pid", str(lab.pid), "-o",
                 files[side], "--interval", "1s", "--duration", "%ds" % SECONDS, "--mode",
                 "exact", "--stacks", "off", "--no-probes"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for r in recs:
            r.wait(SECONDS + 60)
        stop(load)
        stop(lab)
        out = {}
        for side in ("old", "new"):
            j = json.loads(subprocess.run([os.path.join(NEW, "chokepoint"), "replay", files[side],
                                           "--json"], capture_output=True, text=True,
                                          timeout=120).stdout)
            out[side] = j
        o, n = out["old"], out["new"]
        print("| %s | %s | %s | %.3f | %s | %s |" % (
            name, o["verdict"], n["verdict"], l1(o["time_split"], n["time_split"]),
            fmt(o["time_split"]), fmt(n["time_split"])), flush=True)


if __name__ == "__main__":
    main()
