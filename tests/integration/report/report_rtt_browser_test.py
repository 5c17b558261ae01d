#!/usr/bin/python3
"""chokepoint report in a real browser: each connection's round-trip time (issue 11).

The lab (bandwidth scenario, 256 KiB answers) runs in a network namespace this test creates,
joined to ours by a veth pair whose namespace side has a tbf qdisc (8 mbit/s, up to 200 ms of
queue). Its answers to a client in our namespace queue there, so the lab's smoothed RTT to that
client rises to tens of ms; a client inside the namespace, on 127.0.0.1, sees well under a ms.
`chokepoint record --pid LAB` records both; the report of that recording is opened in headless
Chromium (python3-selenium, chromium-driver) to check that:
  - the page loads with no console errors and every chart draws (non-blank canvas);
  - the timeline's connections list the shaped peer first, with a largest srtt of at least 10 ms
    and 5 times the loopback client's (0.2 to 5 ms here: its ACKs wait for a busy CPU), and the
    loopback client among them;
  - the page's connections panel names its source (tcp_info), draws its RTT chart, and its table
    lists both peers (as text) with the shaped one first.
Needs root and iproute2 (ip, tc): exits 77 (skipped) only when they are missing. Traffic goes
only to the addresses the test creates (10.201.N.0/30); the namespace, with both veth ends, is
deleted at the end, and every process it started is stopped. Prints "N passed, M failed".
The browser helpers are report_browser_test.py's.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report_browser_test as base  # noqa: E402 - the shared helpers, after the path is set

args = None
PANEL = """
var c = window.chokepointReport.connections;
return c.map(function (box) {
  var canvases = Array.from(box.querySelectorAll('canvas'));
  return {text: box.innerText,
          rows: Array.from(box.querySelectorAll('table tr')).slice(1).map(function (tr) {
            return tr.cells[0].textContent; }),
          colours: canvases.map(function (cv) {
            var d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data, seen = {}, n = 0;
            for (var i = 0; i < d.length && n < 3; i += 4) {
              var k = d[i] + ',' + d[i + 1] + ',' + d[i + 2] + ',' + d[i + 3];
              if (!seen[k]) { seen[k] = 1; ++n; }
            }
            return n; })};
});
"""


def tool(name):
    for d in ('/usr/sbin/', '/sbin/', '/usr/bin/', '/bin/'):
        if os.access(d + name, os.X_OK):
            return d + name
    return None


def unavailable():
    """Why this machine cannot give the test a network namespace, or None."""
    if os.geteuid() != 0:
        return 'creating a network namespace needs root'
    if tool('ip') is None or tool('tc') is None:
        return "iproute2's ip or tc is missing (scripts/setup installs it)"
    return None


class Netns:
    """A namespace of the test's own with a veth pair to ours, its side shaped with tbf."""

    def __init__(self):
        pid = os.getpid()
        subnet = pid % 250 + 1
        self.name = 'cprtt%d' % pid
        self.host_if, self.ns_if = 'cprh%d' % pid, 'cprn%d' % pid
        self.host_ip, self.ns_ip = '10.201.%d.1' % subnet, '10.201.%d.2' % subnet
        base.run([tool('ip'), 'netns', 'add', self.name], timeout=10)
        self.made = True
        for step in (['link', 'add', self.host_if, 'type', 'veth', 'peer', 'name', self.ns_if],
                     ['link', 'set', self.ns_if, 'netns', self.name],
                     ['addr', 'add', self.host_ip + '/30', 'dev', self.host_if],
                     ['link', 'set', self.host_if, 'up'],
                     ['-n', self.name, 'addr', 'add', self.ns_ip + '/30', 'dev', self.ns_if],
                     ['-n', self.name, 'link', 'set', self.ns_if, 'up'],
                     ['-n', self.name, 'link', 'set', 'lo', 'up']):
            base.run([tool('ip')] + step, timeout=10)
        # What the lab sends to our namespace waits in this queue: up to 200 ms at 8 mbit/s (an answer
        # of 256 KiB takes 260 ms to pass).
        base.run([tool('tc'), '-n', self.name, 'qdisc', 'add', 'dev', self.ns_if, 'root', 'tbf',
                  'rate', '8mbit', 'burst', '32kbit', 'latency', '200ms'], timeout=10)

    def exec_args(self, *cmd):
        return [tool('ip'), 'netns', 'exec', self.name, *cmd]

    def delete(self):
        subprocess.run([tool('ip'), 'netns', 'del', self.name], capture_output=True, timeout=10)
        subprocess.run([tool('ip'), 'link', 'del', self.host_if], capture_output=True, timeout=10)


