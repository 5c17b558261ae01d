#!/usr/bin/python3
"""chokepoint report in a real browser: the services panel and the tiers (issue 11, schema 5).

Records a real Redis under redis-benchmark (sets and gets on loopback) with chokepoint record,
whose probe keeps every poll (schema 5), and a two-tier target (a chokepoint-lab front calling a
serial chokepoint-lab back, under chokepoint load) with diagnose --pid A --pid B --record; writes
their reports and opens them in headless Chromium (python3-selenium, chromium-driver) to check
that:
  - the pages load with no console errors and every chart draws (non-blank canvas);
  - the Redis page has a services panel that names the service and its probe, whose charts draw,
    and whose commands/s agree with what replay says of the whole recording;
  - the tier page names the limiting tier and each tier's verdict, as replay --json has them;
  - each tier with a verdict has its own flame graph in the tiers panel: the stacks diagnose took
    after the window for that tier alone (kept in the recording's "diagnose_tier_stacks" note).
Everything it starts runs on loopback and is stopped at the end. Prints "N passed, M failed".
The browser helpers are report_browser_test.py's.
"""
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report_browser_test as base  # noqa: E402 - the shared helpers, after the path is set

args = None


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for_port(port, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError('nothing listens on port %d' % port)


def spawn(cmd):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base.started.append(p)
    return p


def chokepoint(*a, timeout=90):
    return base.run([os.path.join(args.bin, 'chokepoint'), *a], timeout=timeout)


def record_redis(work):
    """A Redis at 8 MiB of maxmemory (allkeys-lru) under two redis-benchmarks, one setting and
    one getting 1 KiB values over 100,000 keys: commands, hits and misses, and evictions."""
    port = free_port()
    redis = spawn(['redis-server', '--port', str(port), '--bind', '127.0.0.1', '--save', '',
                   '--appendonly', 'no', '--dir', work, '--maxmemory', '8mb',
                   '--maxmemory-policy', 'allkeys-lru'])
    wait_for_port(port)
    for test in ('set', 'get'):
        spawn(['redis-benchmark', '-p', str(port), '-n', '100000000', '-r', '100000', '-d', '1024',
               '-t', test, '-c', '4', '-q'])
    time.sleep(0.5)
    out = os.path.join(work, 'redis.chokepoint')
    chokepoint('record', '--pid', str(redis.pid), '-o', out, '--interval', '500ms', '--duration',
               '4s', '--stacks', 'off')
    for p in base.started:
        base.stop(p)
    replayed = json.loads(chokepoint('replay', out, '--json').stdout)
    return out, port, replayed


def record_tiers(work):
    """A front lab (--scenario upstream) calling a serial back lab, under chokepoint load on the
    front, diagnosed as two tiers with --record, each tier's stacks taken after the window (the
    load outlasts them)."""
    back, back_port = base.start_lab('--scenario', 'serial')
    front, port = base.start_lab('--scenario', 'upstream', '--upstream-calls', '1', '--upstream',
                                 '127.0.0.1:%d' % back_port)
    spawn([os.path.join(args.bin, 'chokepoint'), 'load', '-c16', '-d12s',
           'http://127.0.0.1:%d/' % port])
    time.sleep(1)
    out = os.path.join(work, 'tiers.chokepoint')
    chokepoint('diagnose', '--pid', str(front.pid), '--pid', str(back.pid), '-d', '2s',
               '--no-probes', '--json', '--record', out)
    replayed = json.loads(chokepoint('replay', out, '--json').stdout)
    return out, front.pid, back.pid, replayed


def body(work, drivers):
    global args
    args = base.args
    check = base.check
    redis_rec, redis_port, redis_replayed = record_redis(work)
    redis_page = os.path.join(args.artifacts, 'redis-report.html')
    chokepoint('report', redis_rec, '-o', redis_page)
    tiers_rec, front_pid, back_pid, tiers_replayed = record_tiers(work)
    tiers_page = os.path.join(args.artifacts, 'tiers-report.html')
    chokepoint('report', tiers_rec, '-o', tiers_page)
    driver = base.browser()
    drivers.append(driver)

    base.load_page(driver, redis_page)
    check('the Redis page loads with no console errors', lambda: base.no_console_errors(driver))
    check('every chart of the Redis page draws', lambda: base.every_chart_draws(driver, 8))

    def services_panel():
        endpoint = '127.0.0.1:%d' % redis_port
        services = base.page_data(driver)['recordings'][0]['services']
        assert [s['kind'] for s in services] == ['redis'], services
        s = services[0]
        assert s['endpoint'] == endpoint and s['failed'] == 0, s
        # 4 s at one poll a second, and the first and last reads around the ticks.
        assert s['polls'] >= 4, s
        titles = [c['title'] for c in s['charts']]
        for want in ('commands', 'keyspace hit ratio', 'time per command', 'clients',
                     'memory', 'keys evicted and expired'):
            assert want in titles, titles
        # The panel is on the page, names the service and its source, and its charts draw.
        boxes = driver.execute_script('return window.chokepointReport.services')
        assert len(boxes) == 1, boxes
        text = boxes[0].text
        assert 'redis ' + endpoint in text, text
        assert 'source: redis probe ' + endpoint + ': hiredis over TCP' in text, text
        assert 'INFO total_commands_processed' in text, text
        canvases = driver.execute_script(
            'return Array.from(arguments[0].querySelectorAll("canvas")).length', boxes[0])
        assert canvases >= len(titles), (canvases, titles)
        colours = driver.execute_script(
            base.CANVAS_COLOURS.replace('document.querySelectorAll',
                                        'arguments[0].querySelectorAll'), boxes[0])
        assert all(c['colours'] >= 2 for c in colours), colours
        assert 'Services over time' in driver.find_element('tag name', 'body').text
        # The commands/s of the columns agree with the whole recording's rate (replay folds
        # the same polls): the median column within a factor of two of it.
        chart = next(c for c in s['charts'] if c['title'] == 'commands')
        rates = [v for v in chart['series'][0]['values'] if v is not None]
        assert len(rates) >= 3, chart
        summary = redis_replayed['services'][0]['summary']  # "14.5k commands/s, ..."
        m = re.search(r'([\d.,]+)(k?) commands/s', summary)
        assert m, summary
        want = float(m.group(1).replace(',', '')) * (1000 if m.group(2) else 1)
        median = statistics.median(rates)
        assert want / 2 <= median <= want * 2, (median, want, rates)
        # Sets under 8 MiB of maxmemory evict; gets over 100,000 keys hit some and miss some.
        hits = next(c for c in s['charts'] if c['title'] == 'keyspace hit ratio')
        ratios = [v for v in hits['series'][0]['values'] if v is not None]
        assert ratios and all(0 < v < 100 for v in ratios), ratios
    check('the Redis page has a services panel that names the service and draws',
          services_panel)
    driver.set_window_size(1400, 2200)
    boxes = driver.execute_script('return window.chokepointReport.services')
    if boxes:
        driver.execute_script('arguments[0].scrollIntoView({block: "start"})', boxes[0])
        time.sleep(0.1)
        driver.save_screenshot(os.path.join(args.artifacts, 'redis-services.png'))

    # The canvases read twice above (every chart, then the panel's) leave Chromium's hint to
    # read them faster in the log: the test's doing, not the page's.
    driver.get_log('browser')
    driver.set_window_size(1400, 1000)
    base.load_page(driver, tiers_page)
    check('the tier page loads with no console errors', lambda: base.no_console_errors(driver))
    check('every chart of the tier page draws', lambda: base.every_chart_draws(driver, 5))

    def tiers_panel():
        tiers = base.page_data(driver)['recordings'][0]['tiers']
        assert [t['root_pid'] for t in tiers['tiers']] == [front_pid, back_pid], tiers
        # The page's tiers are replay's: verdicts, kinds and the limiting tier.
        for page_tier, replay_tier in zip(tiers['tiers'], tiers_replayed['tiers']):
            for key in ('root_pid', 'pids', 'calls', 'verdict'):
                assert page_tier[key] == replay_tier[key], (key, page_tier, replay_tier)
        assert tiers['limiting_tier'] == tiers_replayed['limiting_tier'], tiers
        lim = tiers['limiting_tier']['tier']
        assert lim is not None, tiers['limiting_tier']
        # The front waits on its upstream, the back it calls.
        assert tiers['tiers'][0]['verdict'] == 'network', tiers['tiers'][0]['diagnosis']
        assert tiers['tiers'][0]['calls'][0]['tier'] == 2, tiers['tiers'][0]
        boxes = driver.execute_script('return window.chokepointReport.tiers')
        assert len(boxes) == 1, boxes
        text = boxes[0].text
        limiting = tiers['tiers'][lim - 1]
        assert 'LIMITING TIER: %d (pid %d %s)' % (lim, limiting['root_pid'],
                                                   limiting['name']) in text, text
        assert tiers['limiting_tier']['reason'] in text, text
        for t in tiers['tiers']:
            b = t['diagnosis']['bottlenecks']
            words = t['verdict'] + (' (%s) - %s' % (b[0]['kind'], b[0]['share_text'])
                                    if b else '')
            assert words in text, (words, text)
        assert 'tier 2 at 127.0.0.1:' in text, text
        base.no_console_errors(driver)
    check('the tier page shows the limiting tier and each tier\'s verdict', tiers_panel)

    def tier_flame_graphs():
        data = base.page_data(driver)['recordings'][0]
        tiers = data['tiers']['tiers']
        graphs = data.get('tier_flamegraphs', [])
        wanted = [t['root_pid'] for t in tiers if t['verdict'] != 'none']
        assert wanted and [g['root_pid'] for g in graphs] == wanted, (graphs, tiers)
        # A capture cut short on a busy machine keeps an empty profile ("no blocked threads,
        # ... 0.0 s", 1 run in 3 at load average 19): it is drawn too, titled so; one with
        # stacks is needed to see frames.
        assert any(g['stacks'] > 0 for g in graphs), graphs
        # The front waits on its upstream: its graph is of off-CPU time.
        assert graphs[0]['off_cpu'], graphs[0]
        boxes = driver.execute_script('return window.chokepointReport.tierGraphs')
        assert len(boxes) == len(graphs), boxes
        panel = driver.execute_script('return window.chokepointReport.tiers[0]')
        for box, g in zip(boxes, graphs):
            assert box.get_attribute('data-tier') == str(g['root_pid']), g
            # Drawn inside the tiers panel, as an SVG with frames.
            assert driver.execute_script('return arguments[0].contains(arguments[1])', panel, box)
            frames = driver.execute_script('return arguments[0].querySelectorAll("svg g").length',
                                           box)
            assert frames > 2 or g['stacks'] == 0, (frames, g)
        t = tiers[0]
        assert 'Tier 1 (pid %d %s): off-CPU time stacks for its verdict' % (
            front_pid, t['name']) in panel.text, panel.text
    check('each tier with a verdict shows its own flame graph in the tiers panel',
          tier_flame_graphs)
    driver.save_screenshot(os.path.join(args.artifacts, 'tiers-report.png'))


def main():
    return base.run_suite('chokepoint-report-services-', body)


if __name__ == '__main__':
    sys.exit(main())
