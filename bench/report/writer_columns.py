#!/usr/bin/env python3
"""The heat-map columns of a thread that fdatasyncs a file: how many name the file.

Records the report's hostile target (tests/integration/report/report_hostile_target.c: a writer
that writes and fdatasyncs a file, 0.1 ms apart) for 2 s at 100 ms, RUNS times, builds each
report and reads its writer's columns back from the page's data. Prints, per recording, each
column's main state (0 on_cpu, 2 disk, 6 sleep, as report_browser_test's STATES) and the disk
columns that name fdatasync without the file (the exact mode naming a wait the sampler never
caught a thread in), then the totals.

Usage: bench/report/writer_columns.py [BUILD_DIR] [RUNS]    (build, 8)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else 'build'
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    target = os.path.join(build, 'tests', 'report_hostile_target')
    chokepoint = os.path.join(build, 'bin', 'chokepoint')
    total = unnamed = 0
    for i in range(runs):
        work = tempfile.mkdtemp(prefix='writer-columns')
        try:
            data = os.path.join(work, 'data')
            writer = subprocess.Popen([target, data])
            time.sleep(0.05)
            rec = os.path.join(work, 'w.chokepoint')
            page = os.path.join(work, 'w.html')
            subprocess.run([chokepoint, 'record', '--interval', '100ms', '--duration', '2s',
                            '-o', rec, '--pid', str(writer.pid)], check=True,
                           capture_output=True)
            writer.kill()
            writer.wait()
            subprocess.run([chokepoint, 'report', rec, '-o', page], check=True,
                           capture_output=True)
            raw = open(page, encoding='utf-8').read()
            block = raw[raw.index('id="report-data">') + len('id="report-data">'):]
            timeline = json.loads(block[:block.index('</script>')])['recordings'][0]['timeline']
            details = timeline['details']
            for thread in timeline['threads']:
                if not thread['comm'].startswith('q"u'):
                    continue
                runs_ = thread['runs']
                columns = []
                for k in range(0, len(runs_), 3):
                    columns += [(runs_[k], runs_[k + 1])] * runs_[k + 2]
                syncs = [details[d] for s, d in columns if d >= 0 and 'fdatasync' in details[d]]
                bare = [d for d in syncs if '/' not in d]
                total += len(syncs)
                unnamed += len(bare)
                print('%d states %s fdatasync columns %d without the file %d'
                      % (i, [s for s, _ in columns], len(syncs), len(bare)))
        finally:
            shutil.rmtree(work)
    print('total: %d fdatasync columns, %d without the file' % (total, unnamed))


if __name__ == '__main__':
    main()
