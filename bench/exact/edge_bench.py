#!/usr/bin/env python3
"""The wait-for graph's cost (issue 15): the target's throughput with the exact mode's eBPF
programs attached without the edge count and with it, side by side, plus nothing attached.

Target: the lab's pipeline scenario with --handoff semaphore (every request is two hand-offs
between threads, so every wakeup is a target wakeup that counts an edge), with --work-us small
enough that the target switches about 50,000 times a second under `wrk -t1 -c16`. ROUNDS rounds
of the three arms in turn (none, edges off, edges on), SECONDS of wrk each; medians and ratios;
the target's context switches per second; and from bpf_stats (kernel.bpf_stats_enabled=1 during
the attached arms, restored after) the CPU of the sched_waking program, which holds the edge
count, and of all stateacct programs, per arm.

Usage: bench/exact/edge_bench.py [BUILD_DIR] [ROUNDS] [SECONDS] [WORK_US]
"""
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
SECONDS = int(sys.argv[3]) if len(sys.argv) > 3 else 5
WORK_US = sys.argv[4] if len(sys.argv) > 4 else "20"
BIN = os.path.join(BUILD, "bin")
STATS = "/proc/sys/kernel/bpf_stats_enabled"


def start_lab(args):
    p = subprocess.Popen([os.path.join(BIN, "chokepoint-lab"), "--port", "0"] + args,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = p.stdout.readline()
    m = re.search(r"listening on [0-9.]+:(\d+)", line)
    if not m:
        p.kill()
        raise RuntimeError("the lab did not start: " + line)
    return p, int(m.group(1))


def stop(p):
    if p and p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def target_switches(pid):
    n = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        n += int(line.split()[1])
        except OSError:
            pass
    return n


def bpf_runtime_ns():
    out = subprocess.run(["bpftool", "prog", "show", "--json"], capture_output=True,
                         text=True).stdout
    waking = total = 0
    for p in json.loads(out or "[]"):
        name = p.get("name", "")
        if name.startswith("stateacct"):
            total += p.get("run_time_ns", 0)
            if name.startswith("stateacct_waki"):
                waking += p.get("run_time_ns", 0)
    return waking, total


def main():
    lab, port = start_lab(["--scenario", "pipeline", "--handoff", "semaphore", "--model", "epoll",
                           "--work-us", WORK_US])
    arms = ("none", "off", "on")
    rps = {a: [] for a in arms}
    waking = {a: [] for a in arms[1:]}
    total = {a: [] for a in arms[1:]}
    switches = []
    edges_seen = ""
    old = open(STATS).read().strip()
    try:
        for r in range(ROUNDS):
            for arm in arms:
                tracer = None
                if arm != "none":
                    open(STATS, "w").write("1")
                    tracer = subprocess.Popen(
                        [os.path.join(BIN, "chokepoint-bench-edges"), str(lab.pid),
                         str(SECONDS + 2), arm], stdout=subprocess.PIPE, text=True)
                    time.sleep(1)
                b0 = bpf_runtime_ns()
                cs0, t0 = target_switches(lab.pid), time.monotonic()
                out = subprocess.run(["wrk", "-t1", "-c16", "-d%ds" % SECONDS, "--timeout", "10s",
                                      "http://127.0.0.1:%d/" % port],
                                     capture_output=True, text=True).stdout
                t1 = time.monotonic()
                m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
                rps[arm].append(float(m.group(1)) if m else 0.0)
                if arm == "none":
                    switches.append((target_switches(lab.pid) - cs0) / (t1 - t0))
                else:
                    b1 = bpf_runtime_ns()
                    waking[arm].append((b1[0] - b0[0]) / ((t1 - t0) * 1e9))
                    total[arm].append((b1[1] - b0[1]) / ((t1 - t0) * 1e9))
                    res = tracer.communicate(timeout=30)[0].strip()
                    if arm == "on":
                        edges_seen = res
                    open(STATS, "w").write(old)
            print("round %d: none %.0f req/s, edges off %.0f, edges on %.0f; %.0f switches/s; "
                  "sched_waking %.2f%% / %.2f%% of one core (off / on)"
                  % (r + 1, rps["none"][-1], rps["off"][-1], rps["on"][-1], switches[-1],
                     waking["off"][-1] * 100, waking["on"][-1] * 100), flush=True)
    finally:
        open(STATS, "w").write(old)
        stop(lab)
    med = {a: statistics.median(v) for a, v in rps.items()}
    print("medians: none %.0f req/s; edges off %.0f; edges on %.0f (on/off %.4f, %+.2f%%); "
          "target %.0f context switches/s" % (med["none"], med["off"], med["on"],
                                              med["on"] / med["off"],
                                              (med["on"] / med["off"] - 1) * 100,
                                              statistics.median(switches)))
    print("bpf_stats (median, %% of one core): sched_waking off %.3f%%, on %.3f%%; all stateacct "
          "programs off %.3f%%, on %.3f%%" % (statistics.median(waking["off"]) * 100,
                                             statistics.median(waking["on"]) * 100,
                                             statistics.median(total["off"]) * 100,
                                             statistics.median(total["on"]) * 100))
    print("last 'on' tracer: " + edges_seen)


if __name__ == "__main__":
    main()
