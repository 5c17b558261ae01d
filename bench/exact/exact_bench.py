#!/usr/bin/env python3
"""The exact mode against the sampled one, side by side in one run (issue 16).

split: for each lab scenario, one `chokepoint diagnose --mode exact --record` window under load;
       the exact split is the live report's, the sampled split is `replay --mode sample` of the
       same recording (the same window, the kernel's sums set aside). Prints their L1 distance.
cost:  the lab's throughput (wrk, closed loop) with nothing attached, with diagnose --mode auto
       (the default), --mode exact and --mode sample, ROUNDS alternating rounds (the arms' order
       reversed every other round), medians and ratios, and each arm's median ratio to the same
       round's `none` (paired: the machine's drift between rounds cancels); the diagnose
       process's own CPU (its threads' schedstat) over the throughput window; the target's context switches per second; and the eBPF programs' own CPU and ns
       per run of each from bpf_stats, read over 2 s more of the same load after the throughput
       window (bpf_stats adds two clock reads to every run, so it is off while throughput is
       measured; restored after). The lab is `--scenario none --workers 2` (the epoll model, an
       event loop with no upstream: the socket-order tracer is not started); COST_LAB="..." sets
       other lab flags, e.g. "--scenario none --model threads" (a thread per connection: about
       three times the context switches). With BASE_BIN set to another build's chokepoint, its
       three modes run as arms "base-auto", "base-exact", "base-sample" in the same rounds.
       COST_MODES="auto" runs only those modes (more rounds in the same time).
       OTHER_BINS="NAME=path/to/chokepoint ..." adds more builds the same way, as arms
       "NAME-MODE" (cost and cpu).
cpu:   the CPU a request costs the lab at a fixed rate (open loop: `chokepoint load --rate
       COST_RATE`, default 20000 req/s, 8 s per arm, 16 connections), with nothing attached and
       with diagnose in each of COST_MODES, ROUNDS rounds, the arms' order reversed every other
       round: the lab's threads' CPU per request (schedstat; it includes the eBPF programs' runs
       on the lab's switches and wakeups, which run in its context) and the diagnose process's,
       and each arm's paired ratio of (lab + diagnose) CPU per request to the same round's
       `none` lab CPU per request: what a CPU-bound target would lose (a throughput ratio of
       1 / that). The closed-loop throughput (cost) moves by about 3% between rounds here; CPU
       per request at a fixed rate does not wait on the loop's latency.
switch: the same three ways for `stress-ng --switch 1` (two processes passing a pipe message back
       and forth as fast as they can: its throughput is its context switch rate). With BASE_BIN
       set to another build's chokepoint, its exact mode runs as a fourth arm ("base") in the same
       rounds; each exact arm reports its programs' ns per run and per host context switch.
edges: the wait-for graph's cost (issue 15): the lab's pipeline (--handoff semaphore, epoll,
       --work-us 20: every request is two hand-offs between target threads, about 50,000 context
       switches a second under wrk -t1 -c16) with nothing attached, with the exact mode's
       programs without the edge count and with it (chokepoint-bench-edges PID SECONDS off|on,
       which reads the maps every 100 ms as the sampler does), ROUNDS rounds of 5 s per arm;
       bpf_stats of the sched_waking program (which holds the edge count) and of all of them.
       Not part of "all".
programs: the exact mode's programs' own cost per request, from bpf_stats, this build's beside
       another's (BASE_BIN: that build's chokepoint; its chokepoint-bench-edges beside it): the lab
       under a fixed-rate load (`chokepoint load --rate COST_RATE -c 16`, COST_LAB, default the
       pipeline: --handoff semaphore --model epoll --work-us 20), the programs attached by
       chokepoint-bench-edges (reads every 100 ms as the sampler does) for 4 s per arm, ROUNDS
       rounds, the arms' order reversed every other round; each program's ns per run and runs per
       request (medians), and their product summed: the programs' microseconds per request
       (bpf_stats' own two clock reads per run included), and the lab's CPU per request in the
       same windows (schedstat). Finer than `cpu`: a program's ns per run moves by a few percent
       between rounds where the lab's CPU per request moves by 5. PROGRAM_BUDGETS="5000 0" runs
       this build once per budget (blocks per CPU per second accounted in full, the rest thinned
       by length; 0: every one). Not part of "all".
hooks: the file-call hooks' cost to the system calls of a process outside the target
       (chokepoint-bench-syscalls: best of 7 loops, ns per getppid and per 1-byte pwrite to a
       regular file), ROUNDS alternating rounds of: nothing attached; `diagnose --mode auto` on a
       sleeping process (fentry/fexit on the file calls where the kernel accepts BPF trampolines,
       else no file-call hook); `diagnose --mode exact` (fentry, else raw_syscalls
       sys_enter/sys_exit); and bpftrace on the 15 file calls' own tracepoints
       (syscalls:sys_enter_write & co., the per-syscall tracepoints; tracefs is mounted for it if
       nobody has, and unmounted after). Prints each diagnose arm's file-call hook (its sources
       line). Not part of "all".

Usage: bench/exact/exact_bench.py [BUILD_DIR] [split|cost|cpu|switch|all|edges|programs|hooks]
       [ROUNDS]
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench", "lab"))
import lab_process  # noqa: E402
from lab_process import stop  # noqa: E402
BUILD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
WHAT = sys.argv[2] if len(sys.argv) > 2 else "all"
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
BIN = os.path.join(BUILD, "bin")
COST_LAB = os.environ.get("COST_LAB", "--scenario none --workers 2").split()
# The cost bench's diagnose modes (with BASE_BIN, each for both builds).
COST_MODES = os.environ.get("COST_MODES", "auto exact sample").split()
TMP = tempfile.mkdtemp(prefix="cp-exact-bench.")


def start_lab(args):
    return lab_process.start_lab(BIN, TMP, args)


def wrk(port, seconds, path="/", extra=()):
    return subprocess.Popen(["wrk", "-t1", "-c16", "-d%ds" % seconds, "--timeout", "10s"] +
                            list(extra) + ["http://127.0.0.1:%d%s" % (port, path)],
                            stdout=subprocess.PIPE, text=True)


def rps(w):
    out = w.communicate()[0]
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    return float(m.group(1)) if m else 0.0


def l1(a, b):
    return sum(abs(a.get(k, 0) - b.get(k, 0)) for k in set(a) | set(b))


SCENARIOS = [
    ("cpu", ["--scenario", "cpu"], "closed", False),
    ("lock", ["--scenario", "lock"], "keys", False),
    ("disk", ["--scenario", "disk"], "closed", False),
    ("log", ["--scenario", "log"], "closed", False),
    ("upstream", ["--scenario", "upstream"], "closed", True),
    ("serial", ["--scenario", "serial"], "closed", False),
    ("none (idle)", ["--scenario", "none"], "none", False),
    ("lock (epoll)", ["--scenario", "lock", "--model", "epoll"], "keys", False),
]


def split_bench():
    print("| scenario | verdict (exact) | verdict (sampled) | L1(exact, sampled) | exact split |")
    print("|---|---|---|---:|---|")
    keys = os.path.join(ROOT, "bench/lab/keys_random.lua")
    for name, args, load, upstream in SCENARIOS:
        up = None
        try:
            if upstream:
                up, up_port = start_lab(["--role", "upstream", "--delay-ms", "5"])
                args = args + ["--upstream", "127.0.0.1:%d" % up_port]
            lab, port = start_lab(args)
            w = None
            if load != "none":
                w = wrk(port, 6, extra=(["-s", keys] if load == "keys" else []))
            time.sleep(1)
            rec = os.path.join(TMP, "split.chokepoint")
            d = subprocess.run([os.path.join(BIN, "chokepoint"), "diagnose", "--pid", str(lab.pid),
                                "--duration", "3s", "--no-stacks", "--mode", "exact", "--json",
                                "--record", rec], capture_output=True, text=True, timeout=60)
            if w:
                w.kill()
                w.wait()
            exact = json.loads(d.stdout)
            r = subprocess.run([os.path.join(BIN, "chokepoint"), "replay", rec, "--mode", "sample",
                                "--json"], capture_output=True, text=True, timeout=60)
            sampled = json.loads(r.stdout)
            a, b = exact["time_split"], sampled["time_split"]
            shown = " ".join("%s %.2f" % (k, v) for k, v in sorted(a.items(), key=lambda x: -x[1])
                             if v >= 0.01)
            print("| %s | %s | %s | %.3f | %s |" % (name, exact["verdict"], sampled["verdict"],
                                                    l1(a, b), shown))
            stop(lab)
        finally:
            stop(up)


def over_threads(pid, name, value):
    """The sum of value(text) over the files /proc/PID/task/TID/<name> of process pid's threads
    (a thread that ends between the listing and its read is left out); None when pid is gone."""
    total = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return None
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/%s" % (pid, tid, name)) as f:
                total += value(f.read())
        except (OSError, ValueError, IndexError):
            pass
    return total


def target_switches(pid):
    return over_threads(pid, "status", lambda text: sum(
        int(line.split()[1]) for line in text.splitlines()
        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")))) or 0


# The state accounting's programs and the socket-order tracer's (an event loop with upstreams).
WATCHED = ("stateacct", "sockorder")


def bpf_programs(prefix="stateacct"):
    """{name: (run_time_ns, run_cnt)} of the programs whose names start with prefix (a string or
    a tuple of them), from bpf_stats."""
    out = subprocess.run(["bpftool", "prog", "show", "--json"], capture_output=True,
                         text=True).stdout
    progs = {}
    for p in json.loads(out or "[]"):
        if p.get("name", "").startswith(prefix):
            t, c = progs.get(p["name"], (0, 0))
            progs[p["name"]] = (t + p.get("run_time_ns", 0), c + p.get("run_cnt", 0))
    return progs


def bpf_runtime_ns(prefix="stateacct"):
    return sum(t for t, _ in bpf_programs(prefix).values())


def process_cpu_s(pid):
    """The CPU seconds process pid's threads have run, from their schedstat (ns; /proc/PID/stat's
    clock ticks are 10 ms, 0.2% of a 5 s window); None when it is gone."""
    ns = over_threads(pid, "schedstat", lambda text: int(text.split()[0]))
    return None if ns is None else ns / 1e9


def host_switches():
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("ctxt "):
                return int(line.split()[1])
    return 0


def diagnose_arms():
    """arm -> (chokepoint binary, --mode) for COST_MODES; BASE_BIN adds another build's modes as
    "base-*"."""
    binaries = {mode: (os.path.join(BIN, "chokepoint"), mode) for mode in COST_MODES}
    # BASE_BIN is the build "base"; OTHER_BINS="NAME=path/to/chokepoint ..." more builds; each
    # build's modes are arms "NAME-MODE".
    builds = [("base", os.environ["BASE_BIN"])] if os.environ.get("BASE_BIN") else []
    builds += [tuple(b.split("=", 1)) for b in os.environ.get("OTHER_BINS", "").split()]
    for name, path in builds:
        for mode in COST_MODES:
            binaries[name + "-" + mode] = (path, mode)
    return binaries


def start_diagnose(binaries, arm, pid, seconds):
    """`diagnose` of arm's build and mode on pid for seconds, or None for the arm "none"."""
    if arm == "none":
        return None
    return subprocess.Popen([binaries[arm][0], "diagnose", "--pid", str(pid), "--duration",
                             "%ds" % seconds, "--no-stacks", "--mode", binaries[arm][1], "--json"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def cost_bench():
    lab, port = start_lab(COST_LAB)
    binaries = diagnose_arms()
    arms = ("none",) + tuple(binaries)
    traced = tuple(a for a in binaries if binaries[a][1] != "sample")
    results = {a: [] for a in arms}
    switches = []
    bpf_share = {a: [] for a in traced}
    own_share = {a: [] for a in binaries}  # diagnose's own CPU, share of one core
    per_prog = {a: {} for a in traced}  # program -> [ns per run]
    old_stats = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
    try:
        for r in range(ROUNDS):
            # The arms' order is reversed every other round, so a drift of the machine within a
            # round does not always favour the same arm.
            for mode in (arms if r % 2 == 0 else arms[::-1]):
                diag = start_diagnose(binaries, mode, lab.pid, 10)
                if diag:
                    time.sleep(1)
                cs0, t0 = target_switches(lab.pid), time.monotonic()
                own0 = process_cpu_s(diag.pid) if diag else None
                got = rps(wrk(port, 5))
                t1 = time.monotonic()
                own1 = process_cpu_s(diag.pid) if diag else None
                if own0 is not None and own1 is not None:
                    own_share[mode].append((own1 - own0) / (t1 - t0))
                if mode == "none":
                    switches.append((target_switches(lab.pid) - cs0) / (t1 - t0))
                if mode in traced:
                    # bpf_stats adds two clock reads to every program run: on only after the
                    # throughput window, for 2 s more of the same load.
                    open("/proc/sys/kernel/bpf_stats_enabled", "w").write("1")
                    p0 = bpf_programs(WATCHED)
                    t0 = time.monotonic()
                    rps(wrk(port, 2))
                    t1 = time.monotonic()
                    p1 = bpf_programs(WATCHED)
                    open("/proc/sys/kernel/bpf_stats_enabled", "w").write(old_stats)
                    bpf_share[mode].append(
                        sum(t for t, _ in p1.values()) - sum(t for t, _ in p0.values()))
                    bpf_share[mode][-1] /= (t1 - t0) * 1e9
                    for name, (t, c) in p1.items():
                        t_0, c_0 = p0.get(name, (0, 0))
                        if c > c_0:
                            per_prog[mode].setdefault(name, []).append((t - t_0) / (c - c_0))
                results[mode].append(got)
                if diag:
                    diag.wait(30)
            print("round %d: %s; %.0f switches/s; BPF programs %s of one core" % (
                r + 1, ", ".join("%s %.0f req/s" % (a, results[a][-1]) for a in arms),
                switches[-1], ", ".join("%s %.2f%%" % (a, bpf_share[a][-1] * 100)
                                        for a in traced)))
    finally:
        open("/proc/sys/kernel/bpf_stats_enabled", "w").write(old_stats)
        stop(lab)
    m = {k: statistics.median(v) for k, v in results.items()}
    print("medians: none %.0f req/s; %s; target %.0f context switches/s" % (
        m["none"], "; ".join("%s %.0f (ratio %.4f, %+.2f%%)" % (
            a, m[a], m[a] / m["none"], (m[a] / m["none"] - 1) * 100) for a in arms[1:]),
        statistics.median(switches)))
    # Each round's arm against that round's `none` (the machine's drift between rounds cancels),
    # the median of those ratios and their quartiles.
    for a in arms[1:]:
        ratios = sorted(x / n for x, n in zip(results[a], results["none"]) if n > 0)
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
        print("%s: paired ratio to none, median %.4f (%+.2f%%), quartiles %.4f-%.4f, %d rounds" % (
            a, statistics.median(ratios), (statistics.median(ratios) - 1) * 100, q[0], q[2],
            len(ratios)))
    for a in binaries:
        if own_share[a]:
            print("%s: the diagnose process %.2f%% of one core (its threads' schedstat, median)" % (
                a, statistics.median(own_share[a]) * 100))
    for a in traced:
        print("%s: BPF programs %.2f%% of one core (bpf_stats, median); ns per run: %s" % (
            a, statistics.median(bpf_share[a]) * 100,
            ", ".join("%s %.0f" % (n, statistics.median(v))
                      for n, v in sorted(per_prog[a].items()))))


def load_requests(proc):
    """The requests a `chokepoint load --json` run completed (0 when it failed)."""
    out = proc.communicate()[0]
    try:
        return int(json.loads(out)["requests"])
    except (ValueError, KeyError, TypeError):
        return 0


def cpu_bench(seconds=8):
    lab, port = start_lab(COST_LAB)
    rate = os.environ.get("COST_RATE", "20000")
    binaries = diagnose_arms()
    arms = ("none",) + tuple(binaries)
    lab_us = {a: [] for a in arms}  # the lab's CPU per request, us
    own_us = {a: [] for a in arms}  # the diagnose process's CPU per request, us
    switches = []
    try:
        for r in range(ROUNDS):
            for arm in (arms if r % 2 == 0 else arms[::-1]):
                diag = start_diagnose(binaries, arm, lab.pid, seconds + 4)
                if diag:
                    time.sleep(1.5)
                load = subprocess.Popen(
                    [os.path.join(BIN, "chokepoint"), "load", "--rate", rate, "-c", "16",
                     "--warmup", "1s", "-d", "%ds" % seconds, "--json",
                     "http://127.0.0.1:%d/" % port],
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                time.sleep(1)  # the warmup: its requests are not counted
                cs0, lab0 = target_switches(lab.pid), process_cpu_s(lab.pid)
                own0 = process_cpu_s(diag.pid) if diag else 0.0
                t0 = time.monotonic()
                n = load_requests(load)
                t1 = time.monotonic()
                lab1 = process_cpu_s(lab.pid)
                own1 = process_cpu_s(diag.pid) if diag else 0.0
                if n <= 0 or lab0 is None or lab1 is None or own0 is None or own1 is None:
                    raise RuntimeError("a round of the cpu bench lost its load or a process")
                # The load's measured window is `seconds` of the t0..t1 span (it ends a little
                # after): CPU is scaled to it.
                scale = seconds / (t1 - t0)
                lab_us[arm].append((lab1 - lab0) * scale / n * 1e6)
                own_us[arm].append((own1 - own0) * scale / n * 1e6)
                if arm == "none":
                    switches.append((target_switches(lab.pid) - cs0) / (t1 - t0))
                if diag:
                    diag.wait(30)
            print("round %d: lab CPU per request %s; %.0f target switches/s" % (
                r + 1, ", ".join("%s %.2f us (+ diagnose %.2f)" % (a, lab_us[a][-1], own_us[a][-1])
                                 for a in arms), switches[-1]), flush=True)
    finally:
        stop(lab)
    print("medians at %s req/s: target %.0f context switches/s" % (
        rate, statistics.median(switches)))
    for a in arms:
        print("%s: lab %.3f us a request, diagnose %.3f" % (
            a, statistics.median(lab_us[a]), statistics.median(own_us[a])))
    for a in arms[1:]:
        ratios = sorted((x + o) / n for x, o, n in zip(lab_us[a], own_us[a], lab_us["none"]))
        lab_only = sorted(x / n for x, n in zip(lab_us[a], lab_us["none"]))
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
        print("%s: (lab + diagnose) CPU per request to none's, paired median %.4f (%+.2f%%), "
              "quartiles %.4f-%.4f; the lab's alone %.4f; a CPU-bound target's throughput "
              "%.4f of none's, %d rounds" % (
                  a, statistics.median(ratios), (statistics.median(ratios) - 1) * 100, q[0],
                  q[2], statistics.median(lab_only), 1 / statistics.median(ratios), len(ratios)))


def switch_bench():
    # BASE_BIN: another build's chokepoint (e.g. main's) measured as a fourth arm, "base", in the
    # same rounds, so the two programs' costs are compared side by side.
    base = os.environ.get("BASE_BIN")
    arms = ["none", "exact"] + (["base"] if base else []) + ["sample"]
    results = {a: [] for a in arms}
    bpf_share = {a: [] for a in arms if a in ("exact", "base")}
    per_switch = {a: [] for a in bpf_share}  # programs' ns per host context switch
    per_run = {a: {} for a in bpf_share}  # program -> [ns per run]
    old_stats = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
    try:
        for r in range(ROUNDS):
            for mode in arms:
                s = subprocess.Popen(["stress-ng", "--switch", "1", "-t", "6", "--metrics-brief"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                time.sleep(0.3)
                diag = None
                if mode != "none":
                    traced = mode in bpf_share
                    if traced:
                        open("/proc/sys/kernel/bpf_stats_enabled", "w").write("1")
                    binary = base if mode == "base" else os.path.join(BIN, "chokepoint")
                    diag = subprocess.Popen(
                        [binary, "diagnose", "--pid", str(s.pid), "--children", "--duration",
                         "5s", "--no-stacks", "--mode", "sample" if mode == "sample" else "exact",
                         "--json"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    if traced:
                        time.sleep(1)
                        p0, c0, t0 = bpf_programs(), host_switches(), time.monotonic()
                        time.sleep(3)
                        p1, c1, t1 = bpf_programs(), host_switches(), time.monotonic()
                        ns = sum(t for t, _ in p1.values()) - sum(t for t, _ in p0.values())
                        bpf_share[mode].append(ns / ((t1 - t0) * 1e9))
                        per_switch[mode].append(ns / max(1, c1 - c0))
                        for name, (t, c) in p1.items():
                            t_0, c_0 = p0.get(name, (0, 0))
                            if c > c_0:
                                per_run[mode].setdefault(name, []).append((t - t_0) / (c - c_0))
                out = s.communicate()[0]
                if diag:
                    diag.wait(30)
                open("/proc/sys/kernel/bpf_stats_enabled", "w").write(old_stats)
                m = re.search(r"switch\s+\d+\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+\s+([0-9.]+)", out)
                results[mode].append(float(m.group(1)) if m else 0.0)
            print("round %d: " % (r + 1) + ", ".join(
                "%s %.0f switch ops/s" % (a, results[a][-1]) for a in arms) + "; " + ", ".join(
                "%s programs %.2f%% of one core, %.0f ns per host switch"
                % (a, bpf_share[a][-1] * 100, per_switch[a][-1]) for a in bpf_share))
    finally:
        open("/proc/sys/kernel/bpf_stats_enabled", "w").write(old_stats)
    m = {k: statistics.median(v) for k, v in results.items()}
    print("medians: none %.0f switch ops/s; " % m["none"] + "; ".join(
        "%s %.0f (ratio %.4f, %+.2f%%)" % (a, m[a], m[a] / m["none"], (m[a] / m["none"] - 1) * 100)
        for a in arms[1:]))
    for a in bpf_share:
        print("%s: BPF programs %.2f%% of one core, %.0f ns per host context switch (bpf_stats); "
              "ns per run: %s" % (a, statistics.median(bpf_share[a]) * 100,
                                  statistics.median(per_switch[a]),
                                  ", ".join("%s %.0f" % (n, statistics.median(v))
                                            for n, v in sorted(per_run[a].items()))))


def edge_bench(seconds=5):
    lab, port = start_lab(["--scenario", "pipeline", "--handoff", "semaphore", "--model", "epoll",
                           "--work-us", "20"])
    arms = ("none", "off", "on")
    rps_of = {a: [] for a in arms}
    waking = {a: [] for a in arms[1:]}
    total = {a: [] for a in arms[1:]}
    switches = []
    last_on = ""
    old_stats = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
    try:
        for r in range(ROUNDS):
            for arm in arms:
                tracer = None
                if arm != "none":
                    open("/proc/sys/kernel/bpf_stats_enabled", "w").write("1")
                    tracer = subprocess.Popen(
                        [os.path.join(BIN, "chokepoint-bench-edges"), str(lab.pid),
                         str(seconds + 2), arm], stdout=subprocess.PIPE, text=True)
                    time.sleep(1)
                b0 = (bpf_runtime_ns("stateacct_waki"), bpf_runtime_ns())
                cs0, t0 = target_switches(lab.pid), time.monotonic()
                rps_of[arm].append(rps(wrk(port, seconds)))
                t1 = time.monotonic()
                if arm == "none":
                    switches.append((target_switches(lab.pid) - cs0) / (t1 - t0))
                else:
                    waking[arm].append((bpf_runtime_ns("stateacct_waki") - b0[0]) /
                                       ((t1 - t0) * 1e9))
                    total[arm].append((bpf_runtime_ns() - b0[1]) / ((t1 - t0) * 1e9))
                    out = tracer.communicate(timeout=30)[0].strip()
                    if arm == "on":
                        last_on = out
                    open("/proc/sys/kernel/bpf_stats_enabled", "w").write(old_stats)
            print("round %d: none %.0f req/s, edges off %.0f, edges on %.0f; %.0f switches/s; "
                  "sched_waking %.2f%% / %.2f%% of one core (off / on)"
                  % (r + 1, rps_of["none"][-1], rps_of["off"][-1], rps_of["on"][-1],
                     switches[-1], waking["off"][-1] * 100, waking["on"][-1] * 100), flush=True)
    finally:
        open("/proc/sys/kernel/bpf_stats_enabled", "w").write(old_stats)
        stop(lab)
    m = {a: statistics.median(v) for a, v in rps_of.items()}
    print("medians: none %.0f req/s; edges off %.0f; edges on %.0f (on/off %.4f, %+.2f%%); "
          "target %.0f context switches/s" % (m["none"], m["off"], m["on"], m["on"] / m["off"],
                                              (m["on"] / m["off"] - 1) * 100,
                                              statistics.median(switches)))
    print("bpf_stats (median, %% of one core): sched_waking off %.3f%%, on %.3f%%; all stateacct "
          "programs off %.3f%%, on %.3f%%" % (statistics.median(waking["off"]) * 100,
                                             statistics.median(waking["on"]) * 100,
                                             statistics.median(total["off"]) * 100,
                                             statistics.median(total["on"]) * 100))
    print("last 'on' tracer: " + last_on)


def program_bench(seconds=4):
    lab_args = COST_LAB if "COST_LAB" in os.environ else [
        "--scenario", "pipeline", "--handoff", "semaphore", "--model", "epoll", "--work-us", "20"]
    lab, port = start_lab(lab_args)
    rate = float(os.environ.get("COST_RATE", "10000"))
    # arm -> the tool's command line before PID; PROGRAM_BUDGETS="5000 0": this build once per
    # budget (blocks per CPU per second accounted in full; 0: all).
    tool = os.path.join(BIN, "chokepoint-bench-edges")
    arms = {"this": [tool]}
    if os.environ.get("PROGRAM_BUDGETS"):
        arms = {"this@" + b: [tool, b] for b in os.environ["PROGRAM_BUDGETS"].split()}
    if os.environ.get("BASE_BIN"):
        arms["base"] = [os.path.join(os.path.dirname(os.environ["BASE_BIN"]),
                                     "chokepoint-bench-edges")]
    names = tuple(arms)
    per_run = {a: {} for a in names}  # program -> [(ns per run, runs per request)]
    lab_us = {a: [] for a in names}
    load = subprocess.Popen(
        [os.path.join(BIN, "chokepoint"), "load", "--rate", "%d" % rate, "-c", "16", "-d",
         "%ds" % (ROUNDS * len(names) * (seconds + 4) + 10), "http://127.0.0.1:%d/" % port],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    old_stats = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
    try:
        time.sleep(2)
        for r in range(ROUNDS):
            for arm in (names if r % 2 == 0 else names[::-1]):
                cmd = arms[arm]
                tracer = subprocess.Popen(
                    [cmd[0], str(lab.pid), str(seconds + 3), "on"] + cmd[1:],
                    stdout=subprocess.DEVNULL)
                time.sleep(1.5)
                open("/proc/sys/kernel/bpf_stats_enabled", "w").write("1")
                p0, c0, t0 = bpf_programs(), process_cpu_s(lab.pid), time.monotonic()
                time.sleep(seconds)
                p1, c1, t1 = bpf_programs(), process_cpu_s(lab.pid), time.monotonic()
                open("/proc/sys/kernel/bpf_stats_enabled", "w").write(old_stats)
                requests = rate * (t1 - t0)
                lab_us[arm].append((c1 - c0) / requests * 1e6)
                for name, (t, c) in p1.items():
                    t_0, c_0 = p0.get(name, (0, 0))
                    if c > c_0:
                        per_run[arm].setdefault(name, []).append(
                            ((t - t_0) / (c - c_0), (c - c_0) / requests))
                tracer.wait(30)
            print("round %d: %s" % (r + 1, "; ".join(
                "%s %s" % (a, ", ".join("%s %.0f ns" % (n, v[-1][0])
                                        for n, v in sorted(per_run[a].items())
                                        if n in ("stateacct_switch", "stateacct_waking")))
                for a in names)), flush=True)
    finally:
        open("/proc/sys/kernel/bpf_stats_enabled", "w").write(old_stats)
        load.kill()
        load.wait()
        stop(lab)
    for a in names:
        total_us = 0.0
        parts = []
        for name, v in sorted(per_run[a].items()):
            ns = statistics.median(x[0] for x in v)
            runs = statistics.median(x[1] for x in v)
            total_us += ns * runs / 1000
            parts.append("%s %.0f ns x %.2f a request" % (name, ns, runs))
        print("%s: programs %.2f us a request (%s); the lab %.2f us a request (median of %d)" % (
            a, total_us, "; ".join(parts), statistics.median(lab_us[a]), len(lab_us[a])))


FILE_CALLS = ["read", "write", "pread64", "pwrite64", "readv", "writev", "fsync", "fdatasync",
              "ftruncate", "sync_file_range", "fallocate", "preadv", "pwritev", "preadv2",
              "pwritev2"]


def syscall_ns(what, n):
    out = subprocess.run([os.path.join(BIN, "chokepoint-bench-syscalls"), what, str(n)],
                         capture_output=True, text=True, check=True).stdout
    return float(out.split()[1])


def hook_bench():
    sleeper = subprocess.Popen(["sleep", "3600"])
    mounted = False
    if not os.path.exists("/sys/kernel/tracing/events/syscalls"):
        subprocess.run(["mount", "-t", "tracefs", "tracefs", "/sys/kernel/tracing"], check=True)
        mounted = True
    # The per-syscall tracepoints, with a program that does what the others' first test does: is
    # this the target?
    probes = ",".join("tracepoint:syscalls:sys_enter_%s,tracepoint:syscalls:sys_exit_%s" % (c, c)
                      for c in FILE_CALLS)
    script = "%s /pid == %d/ { @n = count(); }" % (probes, sleeper.pid)
    arms = ["none", "auto", "exact", "tracepoints"]
    ns = {a: {"getppid": [], "pwrite": []} for a in arms}
    hooks = {}
    try:
        for r in range(ROUNDS):
            for arm in arms:
                tracer = None
                if arm in ("auto", "exact"):
                    tracer = subprocess.Popen(
                        [os.path.join(BIN, "chokepoint"), "diagnose", "--pid", str(sleeper.pid),
                         "--duration", "30s", "--no-stacks", "--no-probes", "--mode", arm,
                         "--json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                    time.sleep(2)
                elif arm == "tracepoints":
                    tracer = subprocess.Popen(["bpftrace", "-e", script],
                                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                              text=True)
                    # bpftrace prints "Attaching N probes..." once they are attached.
                    tracer.stdout.readline()
                    time.sleep(1)
                ns[arm]["getppid"].append(syscall_ns("getppid", 500000))
                ns[arm]["pwrite"].append(syscall_ns("pwrite", 200000))
                if tracer:
                    tracer.send_signal(2)  # SIGINT: diagnose ends its window early
                    out = tracer.communicate(timeout=60)[0]
                    if arm != "tracepoints":
                        try:
                            detail = json.loads(out)["sources"]["time split"]["detail"]
                            m = re.search(r"file system calls' on-CPU time .*$", detail)
                            hooks[arm] = m.group(0) if m else detail
                        except (ValueError, KeyError):
                            hooks[arm] = "(no report)"
            print("round %d: " % (r + 1) + "; ".join(
                "%s getppid %.0f ns, pwrite %.0f ns" % (a, ns[a]["getppid"][-1],
                                                       ns[a]["pwrite"][-1]) for a in arms),
                  flush=True)
    finally:
        stop(sleeper)
        if mounted:
            subprocess.run(["umount", "/sys/kernel/tracing"])
    print("| arm | getppid ns (median) | vs none | pwrite ns (median) | vs none |")
    print("|---|---:|---:|---:|---:|")
    base = {k: statistics.median(v) for k, v in ns["none"].items()}
    for a in arms:
        g, w = statistics.median(ns[a]["getppid"]), statistics.median(ns[a]["pwrite"])
        print("| %s | %.0f | %+.0f | %.0f | %+.0f |" % (a, g, g - base["getppid"], w,
                                                      w - base["pwrite"]))
    for a, h in hooks.items():
        print("%s: %s" % (a, h))


if __name__ == "__main__":
    try:
        if WHAT in ("split", "all"):
            split_bench()
        if WHAT in ("cost", "all"):
            cost_bench()
        if WHAT == "cpu":
            cpu_bench()
        if WHAT in ("switch", "all"):
            switch_bench()
        if WHAT == "edges":
            edge_bench()
        if WHAT == "programs":
            program_bench()
        if WHAT == "hooks":
            hook_bench()
    finally:
        subprocess.run(["rm", "-rf", TMP])
