#!/usr/bin/env python3
"""What the full-screen view of chokepoint top costs beside --batch: both on the whole host at
1 s for DURATION seconds in one run, the view in a pseudo-terminal (read through pyte, as its
test does), --batch into /dev/null. Prints each one's CPU (percent of one core, from
/proc/PID/stat) and peak RSS (VmHWM).

Usage: bench/top/screen_vs_batch.py CHOKEPOINT [DURATION_S]   (Debian's /usr/bin/python3, pyte)
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "integration", "top"))
import top_screen_test  # noqa: E402  (its Terminal drives the view in a pty)


def cpu_s_and_peak_mib(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    hwm_kib = next(l for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM")).split()[1]
    return cpu_s, int(hwm_kib) / 1024


def main():
    chokepoint = sys.argv[1]
    duration_s = float(sys.argv[2]) if len(sys.argv) > 2 else 20
    top_screen_test.CHOKEPOINT = chokepoint
    screen = top_screen_test.Terminal(["top", "--interval", "1s"])
    batch = subprocess.Popen([chokepoint, "top", "--batch", "--interval", "1s"],
                             stdout=subprocess.DEVNULL)
    try:
        screen.pump(1.0)
        start = {p: cpu_s_and_peak_mib(p)[0] for p in (screen.proc.pid, batch.pid)}
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            screen.pump(0.2)
        for label, pid in (("full-screen", screen.proc.pid), ("--batch", batch.pid)):
            cpu_s, peak_mib = cpu_s_and_peak_mib(pid)
            print(f"{label:12} {100 * (cpu_s - start[pid]) / duration_s:5.1f}% of a core, "
                  f"peak RSS {peak_mib:.1f} MiB")
        print(screen.text().split("\n")[0])
    finally:
        screen.quit()
        batch.terminate()
        batch.wait()


if __name__ == "__main__":
    main()
