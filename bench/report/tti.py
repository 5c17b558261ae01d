#!/usr/bin/python3
"""Time to interactive of a report page in headless Chromium: from navigation start to the end of
the page's script (every panel drawn, handlers attached: window.chokepointReport.readyMs), for
each of N loads. Usage: tti.py PAGE [N]"""
import os
import statistics
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

page = os.path.abspath(sys.argv[1])
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
opts = webdriver.ChromeOptions()
opts.binary_location = '/usr/bin/chromium'
for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
          '--window-size=1400,1000'):
    opts.add_argument(a)
driver = webdriver.Chrome(service=Service('/usr/bin/chromedriver'), options=opts)
try:
    times = []
    for _ in range(runs):
        driver.get('about:blank')
        driver.get('file://' + page)
        for _ in range(600):
            ms = driver.execute_script(
                'return window.chokepointReport && window.chokepointReport.readyMs')
            if ms:
                break
            time.sleep(0.05)
        times.append(ms)
    print('time to interactive ms: median %.0f, runs %s' % (
        statistics.median(times), ' '.join('%.0f' % t for t in times)))
finally:
    driver.quit()
