"""Starting and stopping chokepoint-lab from the Python benches (bench/exact, bench/reference)."""
import os
import re
import signal
import subprocess
import time


def start_lab(bin_dir, log_dir, args):
    """Starts bin_dir/chokepoint-lab on a free loopback port with args; returns (process, port).
    Its output goes to a new file in log_dir. Raises RuntimeError when it does not listen in
    10 s."""
    out = open(os.path.join(log_dir, "lab.%d.out" % len(os.listdir(log_dir))), "w+")
    p = subprocess.Popen([os.path.join(bin_dir, "chokepoint-lab"), "--port", "0"] + args,
                         stdout=out, stderr=subprocess.STDOUT)
    for _ in range(200):
        out.seek(0)
        m = re.search(r"listening on [0-9.]+:(\d+)", out.read())
        if m:
            return p, int(m.group(1))
        time.sleep(0.05)
    p.kill()
    raise RuntimeError("the lab did not start: " + " ".join(args))


def stop(p, sig=signal.SIGTERM):
    """Sends sig to p if it still runs and waits for it (SIGKILL after 10 s)."""
    if p and p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
