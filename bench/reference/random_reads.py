#!/usr/bin/env python3
"""How often /proc shows the disk lab's workers in a file call, read at random instants, against
the kernel's timing of the same (docs/benchmarks.md, "The sampled split's ratio estimator").

Starts chokepoint-lab --scenario disk under wrk (-c16), then at once: a reader of each lab-worker's
/proc/PID/task/TID/stat and syscall at Poisson instants (mean 30 ms, 6 s) in this process, and a
5 s `chokepoint diagnose --mode exact`. Prints, as shares of the off-CPU reads or time
(a condvar wait or a file call):
  random reads   the reader's reads in fdatasync or write (by state and system call)
  kernel         the exact split's disk / (disk + idle) of the workers
and both by wait: the reads by (state, system call), the kernel's time by the exact split's waits
(shares of the workers' thread time).
Usage: bench/reference/random_reads.py [BUILD_DIR] [ROUNDS]   (root)
"""
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench", "lab"))
import lab_process  # noqa: E402
from lab_process import stop  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 1
BIN = os.path.join(BUILD, "bin")
FILE_CALLS = {"75", "1"}  # fdatasync, write (x86_64)


def read_at_random(pid, seconds, out):
    task = "/proc/%d/task" % pid
    tids = [t for t in os.listdir(task)
            if open("%s/%s/comm" % (task, t)).read().strip() == "lab-worker"]
    combos = {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(random.expovariate(1 / 0.03))
        for t in tids:
            try:
                st = open("%s/%s/stat" % (task, t)).read()
                sc = open("%s/%s/syscall" % (task, t)).read().split()[0]
            except OSError:
                continue
            key = (st[st.rindex(")") + 2], sc)
            combos[key] = combos.get(key, 0) + 1
    out.update(combos)


def main():
    tmp = tempfile.mkdtemp(prefix="cp-random-reads.")
    try:
        for _ in range(ROUNDS):
            lab, port = lab_process.start_lab(BIN, tmp, ["--scenario", "disk"])
            w = subprocess.Popen(["wrk", "-t1", "-c16", "-d12s", "http://127.0.0.1:%d/" % port],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(1)
                combos = {}
                reader = threading.Thread(target=read_at_random, args=(lab.pid, 6, combos))
                reader.start()
                d = subprocess.run([os.path.join(BIN, "chokepoint"), "diagnose", "--pid",
                                    str(lab.pid), "--duration", "5s", "--no-stacks", "--mode",
                                    "exact", "--json"], capture_output=True, text=True,
                                   timeout=120)
                reader.join()
            finally:
                stop(w)
                stop(lab, signal.SIGTERM)
            off = {k: n for k, n in combos.items() if k[0] != "R" and k[1] != "running"}
            in_file = sum(n for k, n in off.items() if k[1] in FILE_CALLS)
            tot, waits = {}, {}
            for t in json.loads(d.stdout)["threads"]:
                if t["comm"] == "lab-worker":
                    for k, v in t["time_split"].items():
                        tot[k] = tot.get(k, 0) + v * t["observed_s"]
                    for k, v in t.get("waits_s", {}).items():
                        k = " ".join(k.split()[:2])  # "disk: fdatasync", "idle: condvar"
                        waits[k] = waits.get(k, 0) + v
            thread_s = sum(tot.values())
            top = sorted(combos.items(), key=lambda x: -x[1])[:8]
            print("random reads %.3f (%d off-CPU reads)  kernel %.3f\n  reads by (state, call): %s"
                  "\n  kernel's time by wait: %s" % (
                      in_file / max(1, sum(off.values())), sum(off.values()),
                      tot["disk"] / (tot["disk"] + tot["idle"]),
                      ", ".join("%s %s %.1f%%" % (k[0], k[1], 100 * n / sum(combos.values()))
                                for k, n in top),
                      ", ".join("%s %.1f%%" % (k, 100 * v / thread_s) for k, v in
                                sorted(waits.items(), key=lambda x: -x[1])) +
                      ", on_cpu + cpu_wait %.1f%%" % (
                          100 * (tot["on_cpu"] + tot["cpu_wait"]) / thread_s)), flush=True)
    finally:
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
