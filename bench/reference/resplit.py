#!/usr/bin/env python3
"""The sampled split of windows kept by compare.py (SAVE_DIR) against their references, for
several builds side by side: the same recordings, so the builds' estimators are all that differ.

Usage: bench/reference/resplit.py SAVE_DIR BIN [BIN...] [--detail]
  Prints, for each kept window, the L1 distance of each BIN's `replay --mode sample` from the
  wait-for and the direct reference, then per scenario the median and range over the windows.
  --detail prints each thread's reference split beside each BIN's sampled one.
"""
import glob
import json
import os
import statistics
import subprocess
import sys

CLASSES = ["on_cpu", "cpu_wait", "disk", "network", "lock", "memory", "sleep", "idle"]


def l1(a, b):
    return sum(abs(a.get(k, 0) - b.get(k, 0)) for k in CLASSES)


def fmt(split):
    return " ".join("%s %.2f" % (k, v) for k, v in sorted(split.items(), key=lambda x: -x[1])
                    if v >= 0.01)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    detail = "--detail" in sys.argv
    save, bins = args[0], args[1:]
    by_scenario = {}
    for ref_path in sorted(glob.glob(os.path.join(save, "*.ref.json"))):
        ref = json.load(open(ref_path))
        rec = ref_path[:-len(".ref.json")] + ".chokepoint"
        row = []
        outs = []
        for b in bins:
            r = subprocess.run([b, "replay", rec, "--mode", "sample", "--json"],
                               capture_output=True, text=True, timeout=120, check=True)
            out = json.loads(r.stdout)
            outs.append(out)
            row.append((l1(ref["ref"], out["time_split"]), l1(ref["ref_direct"],
                                                                out["time_split"])))
        by_scenario.setdefault(ref["scenario"], []).append(row)
        print("%-20s %s  %s" % (ref["scenario"], os.path.basename(rec),
                                "  ".join("%.3f/%.3f" % x for x in row)))
        if detail:
            print("  ref:     %s" % fmt(ref["ref"]))
            for b, out in zip(bins, outs):
                print("  %-8s %s" % (os.path.basename(os.path.dirname(os.path.dirname(b)))[:8],
                                     fmt(out["time_split"])))
            for tid, c in sorted(ref["per_thread"].items(), key=lambda x: int(x[0])):
                tot = sum(c.values()) or 1
                print("  tid %s ref: %s" % (tid, fmt({k: v / tot for k, v in c.items()})))
                for out in outs:
                    t = [t for t in out["threads"] if str(t["tid"]) == tid]
                    if t:
                        print("      sample: %s" % fmt(t[0]["time_split"]))
    print("\nmedian [min, max] of L1 (wait-for ref), per build in the order given:")
    for sc, rows in by_scenario.items():
        cols = []
        for i in range(len(bins)):
            v = [r[i][0] for r in rows]
            cols.append("%.3f [%.3f, %.3f]" % (statistics.median(v), min(v), max(v)))
        print("%-20s n=%d  %s" % (sc, len(rows), "   ".join(cols)))


if __name__ == "__main__":
    main()