def start_lab(net, work):
    """The bandwidth lab inside the namespace (ip netns exec execs it in place: the pid is the
    lab's). Returns the process and its port."""
    out_path = os.path.join(work, 'lab.out')
    out = open(out_path, 'w')
    p = subprocess.Popen(net.exec_args(os.path.join(args.bin, 'chokepoint-lab'), '--scenario',
                                       'bandwidth', '--bind', '0.0.0.0', '--port', '0',
                                       '--response-bytes', '262144'),
                         stdout=out, stderr=subprocess.STDOUT)
    out.close()
    base.started.append(p)
    for _ in range(200):
        with open(out_path) as f:
            m = re.search(r'listening on [0-9.]+:(\d+)', f.read())
        if m:
            return p, int(m.group(1))
        time.sleep(0.05)
    raise RuntimeError('the lab did not start')


def record_two_peers(net, work):
    """chokepoint record of the lab while a client across the shaped link and one on the
    namespace's loopback fetch from it. Returns the recording."""
    lab, port = start_lab(net, work)
    rec = os.path.join(work, 'rtt.chokepoint')
    chokepoint = os.path.join(args.bin, 'chokepoint')
    recorder = subprocess.Popen([chokepoint, 'record', '--pid', str(lab.pid), '--duration', '30s',
                                 '--interval', '200ms', '--stacks', 'off', '-o', rec],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base.started.append(recorder)
    for line in recorder.stderr:  # "chokepoint: recording pid N every 0.2 s to FILE ..."
        if 'recording pid' in line:
            break
    loads = [
        subprocess.Popen([chokepoint, 'load', 'http://%s:%d/' % (net.ns_ip, port), '-c', '2',
                          '-d', '3s'], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE),
        subprocess.Popen(net.exec_args(chokepoint, 'load', 'http://127.0.0.1:%d/' % port, '-c',
                                       '2', '-d', '3s', '--rate', '50'),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE),
    ]
    base.started.extend(loads)
    for p in loads:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    time.sleep(0.5)
    recorder.send_signal(signal.SIGINT)  #: the recording ends, and stays replayable
    err = recorder.stderr.read()
    assert recorder.wait(30) == 0, err
    base.stop(lab)
    return rec


def body(work, drivers):
    global args
    args = base.args
    check = base.check
    why = unavailable()
    if why:
        print('SKIP: ' + why)
        sys.exit(77)
    net = Netns()
    try:
        rec = record_two_peers(net, work)
    finally:
        net.delete()
    page = os.path.join(args.artifacts, 'rtt-report.html')
    base.run([os.path.join(args.bin, 'chokepoint'), 'report', rec, '-o', page], timeout=60)
    driver = base.browser()
    drivers.append(driver)
    base.load_page(driver, page)
    data = base.page_data(driver)['recordings'][0]['timeline']['connections']
    print('connections:', json.dumps([{k: c[k] for k in ('peer', 'side', 'max_srtt_ms')}
                                      for c in data['shown']]))

    def console_and_charts():
        base.no_console_errors(driver)
        base.every_chart_draws(driver, 4)

    def shaped_peer_is_slowest():
        shown = data['shown']
        assert shown and shown[0]['peer'].startswith(net.host_ip + ':'), shown
        loopback = [c for c in shown if c['peer'].startswith('127.0.0.1:')]
        assert loopback, shown
        slow, fast = shown[0]['max_srtt_ms'], max(c['max_srtt_ms'] for c in loopback)
        assert slow >= 10 and slow >= 5 * fast, (slow, fast)
        assert all(c['side'] == 'client' for c in shown), shown
        # A value per column of the timeline, read in at least two of them.
        columns = len(base.page_data(driver)['recordings'][0]['timeline']['columns'])
        assert len(shown[0]['srtt_ms']) == columns
        assert sum(1 for v in shown[0]['srtt_ms'] if v is not None) >= 2, shown[0]

    def panel_draws():
        panels = driver.execute_script(PANEL)
        assert len(panels) == 1, panels
        p = panels[0]
        assert 'source: tcp_info' in p['text'], p['text']
        assert 'smoothed RTT (srtt)' in p['text'], p['text']
        assert p['colours'] and all(n >= 2 for n in p['colours']), p['colours']
        assert p['rows'] and p['rows'][0].startswith(net.host_ip + ':'), p['rows']
        assert any(r.startswith('127.0.0.1:') for r in p['rows']), p['rows']
        box = driver.execute_script('return window.chokepointReport.connections[0]')
        driver.execute_script('arguments[0].scrollIntoView({block: "start"})', box)
        box.screenshot(os.path.join(args.artifacts, 'rtt-connections.png'))

    check('page loads with no console errors and every chart draws', console_and_charts)
    check('the shaped peer is the slowest connection, 5 times the loopback one',
          shaped_peer_is_slowest)
    check('the connections panel draws, with its source and both peers', panel_draws)


def main():
    return base.run_suite('chokepoint-report-rtt-', body)


if __name__ == '__main__':
    sys.exit(main())
