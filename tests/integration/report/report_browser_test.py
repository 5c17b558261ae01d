#!/usr/bin/python3
"""chokepoint report in a real browser (issue 11).

Records the real chokepoint-lab (the disk scenario under load, with diagnose --load --record, and
the fixed lab with chokepoint record) and a target whose names are hostile, writes the reports,
and opens them in headless Chromium (python3-selenium, chromium-driver) to check that:
  - the page loads with no console errors (a CSP violation is one);
  - every chart's canvas draws (more than one colour);
  - hovering a heat-map cell shows the right thread and state (the page's data, decoded here);
  - a process named "<img src=x onerror=alert(1)>" and a thread name with quotes and a newline
    show as text and run no script;
  - a screenshot of the lab's report is saved under build/report-artifacts/.
Everything it starts runs on loopback and is stopped at the end. Prints "N passed, M failed".
"""
import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains

STATES = ['on_cpu', 'cpu_wait', 'disk', 'network', 'lock', 'memory', 'sleep', 'idle']
PAYLOAD = '<img src=x onerror=alert(1)>'
HOSTILE_THREAD = 'q"u\'ote\nline'

args = None
results = []
started = []


def run(cmd, timeout=60, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if p.returncode != 0:
        raise RuntimeError('%s exited %d: %s' % (cmd, p.returncode, p.stderr[-2000:]))
    return p


def start_lab(*flags):
    out = tempfile.NamedTemporaryFile(mode='w+', delete=False)
    # In the ASan build, ASan's quarantine (256 MiB of freed blocks held back) grows the lab's
    # anonymous memory by about 7 MiB/s under load, and diagnose rightly reads that as a leak;
    # the memory profile behind a leak verdict then sees no glibc malloc (ASan replaces it) and
    # the recording has no stacks to draw. Without the quarantine the lab behaves as in release.
    # The variable means nothing to a build without ASan.
    env = dict(os.environ, ASAN_OPTIONS=':'.join(
        filter(None, [os.environ.get('ASAN_OPTIONS', ''), 'quarantine_size_mb=0',
                      'thread_local_quarantine_size_kb=0'])))
    p = subprocess.Popen([os.path.join(args.bin, 'chokepoint-lab'), '--port', '0', *flags],
                         stdout=out, stderr=subprocess.STDOUT, env=env)
    started.append(p)
    for _ in range(200):
        with open(out.name) as f:
            m = re.search(r'listening on 127\.0\.0\.1:(\d+)', f.read())
        if m:
            os.unlink(out.name)
            return p, int(m.group(1))
        time.sleep(0.05)
    raise RuntimeError('the lab did not start')


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def check(name, fn):
    try:
        fn()
        results.append((name, None))
        print('PASS', name, flush=True)
    except Exception:  # noqa: BLE001 - every failure is reported, then counted
        results.append((name, traceback.format_exc()))
        print('FAIL', name, '\n' + traceback.format_exc(), flush=True)


def record_lab(work):
    """before: the disk scenario, diagnose --load --record; after: --commit batch, record."""
    chokepoint = os.path.join(args.bin, 'chokepoint')
    lab, port = start_lab('--scenario', 'disk')
    url = 'http://127.0.0.1:%d/' % port
    before = os.path.join(work, 'before.chokepoint')
    run([chokepoint, 'diagnose', '--pid', str(lab.pid), '--duration', '3s', '--load', url, '-c',
         '8', '--record', before], timeout=120)
    stop(lab)
    lab, port = start_lab('--scenario', 'disk', '--commit', 'batch')
    url = 'http://127.0.0.1:%d/' % port
    after = os.path.join(work, 'after.chokepoint')
    # The load beside the recording writes its own page (chokepoint load -o).
    load = subprocess.Popen([chokepoint, 'load', '-c8', '-d4s', url, '-o',
                             os.path.join(work, 'load.html')], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    started.append(load)
    run([chokepoint, 'record', '--pid', str(lab.pid), '--interval', '200ms', '--duration', '3s',
         '-o', after])
    assert load.wait(30) == 0
    stop(lab)
    return before, after


def record_knee(work):
    """A short knee run against the lab (two search steps, a three-level USL sweep, 1 s each),
    written with knee -o; returns the page and the run's JSON (knee --json of the same run)."""
    lab, port = start_lab('--scenario', 'cpu')
    page = os.path.join(work, 'knee.html')
    p = run([os.path.join(args.bin, 'chokepoint'), 'knee', 'http://127.0.0.1:%d/' % port, '--slo',
             'p99<50ms', '--step', '1s', '--warmup', '200ms', '--start-rate', '100',
             '--max-steps', '2', '--usl', '--max-concurrency', '4', '--json', '-o', page],
            timeout=120)
    stop(lab)
    return page, json.loads(p.stdout)


def record_cpu(work):
    """The cpu scenario recorded by chokepoint record with its stacks over time (1 s slices), idle
    for its first slices and under load after, so that the verdict's window is a part of it."""
    lab, port = start_lab('--scenario', 'cpu')
    out = os.path.join(work, 'cpu.chokepoint')
    # Ended by SIGINT once the load is done (60 s is only a bound): the stacks start when their
    # sources have opened, seconds after the recording on a loaded machine, and a fixed duration
    # from the recording's start then left them one slice (two of 50b9982's runs beside
    # stress-ng --cpu 4 held a single on-CPU slice, already under load).
    rec = subprocess.Popen([os.path.join(args.bin, 'chokepoint'), 'record', '--pid', str(lab.pid),
                            '--interval', '250ms', '--duration', '60s', '--stack-slice', '1s',
                            '--stacks', 'on', '-o', out], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    started.append(rec)
    # Idle until the recording holds a slice of each kind (on-CPU and off-CPU, written when a
    # slice ends), then under load: two phases for the flame graphs of a chosen range.
    wait_recording_holds(out, rec, 'SELECT COUNT(DISTINCT kind) >= 2 FROM stack_slice',
                         'stack slice of each kind')
    run([os.path.join(args.bin, 'chokepoint'), 'load', '-c4', '-d3s',
         'http://127.0.0.1:%d/' % port])
    # The load's last slice ends, and is written, within a second.
    time.sleep(1.2)
    rec.send_signal(signal.SIGINT)
    _, err = rec.communicate(timeout=60)
    assert rec.returncode == 0, err
    stop(lab)
    replayed = json.loads(run([os.path.join(args.bin, 'chokepoint'), 'replay', out,
                               '--json']).stdout)
    return out, replayed, err


def record_hostile(work):
    """A target started through a link named PAYLOAD, whose writer thread is HOSTILE_THREAD and
    fdatasyncs a file under a directory path that holds "</script>" and PAYLOAD."""
    link_dir = os.path.join(work, 'bin')
    os.makedirs(link_dir)
    link = os.path.join(link_dir, PAYLOAD)
    os.symlink(os.path.abspath(args.hostile), link)
    data_dir = os.path.join(work, '<', 'script>' + PAYLOAD)
    os.makedirs(data_dir)
    target = subprocess.Popen([link, os.path.join(data_dir, 'data')])
    started.append(target)
    # Recorded once its writer has its name (a thread is named by its first instructions, which a
    # loaded machine may run later than the sampler's first look).
    task_dir = '/proc/%d/task' % target.pid
    for _ in range(200):
        names = []
        for tid in os.listdir(task_dir):
            with open(os.path.join(task_dir, tid, 'comm'), encoding='utf-8') as f:
                names.append(f.read()[:-1])
        if HOSTILE_THREAD in names:
            break
        time.sleep(0.02)
    out = os.path.join(work, 'hostile.chokepoint')
    # --name matches the executable's whole name, so the target's spec is the payload.
    run([os.path.join(args.bin, 'chokepoint'), 'record', '--interval', '100ms', '--duration',
         '2s', '-o', out, '--name', PAYLOAD])
    stop(target)
    return out


def wait_recording_holds(recording, proc, query, what, timeout=30):
    """Waits until `query` on `recording`, which `proc` (chokepoint record) is writing, returns a
    true first value (the recording's SQLite schema: src/store/recording_schema.cpp,
    src/store/stack_slices.cpp). record prints its first line and creates its file before its
    first tick, and opens its stack sources on a thread of their own that the ticks do not wait
    for (loading the off-CPU tracer takes seconds on a loaded machine): a phase timed from the
    line, the file or the first tick can miss the start of the stacks."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, 'the recorder ended before it held ' + what
        try:
            db = sqlite3.connect('file:%s?mode=ro' % recording, uri=True, timeout=1)
            try:
                row = db.execute(query).fetchone()
                if row and row[0]:
                    return
            finally:
                db.close()
        except sqlite3.Error:
            pass  # not created yet, or that table not yet committed
        time.sleep(0.02)
    raise AssertionError('%s holds no %s after %d s' % (recording, what, timeout))


def report(files, out):
    run([os.path.join(args.bin, 'chokepoint'), 'report', *files, '-o', out])
    return out


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = '/usr/bin/chromium'
    for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
              '--window-size=1400,1000', '--no-first-run', '--disable-extensions'):
        opts.add_argument(a)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    return webdriver.Chrome(service=Service('/usr/bin/chromedriver'), options=opts)


def load_page(driver, path):
    driver.get('file://' + os.path.abspath(path))
    for _ in range(100):
        if driver.execute_script('return !!(window.chokepointReport && window.chokepointReport.ready)'):
            return
        time.sleep(0.05)
    raise AssertionError('the page did not finish drawing: %s' % driver.get_log('browser'))


def no_console_errors(driver):
    errors = [e for e in driver.get_log('browser') if e['level'] in ('SEVERE', 'WARNING')]
    assert not errors, errors


# Each canvas: how many distinct RGBA values it holds (a blank one has one).
CANVAS_COLOURS = """
return Array.from(document.querySelectorAll('canvas')).map(function (c) {
  var d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, seen = {}, n = 0;
  for (var i = 0; i < d.length && n < 3; i += 4) {
    var k = d[i] + ',' + d[i + 1] + ',' + d[i + 2] + ',' + d[i + 3];
    if (!seen[k]) { seen[k] = 1; ++n; }
  }
  return {cls: c.className, w: c.width, h: c.height, colours: n};
});
"""


def every_chart_draws(driver, at_least):
    canvases = driver.execute_script(CANVAS_COLOURS)
    assert len(canvases) >= at_least, canvases
    blank = [c for c in canvases if c['colours'] < 2 or c['w'] == 0 or c['h'] == 0]
    assert not blank, blank
    charts = driver.execute_script('return window.chokepointReport.charts.length')
    assert charts >= min(at_least, 2), charts


def decode(runs, n):
    states, details = [], []
    for i in range(0, len(runs), 3):
        states += [runs[i]] * runs[i + 2]
        details += [runs[i + 1]] * runs[i + 2]
    return states[:n], details[:n]


def page_data(driver):
    return json.loads(driver.execute_script(
        'return document.getElementById("report-data").textContent'))


def hover(driver, canvas, x, y):
    # ActionChains offsets are from the element's centre.
    size = canvas.size
    ActionChains(driver).move_to_element_with_offset(
        canvas, int(x - size['width'] / 2), int(y - size['height'] / 2)).perform()
    time.sleep(0.05)
    return driver.execute_script('return document.querySelector(".tooltip").textContent')


def hover_shows_thread_and_state(driver, rec_index, pick, want_state=None):
    """Hovers a cell of the thread `pick` chooses (its last seen column, or the last one in
    want_state), expanding its group first, by a click, when it is in one, and compares the
    tooltip with the page's own data."""
    data = page_data(driver)['recordings'][rec_index]
    t = data['timeline']
    n = len(t['columns'])
    thread = pick(t['threads'])
    states, details = decode(thread['runs'], n)
    column = max(c for c in range(n) if states[c] >= 0 and want_state in (None, states[c]))
    hm = 'window.chokepointReport.heatmaps[%d]' % rec_index
    canvas = driver.execute_script('return %s.canvas' % hm)
    driver.execute_script('arguments[0].scrollIntoView({block: "start"})', canvas)
    rows = driver.execute_script('return %s.rows()' % hm)
    row = next((r for r in rows if r['tid'] == thread['tid']), None)
    if row is None:
        group = next(r for r in rows if r['group'] and r['pid'] == thread['pid']
                     and r['comm'] == thread['comm'])
        ActionChains(driver).move_to_element_with_offset(
            canvas, int(20 - canvas.size['width'] / 2),
            int(group['y'] - canvas.size['height'] / 2)).click().perform()
        rows = driver.execute_script('return %s.rows()' % hm)
        row = next(r for r in rows if r['tid'] == thread['tid'])
    x = driver.execute_script('return %s.columnX(%d)' % (hm, column))
    text = hover(driver, canvas, x, row['y'])
    assert ('thread %d "%s"' % (thread['tid'], thread['comm'])) in text, (text, thread)
    assert ('state: ' + STATES[states[column]]) in text, (text, states[column])
    if details[column] >= 0:
        assert ('in: ' + t['details'][details[column]]) in text, text
    return thread, states, text


def run_suite(work_prefix, body, options=()):
    """The frame of a browser test that takes --bin, --artifacts and `options` (more required
    options, such as '--hostile'): parses them (into args),
    makes a work directory, runs body(work) (which opens its browser with browser() and returns
    it, or None) and counts its checks; whatever fails outside a check fails the test. Stops every
    process in `started`, quits the browser, removes the work directory. Returns the exit code."""
    global args
    parser = argparse.ArgumentParser()
    parser.add_argument('--bin', required=True)
    parser.add_argument('--artifacts', required=True)
    for o in options:
        parser.add_argument(o, required=True)
    args = parser.parse_args()
    os.makedirs(args.artifacts, exist_ok=True)
    work = tempfile.mkdtemp(prefix=work_prefix)
    # Chromium keeps its singleton socket in a directory of its own under TMPDIR, and leaves it
    # behind when chromedriver's quit kills it: one stray /tmp/org.chromium.Chromium.* per run.
    # Under the work directory it goes with it (the programs started below inherit TMPDIR too).
    os.environ['TMPDIR'] = os.path.join(work, 'tmp')
    os.makedirs(os.environ['TMPDIR'])
    drivers = []
    try:
        body(work, drivers)
    except Exception:  # noqa: BLE001 - a failure to record or start the browser fails the test
        results.append(('setup', traceback.format_exc()))
        print('FAIL setup\n' + traceback.format_exc(), flush=True)
    finally:
        for d in drivers:
            d.quit()
        for p in started:
            stop(p)
        shutil.rmtree(work, ignore_errors=True)
    failed = sum(1 for _, e in results if e)
    print('%d passed, %d failed' % (len(results) - failed, failed))
    return 1 if failed or not results else 0


def body(work, drivers):
    before, after = record_lab(work)
    lab_page = report([before, after], os.path.join(args.artifacts, 'lab-report.html'))
    hostile_page = report([record_hostile(work)], os.path.join(work, 'hostile.html'))
    knee_page, knee_run = record_knee(work)
    cpu_recording, cpu_replayed, cpu_record_err = record_cpu(work)
    cpu_page = report([cpu_recording], os.path.join(args.artifacts, 'cpu-stacks-report.html'))
    usl_page = os.path.join(work, 'usl.html')
    usl_data = os.path.join(work, 'tput.csv')
    with open(usl_data, 'w') as f:
        f.write('1,980\n2,1900\n4,3500\n8,5600\n16,6900\n')
    usl_run = json.loads(run([os.path.join(args.bin, 'chokepoint'), 'usl', usl_data, '--json',
                              '-o', usl_page]).stdout)

    def bad_input():
        chokepoint = os.path.join(args.bin, 'chokepoint')
        not_recording = os.path.join(work, 'not-a-recording')
        with open(not_recording, 'w') as f:
            f.write('hello')
        out = os.path.join(work, 'bad.html')
        for files, code in (([os.path.join(work, 'missing.chokepoint')], 1),
                            ([not_recording], 1), ([before, after, before], 2)):
            p = subprocess.run([chokepoint, 'report', *files, '-o', out], capture_output=True,
                               text=True, timeout=30)
            assert p.returncode == code, (files, p.returncode, p.stderr)
            assert 'error: ' in p.stderr and 'hint: ' in p.stderr, p.stderr
            assert not os.path.exists(out), 'a half-written page was left'
    check('bad input gives error and hint and writes nothing', bad_input)
    driver = browser()
    drivers.append(driver)

    load_page(driver, lab_page)
    check('lab page loads with no console errors', lambda: no_console_errors(driver))
    check('every chart of the lab page draws', lambda: every_chart_draws(driver, 10))

    def lab_hover():
        # A worker of the disk scenario: one of 32 same-name threads, so its group is expanded.
        thread, _, _ = hover_shows_thread_and_state(
            driver, 0, lambda ts: next(t for t in ts if t['comm'] == 'lab-worker'))
        assert thread['comm'] == 'lab-worker'
    check('hovering a lab heat-map cell names the thread and its state', lab_hover)
    check('the lab page has both recordings and their diff', lambda: (
        driver.execute_script('return window.chokepointReport.heatmaps.length') == 2
        or (_ for _ in ()).throw(AssertionError('two heat maps expected')),
        'Before and after' in driver.find_element('tag name', 'body').text
        or (_ for _ in ()).throw(AssertionError('no diff section'))))

    def lab_flamegraph():
        # diagnose --record kept the stacks behind its verdict (off-CPU for the disk
        # scenario): the page draws them as an interactive flame graph in that column.
        rec = page_data(driver)['recordings'][0]
        assert rec['flamegraph'] is not None, rec['absent']
        assert rec['flamegraph']['stacks'] > 0, rec['flamegraph']
        svg = driver.execute_script('return window.chokepointReport.flamegraphs[0]')
        assert svg is not None, 'no flame graph drawn'
        assert driver.execute_script(
            'return arguments[0].closest("section.recording") !== null && '
            'arguments[0].getBoundingClientRect().width > 300', svg)
        frames = svg.find_elements('css selector', 'g.f')
        assert len(frames) > 3, len(frames)
        # Zoom: click a middling frame of depth 1 or deeper; it then spans more of the
        # graph, the frames outside it hide, and Reset Zoom shows.
        # Frames narrower than 10 px are hard to hit with a click, and one as wide as the
        # graph cannot widen: pick among the others.
        pick = driver.execute_script(
            'var width = arguments[0].getBoundingClientRect().width;'
            'var fs = Array.from(arguments[0].querySelectorAll("g.f")).filter(function (g) {'
            '  var w = Number(g.querySelector("rect").getAttribute("width"));'
            '  return Number(g.getAttribute("data-d")) >= 1 && w >= 10 && w < 0.9 * width; });'
            'fs.sort(function (a, b) { return Number(a.getAttribute("data-w")) -'
            '  Number(b.getAttribute("data-w")); });'
            'return fs.length ? fs[Math.floor(fs.length / 2)] : null;', svg)
        assert pick is not None
        rect = pick.find_element('css selector', 'rect')
        before_w = float(rect.get_attribute('width'))
        reset = svg.find_element('css selector', '#reset')
        assert 'h' in reset.get_attribute('class').split(), 'Reset Zoom shown before a zoom'
        driver.execute_script('arguments[0].scrollIntoView({block: "center"})', pick)
        ActionChains(driver).move_to_element(rect).click().perform()
        after_w = float(rect.get_attribute('width'))
        assert after_w > before_w, (before_w, after_w)
        assert 'h' not in reset.get_attribute('class').split(), 'Reset Zoom not shown'
        hidden = driver.execute_script(
            'return arguments[0].querySelectorAll("g.f.h").length', svg)
        assert hidden > 0, 'nothing hid on zoom'
        no_console_errors(driver)
    check('the recording with stacks shows its flame graph, and a click zooms', lab_flamegraph)
    driver.set_window_size(1400, 2200)
    driver.execute_script('window.scrollTo(0, 0)')
    time.sleep(0.1)
    driver.save_screenshot(os.path.join(args.artifacts, 'lab-report.png'))
    check('the screenshot is saved',
          lambda: os.path.getsize(os.path.join(args.artifacts, 'lab-report.png')) > 50000
          or (_ for _ in ()).throw(AssertionError('small screenshot')))

    load_page(driver, cpu_page)

    def recorded_stacks():
        # chokepoint record kept on-CPU and off-CPU stacks over time (root, BPF and perf
        # work here: no skipping); replay --json and the page both carry them, and the on-CPU
        # flame graph holds the cpu scenario's hot function.
        assert 'stacks over time, on-CPU (perf): cpu-clock' in cpu_record_err, cpu_record_err
        assert 'stacks over time, off-CPU (eBPF): blocked' in cpu_record_err, cpu_record_err
        rs = cpu_replayed['recorded_stacks']
        assert rs['on_cpu']['slices'] >= 4 and rs['off_cpu']['slices'] >= 4, rs
        assert any('run_cpu_work' in f for f, _ in rs['on_cpu']['folded']), rs['on_cpu']
        assert cpu_replayed['sources']['stacks over time, on-CPU (perf)']['available']
        no_console_errors(driver)
        rec = page_data(driver)['recordings'][0]
        graphs = rec['recorded_flamegraphs']
        whole = [g for g in graphs if g['scope'] == 'the whole recording']
        assert [g['off_cpu'] for g in whole] == [False, True], graphs
        assert all(g['stacks'] > 0 for g in graphs), graphs
        # The verdict's window: its own two graphs when the verdict over time changed (the
        # idle first second), none when it held all along.
        verdicts = rec['timeline']['verdicts']
        whole_verdict = rec['diagnosis']['verdict']
        part = any(v is None or v['verdict'] != whole_verdict for v in verdicts)
        assert len(graphs) == (4 if part and whole_verdict != 'none' else 2), (graphs, verdicts)
        svgs = driver.execute_script('return window.chokepointReport.flamegraphs')
        assert len(svgs) == len(graphs), (len(svgs), graphs)
        on = svgs[0]
        assert driver.execute_script(
            'return arguments[0].closest("section.recording") !== null && '
            'arguments[0].getBoundingClientRect().width > 300', on)
        assert len(on.find_elements('css selector', 'g.f')) > 3
        titles = driver.execute_script(
            'return Array.from(arguments[0].querySelectorAll("g.f title")).map('
            'function (t) { return t.textContent; })', on)
        assert any('run_cpu_work' in t for t in titles), titles[:20]
        assert 'Stacks over time' in driver.find_element('tag name', 'body').text
        # The verdict's evidence names the hot code from the recorded stacks (of its window),
        # as a live diagnose's stacks after its window do.
        if whole_verdict == 'cpu':
            evidence = ' '.join(rec['diagnosis']['bottlenecks'][0]['evidence'])
            assert 'hottest code on CPU: chokepoint::lab::lab_cpu_' in evidence, evidence
    check('chokepoint record keeps stacks over time and the page draws them', recorded_stacks)

    def range_flame_graphs():
        # Dragging across the time bar of "Flame graphs of a time range" redraws the on-CPU
        # and off-CPU graphs from the slices that overlap the range only: the idle first
        # phase holds none of the load's hot function, the loaded one does, and each graph's
        # stacks are exactly the page data's slices of that range merged (here, in Python).
        rs = page_data(driver)['recordings'][0]['range_stacks']
        assert rs['on_cpu'] and rs['off_cpu'], rs.keys()
        on = rs['on_cpu']['slices']

        def names_of(sl):
            return {rs['frames'][f] for k in range(0, len(sl['counts']), 2)
                    for f in rs['stacks'][sl['counts'][k]]}

        def expected(kind, from_s, to_s):
            total, names = 0, set()
            for sl in rs[kind]['slices']:
                if sl['to_s'] > from_s and sl['from_s'] < to_s:
                    total += sum(sl['counts'][1::2])
                    names |= names_of(sl)
            return total, names

        def shown():
            return driver.execute_script("""
                var r = window.chokepointReport.ranges[0];
                return [r.from_s, r.to_s, r.graphs.map(function (g) {
                  var names = [], root = g.graph.tree.root;
                  (function walk(n) {
                    Object.keys(n.children).forEach(function (k) {
                      names.push(k); walk(n.children[k]); });
                  })(root);
                  return [g.kind.key, root.value, names, g.title.textContent,
                          g.graph.frames().length];
                })];""")

        def matches_data():
            from_s, to_s, graphs = shown()
            assert [g[0] for g in graphs] == ['on_cpu', 'off_cpu'], graphs
            for kind, total, names, title, drawn in graphs:
                want_total, want_names = expected(kind, from_s, to_s)
                assert total == want_total, (kind, from_s, to_s, total, want_total, title)
                assert set(names) == want_names, (kind, title)
                assert (drawn > 0) == (total > 0), (kind, title, drawn)
            return from_s, to_s, graphs

        bar = driver.execute_script('return window.chokepointReport.ranges[0].bar')
        end_s = driver.execute_script('return window.chokepointReport.ranges[0].end_s')
        driver.execute_script('arguments[0].scrollIntoView({block: "center"})', bar)
        width = bar.size['width']

        def drag(from_s, to_s):
            # ActionChains offsets are from the element's centre.
            x0 = int(from_s / end_s * width - width / 2)
            x1 = int(to_s / end_s * width - width / 2)
            ActionChains(driver).move_to_element_with_offset(bar, x0, 0).click_and_hold() \
                .move_by_offset(x1 - x0, 0).release().perform()
            time.sleep(0.05)
            return matches_data()

        _, _, whole = matches_data()
        assert all('the whole recording' in g[3] for g in whole), whole
        hot = [i for i, sl in enumerate(on) if 'run_cpu_work' in ' '.join(names_of(sl))]
        assert hot, 'no on-CPU slice holds run_cpu_work'
        assert hot[0] > 0, 'the first slice is already under load: no idle phase'
        first_hot = on[hot[0]]
        # The idle phase: from the start to just inside the last slice before the load.
        idle = on[hot[0] - 1]
        _, _, graphs = drag(0.02 * end_s, idle['to_s'] - 0.3 * (idle['to_s'] - idle['from_s']))
        assert 'run_cpu_work' not in ' '.join(graphs[0][2]), graphs[0][3]
        assert graphs[0][1] < whole[0][1], (graphs[0][3], whole[0][3])
        # The loaded phase: from inside its first slice to the end.
        from_s = first_hot['from_s'] + 0.5 * (first_hot['to_s'] - first_hot['from_s'])
        _, _, graphs = drag(from_s, 0.98 * end_s)
        assert 'run_cpu_work' in ' '.join(graphs[0][2]), graphs[0][3]
        assert graphs[0][1] > 0 and graphs[1][1] > 0, graphs
        # A click without a drag: the whole recording again.
        ActionChains(driver).move_to_element(bar).click().perform()
        time.sleep(0.05)
        _, _, again = matches_data()
        assert [g[1] for g in again] == [g[1] for g in whole], (again, whole)
        no_console_errors(driver)
    check('dragging a time range draws that range\'s flame graphs only', range_flame_graphs)
    driver.execute_script('window.scrollTo(0, document.body.scrollHeight)')
    time.sleep(0.1)
    driver.save_screenshot(os.path.join(args.artifacts, 'cpu-stacks-report.png'))

    driver.set_window_size(1400, 1000)
    load_page(driver, hostile_page)

    def hostile_text():
        body = driver.find_element('tag name', 'body').text
        assert PAYLOAD in body, 'the payload is not shown as text'
        assert driver.execute_script('return document.querySelectorAll("img").length') == 0
        try:
            alert = driver.switch_to.alert
            raise AssertionError('an alert ran: ' + alert.text)
        except NoAlertPresentException:
            pass
        no_console_errors(driver)
        raw = open(hostile_page, encoding='utf-8').read()
        data_block = raw[raw.index('id="report-data">'):]
        data_block = data_block[len('id="report-data">'):data_block.index('</script>')]
        assert '<' not in data_block and '>' not in data_block
    check('the hostile process name shows as text and runs no script', hostile_text)

    def hostile_thread():
        # The writer fdatasyncs (and now and then ftruncates): a column in which disk was its
        # main state names the file, whose path holds "</script>" and the payload.
        thread, states, text = hover_shows_thread_and_state(
            driver, 0, lambda ts: next(t for t in ts if t['comm'] == HOSTILE_THREAD),
            STATES.index('disk'))
        # The tooltip holds the name as text, newline and quotes included.
        assert HOSTILE_THREAD in text, text
        assert re.search(r'in: (fdatasync|ftruncate|write) .*</script>' + re.escape(PAYLOAD)
                         + '/data', text), text
        assert driver.execute_script('return document.querySelectorAll("img").length') == 0
    check('the hostile thread name shows as text in the heat map', hostile_thread)
    check('every chart of the hostile page draws', lambda: every_chart_draws(driver, 5))

    load_page(driver, os.path.join(work, 'load.html'))

    def load_alone():
        no_console_errors(driver)
        every_chart_draws(driver, 3)
        body = driver.find_element('tag name', 'body').text
        assert 'chokepoint load: http://127.0.0.1:' in body and 'p99' in body, body[:500]
    check('chokepoint load -o draws the run on its own page', load_alone)

    load_page(driver, knee_page)

    def knee_alone():
        no_console_errors(driver)
        every_chart_draws(driver, 2)  # the knee curve and the USL fit
        body = driver.find_element('tag name', 'body').text
        assert 'chokepoint knee: http://127.0.0.1:' in body, body[:500]
        knee = knee_run['knee']
        if knee['rate'] is not None:
            assert 'knee: %.0f req/s meets p99<50ms' % knee['rate'] in body, body[:800]
        else:
            assert 'no knee: no step met p99<50ms' in body, body[:800]
        # Every step is a row of the table, and the fit's parameters are shown.
        rows = driver.execute_script('return document.querySelectorAll("table tr").length')
        assert rows >= len(knee_run['steps']) + 1, rows
        usl = knee_run['usl']
        assert 'lambda' in usl, usl  # three levels always fit
        assert 'lambda (req/s per unit of concurrency)\n%.1f' % usl['lambda'] in body or \
            'lambda (req/s per unit of concurrency) %.1f' % usl['lambda'] in body, body
    check('chokepoint knee -o draws the knee curve and the USL fit', knee_alone)

    load_page(driver, usl_page)

    def usl_alone():
        no_console_errors(driver)
        every_chart_draws(driver, 1)  # the fitted curve over the measured points
        body = driver.find_element('tag name', 'body').text
        assert 'chokepoint usl: ' + usl_data in body, body[:500]
        assert '5 measured levels of concurrency' in body, body[:500]
        n_star = usl_run['n_star']
        peak = 'none \\(kappa = 0\\)' if n_star is None else '%.1f' % n_star
        assert re.search(r'peak concurrency N\*\s+' + peak, body), body
    check('chokepoint usl -o draws the fit on its own page', usl_alone)


def main():
    return run_suite('chokepoint-report-', body, ['--hostile'])


if __name__ == '__main__':
    sys.exit(main())
