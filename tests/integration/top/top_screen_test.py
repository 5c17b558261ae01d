#!/usr/bin/env python3
"""chokepoint top's full-screen view, driven in a pseudo-terminal and read back through pyte (a
terminal emulator): from a recording of the lab's disk scenario the screen shows the verdict and
the lab's threads; a sort key reorders them, t collapses and expands, / filters; i, l and o open
the disks, locks and connections panels (from the disk, lock and upstream recordings; the lock
recorded in exact mode names who released it); space pauses and
the arrows step frames; a resize redraws at the new width; --no-color and NO_COLOR send no
colour; live on a process named with escape sequences, the name cannot change the screen and s
shows its stacks; live on a process with a spinning thread, P shows its on-CPU profile with the
spinning function, and q cancels a thread's profile while it runs; q exits 0.

Usage: top_screen_test.py CHOKEPOINT STACKS_TARGET RECORDING
"""
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import unittest

import pyte

CHOKEPOINT = STACKS_TARGET = RECORDING = ""  # from the command line (bench/top imports Terminal)
TIMEOUT_S = 15


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def take_terminal():
    # The child leads a new session (start_new_session); the pty becomes its terminal, so the
    # kernel sends it SIGWINCH on a resize.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    def __init__(self, args, rows=40, cols=140, env_extra=None):
        self.master, slave = os.openpty()
        set_size(slave, rows, cols)
        env = dict(os.environ, TERM="xterm-256color", LANG="C.UTF-8", LC_ALL="C.UTF-8")
        env.pop("NO_COLOR", None)
        env.update(env_extra or {})
        self.proc = subprocess.Popen([CHOKEPOINT] + args, stdin=slave, stdout=slave,
                                     stderr=slave, env=env, start_new_session=True,
                                     preexec_fn=take_terminal, close_fds=True)
        os.close(slave)
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = b""

    def pump(self, wait_s=0.05):
        while True:
            ready, _, _ = select.select([self.master], [], [], wait_s)
            if not ready:
                return
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            self.raw += data
            self.stream.feed(data)
            wait_s = 0.02

    def lines(self):
        return self.screen.display

    def text(self):
        return "\n".join(line.rstrip() for line in self.lines())

    def wait_for(self, what, predicate):
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            self.pump()
            if predicate(self.lines()):
                return
        raise AssertionError(f"timed out waiting for {what}; the screen:\n{self.text()}")

    def send(self, keys):
        os.write(self.master, keys)

    def resize(self, rows, cols):
        set_size(self.master, rows, cols)
        self.screen.resize(rows, cols)
        self.proc.send_signal(signal.SIGWINCH)

    def quit(self):
        self.send(b"q")
        try:
            code = self.proc.wait(timeout=TIMEOUT_S)
        finally:
            self.close()
        return code

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


def thread_tids(lines):
    """The tids of the thread rows on the screen, top to bottom."""
    tids = []
    for line in lines:
        m = re.match(r"^\s{8,}(\d+) ", line)
        if m:
            tids.append(int(m.group(1)))
    return tids


def colours(raw):
    """The colour parameters (30-49, 90-107) of the SGR sequences the program sent."""
    found = []
    for params in re.findall(rb"\x1b\[([0-9;]*)m", raw):
        found += [p for p in params.split(b";") if p and (30 <= int(p) <= 49 or 90 <= int(p))]
    return found


