#!/usr/bin/python3
"""chokepoint report in a real browser: the load's latency percentiles over time (issue 11).

Drives the real chokepoint-lab with diagnose --load at 200 req/s and --record, and stops the lab
(SIGSTOP) for 700 ms inside the window, so that the requests of one second wait; writes the
report and opens it in headless Chromium (python3-selenium, chromium-driver) to check that:
  - the page loads with no console errors and every chart draws (non-blank canvas);
  - the "Latency over time" panel says where its numbers come from (chokepoint load at 200 req/s,
    corrected for coordinated omission), and its chart draws;
  - the recording kept each second's percentiles (the page's are replay --json's), and the chart
    lays them on the window's time axis: its highest p99 is at the second the lab resumed;
  - a recording whose load predates the per-second percentiles (tests/fixtures lab_lock), and one
    with no load at all (redis_v5), say so in the panel instead of drawing;
  - chokepoint load -o draws the panel on the load's own page.
Everything it starts runs on loopback and is stopped at the end. Prints "N passed, M failed".
The browser helpers are report_browser_test.py's.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report_browser_test as base  # noqa: E402 - the shared helpers, after the path is set

args = None
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'fixtures',
                        'recordings')
PANEL = """
var l = window.chokepointReport.latency;
return l.map(function (x) {
  return {text: x.box.innerText, xs: x.xs || null, p99: x.p99 || null, offset: x.offset_s,
          drawn: !!x.chart};
});
"""


def chokepoint(*a, timeout=90):
    return base.run([os.path.join(args.bin, 'chokepoint'), *a], timeout=timeout)


def record_stall(work):
    """diagnose --load --record on the lab, which is stopped for 700 ms 1.5 s into the window.
    Returns the recording, and when the lab resumed (wall clock, s)."""
    lab, port = base.start_lab()
    out = os.path.join(work, 'stall.chokepoint')
    p = subprocess.Popen([os.path.join(args.bin, 'chokepoint'), 'diagnose', '--pid', str(lab.pid),
                          '--duration', '4s', '--load', 'http://127.0.0.1:%d/' % port, '--rate',
                          '200', '-c', '16', '--no-stacks', '--record', out],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base.started.append(p)
    resumed = []

    def stall():
        time.sleep(1.5)
        os.kill(lab.pid, signal.SIGSTOP)
        time.sleep(0.7)
        os.kill(lab.pid, signal.SIGCONT)
        resumed.append(time.time())

    staller = None
    err = ''
    for line in p.stderr:
        err += line
        if staller is None and 'watching pid' in line:
            staller = threading.Thread(target=stall)
            staller.start()
    assert p.wait(60) == 0, err
    assert staller is not None, err
    staller.join()
    base.stop(lab)
    return out, resumed[0]


def panel(driver):
    got = driver.execute_script(PANEL)
    assert len(got) == 1, got
    return got[0]


def body(work, drivers):
    global args
    args = base.args
    check = base.check
    rec, resumed_unix_s = record_stall(work)
    replayed = json.loads(chokepoint('replay', rec, '--json').stdout)
    page = os.path.join(args.artifacts, 'latency-report.html')
    chokepoint('report', rec, '-o', page)
    old_page = os.path.join(work, 'old.html')
    chokepoint('report', os.path.join(FIXTURES, 'lab_lock.chokepoint'), '-o', old_page)
    none_page = os.path.join(work, 'none.html')
    chokepoint('report', os.path.join(FIXTURES, 'redis_v5.chokepoint'), '-o', none_page)
    lab, port = base.start_lab()
    load_page = os.path.join(work, 'load.html')
    chokepoint('load', 'http://127.0.0.1:%d/' % port, '-c4', '--rate', '100', '-d3s', '-o',
               load_page)
    base.stop(lab)
    driver = base.browser()
    drivers.append(driver)

    base.load_page(driver, page)
    check('the page loads with no console errors', lambda: base.no_console_errors(driver))
    check('every chart of the page draws', lambda: base.every_chart_draws(driver, 5))

    def says_where_from():
        p = panel(driver)
        assert p['drawn'], p
        for words in ('Latency over time', 'chokepoint load, open loop at 200 req/s',
                      'corrected for coordinated omission', 'service time',
                      'On the window\'s time axis'):
            assert words in p['text'], (words, p['text'])
        box = driver.execute_script('return window.chokepointReport.latency[0].box')
        colours = driver.execute_script(
            base.CANVAS_COLOURS.replace('document.querySelectorAll',
                                        'arguments[0].querySelectorAll'), box)
        assert colours and all(c['colours'] >= 2 for c in colours), colours
    check('the latency panel says where its numbers come from, and draws', says_where_from)

    def kept_and_aligned():
        data = base.page_data(driver)['recordings'][0]
        load, timeline = data['load'], data['timeline']
        # The recording kept each second's percentiles: the page's are replay's.
        assert load['timeline'] == replayed['load']['timeline'], load['timeline']
        assert all('p99_ms' in b and 'service_p99_ms' in b for b in load['timeline'])
        p = panel(driver)
        offset = load['start_unix_s'] - timeline['start_unix_s']
        assert abs(p['offset'] - offset) < 1e-6, (p['offset'], offset)
        by_second = {b['second']: b for b in load['timeline']}
        end = timeline['columns'][-1]
        for x, v in zip(p['xs'], p['p99']):
            assert -0.5 <= x <= end + 0.5, (x, end)
            assert v == by_second[round(x - 0.5 - offset)]['p99_ms'], (x, v)
        # The stall: the highest p99 is the second the lab resumed in (or the next, on a
        # loaded machine), on the window's axis.
        worst = max(range(len(p['p99'])), key=lambda i: p['p99'][i] or 0)
        resumed_s = resumed_unix_s - timeline['start_unix_s']
        assert p['p99'][worst] >= 400, p['p99']
        assert -0.6 <= p['xs'][worst] - resumed_s <= 1.6, (p['xs'], resumed_s)
        quiet = [v for v in p['p99'] if v is not None and v < p['p99'][worst] / 4]
        assert quiet, p['p99']
    check('the recording kept the per-second percentiles, drawn on the window\'s axis',
          kept_and_aligned)
    driver.set_window_size(1400, 2200)
    box = driver.execute_script('return window.chokepointReport.latency[0].box')
    driver.execute_script('arguments[0].scrollIntoView({block: "start"});'
                          'window.scrollBy(0, -430)', box)
    time.sleep(0.1)
    driver.save_screenshot(os.path.join(args.artifacts, 'latency-report.png'))
    driver.get_log('browser')  # the canvases read above: the test's doing, not the page's
    driver.set_window_size(1400, 1000)

    base.load_page(driver, old_page)
    check('an older recording\'s load says it has no per-second percentiles', lambda: (
        base.no_console_errors(driver),
        _assert_text(panel(driver), 'kept the mean and the maximum latency of each second only',
                     drawn=False)))
    base.load_page(driver, none_page)
    check('a recording with no load says so', lambda: (
        base.no_console_errors(driver),
        _assert_text(panel(driver), 'No load in this recording', drawn=False)))
    base.load_page(driver, load_page)

    def load_alone():
        base.no_console_errors(driver)
        p = _assert_text(panel(driver), 'open loop at 100 req/s', drawn=True)
        # Every second of the run, at its middle, with the run's own numbers (a second with
        # no response, which a loaded machine can give, is a gap).
        timeline = base.page_data(driver)['loads'][0]['load']['timeline']
        assert p['xs'] == [b['second'] + 0.5 for b in timeline], (p['xs'], timeline)
        assert p['p99'] == [b['p99_ms'] for b in timeline], (p['p99'], timeline)
        assert len(timeline) >= 3 and sum(v is not None for v in p['p99']) >= 2, timeline
    check('chokepoint load -o draws the latency panel on its own page', load_alone)


def main():
    return base.run_suite('chokepoint-report-latency-', body)


def _assert_text(p, words, drawn):
    assert words in p['text'], p['text']
    assert p['drawn'] == drawn, p
    return p


if __name__ == '__main__':
    sys.exit(main())