class TopScreenTest(unittest.TestCase):
    def replay(self, *extra):
        # One frame: the whole recording (about 1 s) fits in a 2 s window, so the screen stays put.
        return Terminal(["top", "--replay", RECORDING, "--interval", "2s"] + list(extra))

    def test_verdict_threads_sort_and_quit(self):
        term = self.replay()
        try:
            term.wait_for("the verdict and the threads",
                          lambda ls: any("verdict: disk (fsync)" in l for l in ls)
                          and len(thread_tids(ls)) > 5)
            text = term.text()
            self.assertIn("lab-worker", text)
            self.assertIn("disk: fdatasync", text)  # the workers' wait, named by its call
            self.assertIn("time [", text)
            self.assertTrue(any(l.lstrip().startswith("PID") and "RUNQ%" in l
                                for l in term.lines()))
            self.assertTrue(colours(term.raw), "colours by default")
            before = thread_tids(term.lines())
            self.assertNotEqual(before, sorted(before), "cpu order is not tid order here")
            term.send(b"p")  # sort by pid: threads by tid
            term.wait_for("threads sorted by tid",
                          lambda ls: len(thread_tids(ls)) > 5
                          and thread_tids(ls) == sorted(thread_tids(ls)))
            self.assertIn("sort c r d m p n: pid", term.text())
            term.send(b"t")  # collapse: processes only
            term.wait_for("threads collapsed", lambda ls: not thread_tids(ls))
            term.send(b"t")
            term.wait_for("threads shown", lambda ls: len(thread_tids(ls)) > 5)
            term.send(b"/loop\r")  # the filter keeps the process with a matching thread
            term.wait_for("the filter applied", lambda ls: "[loop]" in "\n".join(ls))
            term.send(b"\x1b")
            term.wait_for("the filter cleared", lambda ls: "[loop]" not in "\n".join(ls))
        except BaseException:
            term.close()
            raise
        self.assertEqual(term.quit(), 0)

    def test_replay_steps_frames(self):
        term = Terminal(["top", "--replay", RECORDING, "--interval", "500ms", "--no-color"])
        try:
            term.wait_for("frame 1", lambda ls: "frame 1 at" in ls[0])
            term.send(b" ")
            term.wait_for("paused", lambda ls: "PAUSED" in "\n".join(ls))
            term.send(b"\x1bOC")  # right (xterm keypad mode): next frame
            term.wait_for("frame 2", lambda ls: "frame 2 at" in ls[0])
            term.send(b"\x1bOD")  # left: back
            term.wait_for("frame 1 again", lambda ls: "frame 1 at" in ls[0])
            term.send(b"]")  # jump 10 frames: the last of two
            term.wait_for("the last frame", lambda ls: "frame 2 at" in ls[0])
            term.send(b"[")
            term.wait_for("the first frame", lambda ls: "frame 1 at" in ls[0])
            term.send(b"s")  # a recording's pids are not live: the pager says so
            term.wait_for("the pager's note",
                          lambda ls: "read from a live process" in "\n".join(ls))
            term.send(b"\x1b")
            term.wait_for("the frame again", lambda ls: "frame 1 at" in ls[0])
            term.send(b"D")  # the frame's full diagnose report in the pager
            term.wait_for("the report", lambda ls: ls[0].startswith("diagnosis of frame 1")
                          and "disk" in "\n".join(ls[1:]))
            term.send(b"q")
            term.wait_for("the frame again", lambda ls: "frame 1 at" in ls[0])
            self.assertFalse(colours(term.raw), "--no-color sends no colour")
        except BaseException:
            term.close()
            raise
        self.assertEqual(term.quit(), 0)

    def test_resize_redraws_at_the_new_width(self):
        term = Terminal(["top", "--replay", RECORDING, "--interval", "2s"],
                        env_extra={"NO_COLOR": "1"})
        try:
            term.wait_for("the first draw", lambda ls: "verdict: disk" in "\n".join(ls))
            self.assertGreater(max(len(l.rstrip()) for l in term.lines()), 100)
            term.resize(30, 60)
            term.wait_for("a redraw at 60 columns",
                          lambda ls: len(ls) == 30 and ls[0].startswith("chokepoint top")
                          and "verdict: disk" in ls[1])
            # Nothing wrapped: every line is cut at the new width, the header stays on top.
            self.assertTrue(all(len(l) == 60 for l in term.lines()))
            self.assertFalse(colours(term.raw), "NO_COLOR turns colours off")
            term.resize(40, 160)
            term.wait_for("a redraw at 160 columns",
                          lambda ls: "WAIT" in "\n".join(ls) and "verdict: disk" in ls[1])
        except BaseException:
            term.close()
            raise
        self.assertEqual(term.quit(), 0)

    def test_panels_show_disks_locks_and_connections(self):
        recordings = os.path.dirname(RECORDING)
        for recording, key, title, wanted in (
                ("lab_disk", b"i", "disks", "fdatasync /tmp/chokepoint-lab."),
                ("lab_lock", b"l", "locks", "not known (the wait-for graph needs --mode exact)"),
                # Recorded in exact mode: the wait-for graph names who released the mutex.
                ("lab_lock_v4", b"l", "locks", "passed among its 8 waiters; tid "),
                ("lab_upstream", b"o", "connections", "upstream 127.0.0.1:")):
            term = Terminal(["top", "--replay", os.path.join(recordings, recording + ".chokepoint"),
                             "--interval", "2s"])
            try:
                term.wait_for(f"{recording}'s frame", lambda ls: "verdict:" in ls[1])
                term.send(key)
                term.wait_for(f"the {title} panel",
                              lambda ls: any(l.startswith(title + " (") for l in ls)
                              and wanted in "\n".join(ls))
                term.send(key)  # the same key closes it
                term.wait_for("the rows again", lambda ls: any("RUNQ%" in l for l in ls))
            except BaseException:
                term.close()
                raise
            self.assertEqual(term.quit(), 0)

    def test_tiny_screen_and_unknown_terminal(self):
        term = Terminal(["top", "--replay", RECORDING, "--interval", "2s"], rows=4, cols=20)
        try:
            term.wait_for("the header cut to 20 columns",
                          lambda ls: ls[0] == "chokepoint top - fra" and "verdict" in ls[1])
        except BaseException:
            term.close()
            raise
        self.assertEqual(term.quit(), 0)
        bad = Terminal(["top", "--replay", RECORDING], env_extra={"TERM": "no-such-terminal"})
        try:
            bad.wait_for("the error", lambda ls: any(l.startswith("hint:") for l in ls))
            self.assertIn("error: cannot drive the terminal: TERM=no-such-terminal", bad.text())
            self.assertNotEqual(bad.proc.wait(timeout=TIMEOUT_S), 0)
        finally:
            bad.close()

    def live(self, target_args, body):
        """Runs STACKS_TARGET with target_args, top on it at 500 ms frames in a terminal, then
        body(term, target); top must quit with 0. Stops both, whatever happens."""
        target = subprocess.Popen([STACKS_TARGET] + target_args, stdout=subprocess.PIPE)
        try:
            self.assertEqual(target.stdout.readline(), b"ready\n")
            term = Terminal(["top", "--pid", str(target.pid), "--interval", "500ms"])
            try:
                body(term, target)
            except BaseException:
                term.close()
                raise
            self.assertEqual(term.quit(), 0)
        finally:
            target.kill()
            target.wait()
            target.stdout.close()

    def test_profile_of_the_selected_process_and_thread(self):
        def body(term, target):
            term.wait_for("the spinner's row", lambda ls: any("spinner" in l for l in ls))
            # P on the process row: 5 s of on-CPU samples, the spinning function first.
            term.send(b"P")
            term.wait_for("the profile running",
                          lambda ls: ls[0].startswith(f"on-CPU profile of pid {target.pid},")
                          and "sampling its on-CPU stacks" in "\n".join(ls))
            term.wait_for("the profile's hottest functions",
                          lambda ls: "samples at 199 Hz" in "\n".join(ls)
                          and "spin_on_cpu" in "\n".join(ls))
            self.assertIn("Hottest functions by self samples", term.text())
            term.send(b"q")
            term.wait_for("the frame again", lambda ls: "verdict:" in ls[1])
            # On a thread row, P profiles that thread (frames came during the profile: the
            # selection stayed on the process row); q while it runs cancels it at once.
            term.send(b"j")
            time.sleep(0.2)
            term.send(b"P")
            term.wait_for("one thread's profile running",
                          lambda ls: ls[0].startswith(f"on-CPU profile of pid {target.pid} tid "))
            started = time.monotonic()
            term.send(b"q")
            term.wait_for("the frame after the cancel", lambda ls: "verdict:" in ls[1])
            self.assertLess(time.monotonic() - started, 4.0, "the cancel waited for the profile")
        self.live(["0", "spin-target", "spin"], body)

    def test_hostile_process_name_cannot_change_the_screen(self):
        name = "\x1b[2J\x1b]0;x\aev"  # clear the screen, retitle, bell

        def body(term, target):
            term.wait_for("the escaped name",
                          lambda ls: any("\\e[2J\\e]0;x\\x07ev" in l for l in ls))
            lines = term.lines()
            self.assertTrue(lines[0].startswith("chokepoint top - frame"), term.text())
            self.assertIn("verdict:", lines[1])
            self.assertNotIn(b"\x1b]0;", term.raw)
            self.assertNotIn(b"\x1b[2J\x1b]", term.raw)
            self.assertIn("in-mutex", term.text())
            # s: the selected process's stacks in a pager, the name escaped there too.
            term.send(b"s")
            term.wait_for("the stacks pager",
                          lambda ls: ls[0].startswith(f"stacks of pid {target.pid}")
                          and "mutex_thread" in "\n".join(ls))
            self.assertNotIn(b"\x1b]0;", term.raw)
            term.send(b"q")  # back to the frame
            term.wait_for("the frame again", lambda ls: "verdict:" in ls[1])
            # On a thread row, s reads that thread only.
            term.send(b"j")
            time.sleep(0.2)
            term.send(b"s")
            term.wait_for("one thread's stacks",
                          lambda ls: ls[0].startswith(f"stacks of pid {target.pid} tid ")
                          and ": 1 thread, " in "\n".join(ls))
            term.send(b"q")
            term.wait_for("the frame again", lambda ls: "verdict:" in ls[1])
        self.live(["0", name], body)


if __name__ == "__main__":
    CHOKEPOINT, STACKS_TARGET, RECORDING = sys.argv[1:4]
    unittest.main(argv=sys.argv[:1], verbosity=2)
