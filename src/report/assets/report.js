// chokepoint report: draws the page from the JSON in #report-data (src/report/page.h).
// Every string in that JSON is observed (process and thread names, paths, peers) and hostile: it
// reaches the page only through textContent and canvas fillText, never as markup.
(function () {
  'use strict';
  var STATES = ['on_cpu', 'cpu_wait', 'disk', 'network', 'lock', 'memory', 'sleep', 'idle'];
  var COLORS = ['#d62728', '#ff9896', '#1f77b4', '#2ca02c', '#9467bd', '#8c564b', '#bdbdbd',
    '#eeeeee'];
  var VERDICT_COLORS = { none: '#a5d6a7', network: '#2ca02c', disk: '#1f77b4', memory: '#8c564b',
    lock: '#9467bd', cpu: '#d62728' };
  var ROW_PX = 12;
  var LABEL_PX = 260;
  var MAX_ROWS = 2000;

  var data = JSON.parse(document.getElementById('report-data').textContent);
  var root = document.getElementById('report');
  // What the page drew, for the browser tests and for anyone scripting the page.
  var api = { charts: [], heatmaps: [], strips: [], flamegraphs: [], ranges: [], services: [],
    tiers: [], latency: [], links: [], connections: [], tierGraphs: [] };
  window.chokepointReport = api;

  function el(tag, cls, text, parent) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (parent) parent.appendChild(e);
    return e;
  }
  function pct(x) { return (x * 100).toFixed(0) + '%'; }
  function num(x, digits) {
    if (x === null || x === undefined || !isFinite(x)) return '-';
    return Number(x).toFixed(digits === undefined ? 2 : digits);
  }
  function chartWidth(parent) {
    return Math.max(280, Math.min(1100, (parent.clientWidth || 600) - 10));
  }

  var tooltip = el('div', 'tooltip', null, document.body);
  function showTip(ev, text) {
    tooltip.textContent = text;
    tooltip.style.display = 'block';
    tooltip.style.left = (ev.clientX + 14) + 'px';
    tooltip.style.top = (ev.clientY + 14) + 'px';
  }
  function hideTip() { tooltip.style.display = 'none'; }

  function legend(parent) {
    var l = el('div', 'legend', null, parent);
    STATES.forEach(function (s, i) {
      var span = el('span', null, null, l);
      var sw = el('i', null, null, span);
      sw.style.background = COLORS[i];
      span.appendChild(document.createTextNode(s));
    });
  }

  // --- one time axis for a recording's panels: a shared cursor and a shared zoom.
  // The charts on the window's axis (split, latency, USE, services) share uPlot's cursor sync, by
  // x value; the canvases (the verdict strip, the heat map) join the same sync as clients. A range
  // selected in a chart (uPlot's drag) or dragged across the strip or the heat map zooms every
  // panel, through the charts' setScale hook; a double click on any of them shows the whole
  // recording again. The range flame graphs follow the zoom.
  function timeLink(rec, index) {
    var t = rec.timeline;
    var n = t.columns.length;
    var last = n ? t.columns[n - 1] : 0;
    var end = rec.diagnosis && rec.diagnosis.duration_s > last ? rec.diagnosis.duration_s
      : last + t.column_s;
    var link = { key: 'chokepoint-recording-' + index, time: null, view: null, charts: [],
      homes: [], clients: [], zooms: [], end_s: end };
    var sync = uPlot.sync(link.key);
    link.columnEnd = function (i) { return i + 1 < n ? t.columns[i + 1] : end; };
    // The columns a view covers: [first, last], every column when there is no zoom.
    link.columnsIn = function (view) {
      if (!view) return [0, n - 1];
      var c0 = 0, c1 = n - 1;
      while (c0 < n - 1 && link.columnEnd(c0) <= view[0]) ++c0;
      while (c1 > c0 && t.columns[c1] >= view[1]) --c1;
      return [c0, c1];
    };
    // Options for a chart on this axis: the cursor sync (only moves and leaves are passed on: a
    // drag zooms the others through setScale, a double click resets them the same way).
    link.chartOptions = function (opts) {
      opts.cursor = { sync: { key: link.key, scales: ['x', null], filters: {
        pub: function (type) { return type === 'mousemove' || type === 'mouseleave'; } } } };
      opts.hooks = opts.hooks || {};
      opts.hooks.setScale = (opts.hooks.setScale || []).concat([function (u, key) {
        if (key === 'x') link.scaled(u);
      }]);
      return opts;
    };
    link.addChart = function (chart) {
      link.charts.push(chart);
      link.homes.push(chart.scales.x.min === null || chart.scales.x.min === undefined ? null
        : [chart.scales.x.min, chart.scales.x.max]);
      if (link.view) chart.setScale('x', { min: link.view[0], max: link.view[1] });
      return chart;
    };
    function same(a, b) {
      if (!a || !b) return a === b;
      return Math.abs(a[0] - b[0]) < 1e-9 && Math.abs(a[1] - b[1]) < 1e-9;
    }
    // A chart's x scale changed: its first setting is its home (the whole recording); later, a
    // range selected in it, or its home again after a double click.
    link.scaled = function (u) {
      var i = link.charts.indexOf(u);
      if (i < 0) return;
      var now = [u.scales.x.min, u.scales.x.max];
      if (!link.homes[i]) { link.homes[i] = now; return; }
      link.zoom(same(now, link.homes[i]) ? null : now);
    };
    link.zoom = function (view) {
      if (same(view, link.view)) return;
      link.view = view;
      link.charts.forEach(function (c, i) {
        var r = view || link.homes[i];
        if (r && !same([c.scales.x.min, c.scales.x.max], r)) c.setScale('x', { min: r[0], max: r[1] });
      });
      link.clients.forEach(function (c) { c.zoom(view); });
      link.zooms.forEach(function (f) { f(view); });
    };
    // The shared cursor: a time (s from the first tick), or null when the mouse left.
    var pending = false;
    link.show = function (time, fromChart) {
      link.time = time;
      link.clients.forEach(function (c) { c.cursor(time); });
      if (fromChart || pending) return;  // uPlot's sync has moved the other charts
      // The charts follow a canvas at the next frame, outside its mouse event: moving their
      // cursors inside it changes the layout under the mouse, and the browser's boundary events
      // for that reached the canvas's other handlers (its tooltip) as a leave.
      pending = true;
      window.requestAnimationFrame(function () {
        pending = false;
        var at = link.time;
        link.charts.forEach(function (c) {
          var x = at === null ? -10 : c.valToPos(at, 'x');
          if (!(x >= 0 && x <= c.bbox.width / (window.devicePixelRatio || 1))) x = -10;
          c.setCursor({ left: x, top: x < 0 ? -10 : 10 }, false, false);
        });
      });
    };
    sync.sub({ pub: function (type, src, x) {
      if (type === 'mousemove' && x >= 0) link.show(src.posToVal(x, 'x'), true);
      else if (type === 'mouseleave' || type === 'mousemove') link.show(null, true);
    } });
    // A canvas on this axis: columns [c0, c1] across `width` px from x0. The cursor as a line
    // over it; a drag zooms, a double click resets; its own click stays its own.
    link.canvas = function (spec) {
      var line = el('div', 'cursor-line', null, spec.holder);
      line.style.display = 'none';
      var client = { cols: link.columnsIn(null), line: line };
      client.cellPx = function () { return spec.width() / (client.cols[1] - client.cols[0] + 1); };
      client.xOf = function (time) {
        var c0 = client.cols[0], c1 = client.cols[1];
        for (var i = c0; i <= c1; ++i) {
          var from = t.columns[i], to = link.columnEnd(i);
          if (time >= from && (time < to || i === c1 && time <= to)) {
            var frac = to > from ? (time - from) / (to - from) : 0;
            return spec.x0() + (i - c0 + frac) * client.cellPx();
          }
        }
        return null;
      };
      client.timeAt = function (x) {
        var cell = client.cellPx(), c0 = client.cols[0], c1 = client.cols[1];
        var k = Math.max(0, Math.min(c1 - c0 + 1 - 1e-9, (x - spec.x0()) / cell));
        var i = c0 + Math.floor(k);
        return t.columns[i] + (k - Math.floor(k)) * (link.columnEnd(i) - t.columns[i]);
      };
      client.column = function (x) {
        var k = Math.floor((x - spec.x0()) / client.cellPx());
        return k < 0 ? -1 : Math.min(client.cols[1], client.cols[0] + k);
      };
      client.cursor = function (time) {
        var x = time === null ? null : client.xOf(time);
        line.style.display = x === null ? 'none' : 'block';
        if (x !== null) line.style.left = Math.round(x) + 'px';
      };
      client.zoom = function (view) {
        client.cols = link.columnsIn(view);
        spec.draw();
        client.cursor(link.time);
      };
      var from = null;
      function xIn(ev) { return ev.clientX - spec.canvas.getBoundingClientRect().left; }
      spec.canvas.addEventListener('mousemove', function (ev) {
        var x = xIn(ev);
        link.show(x >= spec.x0() ? client.timeAt(x) : null, false);
      });
      spec.canvas.addEventListener('mouseleave', function () { link.show(null, false); });
      spec.canvas.addEventListener('mousedown', function (ev) {
        from = xIn(ev) >= spec.x0() ? xIn(ev) : null;
      });
      window.addEventListener('mouseup', function (ev) {
        if (from === null) return;
        var to = xIn(ev), x0 = from;
        from = null;
        if (Math.abs(to - x0) < 3) return;
        var a = client.timeAt(Math.min(x0, to)), b = client.timeAt(Math.max(x0, to));
        if (b > a) link.zoom([a, b]);
        client.dragged = true;
      });
      spec.canvas.addEventListener('dblclick', function () { link.zoom(null); });
      link.clients.push(client);
      return client;
    };
    api.links.push(link);
    return link;
  }

  // --- the verdict, its evidence and fixes, and the verdict over time
  function verdictSection(rec, parent) {
    var d = rec.diagnosis;
    el('h2', null, 'Verdict', parent);
    var b = d.bottlenecks && d.bottlenecks.length ? d.bottlenecks[0] : null;
    var text = 'VERDICT: ' + d.verdict;
    if (b) {
      text += ' (' + b.kind + ') - ' + b.share_text + ', confidence ' +
        num(b.confidence);
    }
    el('div', 'verdict' + (d.verdict === 'none' ? ' none' : ''), text, parent);
    if (d.headroom) el('p', null, d.headroom, parent);
    if (b) {
      el('h3', null, 'Evidence', parent);
      var ev = el('ul', null, null, parent);
      b.evidence.forEach(function (e) { el('li', null, e, ev); });
      el('h3', null, 'Fixes, in order', parent);
      var fx = el('ol', null, null, parent);
      b.fixes.forEach(function (f) { el('li', null, f, fx); });
    }
    if (d.bottlenecks && d.bottlenecks.length > 1) {
      el('h3', null, 'Other bottlenecks', parent);
      var ob = el('ul', null, null, parent);
      d.bottlenecks.slice(1).forEach(function (o) {
        el('li', null, o.resource + ' (' + o.kind + '): ' + o.share_text, ob);
      });
    }
    if (d.findings && d.findings.length) {
      el('h3', null, 'Findings', parent);
      var fl = el('ul', null, null, parent);
      d.findings.forEach(function (f) {
        el('li', null, f.severity + ': ' + f.message + (f.hint ? ' (' + f.hint + ')' : ''), fl);
      });
    }
    verdictOverTime(rec, parent);
  }

  function verdictLabel(v) {
    if (!v) return 'no thread seen';
    return v.verdict + (v.kind ? ' (' + v.kind + ')' : '');
  }

  function verdictOverTime(rec, parent) {
    var t = rec.timeline;
    el('h3', null, 'Verdict over time (today\'s rules re-run on every ' + num(t.column_s, 1) +
      ' s)', parent);
    var holder = el('div', 'strip-wrap', null, parent);
    var canvas = el('canvas', 'strip', null, holder);
    var width = chartWidth(parent);
    canvas.width = width;
    canvas.height = 18;
    var ctx = canvas.getContext('2d');
    var client = rec.link.canvas({ canvas: canvas, holder: holder, draw: draw,
      x0: function () { return 0; },
      // In CSS pixels (the mouse's), which the strip's 100% width may scale from its own.
      width: function () { return canvas.getBoundingClientRect().width || width; } });
    // The columns the zoom shows, each as wide as the strip allows.
    function draw() {
      var c0 = client.cols[0], c1 = client.cols[1], cell = width / (c1 - c0 + 1);
      ctx.fillStyle = '#ffffff';
      ctx.fillRect(0, 0, width, 18);
      for (var i = c0; i <= c1; ++i) {
        var v = t.verdicts[i];
        ctx.fillStyle = v ? (VERDICT_COLORS[v.verdict] || '#999') : '#ffffff';
        var x0 = Math.floor((i - c0) * cell), x1 = Math.floor((i - c0 + 1) * cell);
        ctx.fillRect(x0, 0, Math.max(1, x1 - x0), 18);
      }
      // Each run of one verdict is labelled where the label fits.
      ctx.font = '11px system-ui, sans-serif';
      ctx.textBaseline = 'middle';
      for (var a = c0; a <= c1;) {
        var b = a;
        while (b <= c1 && verdictLabel(t.verdicts[b]) === verdictLabel(t.verdicts[a])) ++b;
        var label = verdictLabel(t.verdicts[a]);
        var left = Math.floor((a - c0) * cell), w = Math.floor((b - c0) * cell) - left;
        if (ctx.measureText(label).width + 8 <= w) {
          ctx.fillStyle = t.verdicts[a] && t.verdicts[a].verdict !== 'none' ? '#fff' : '#222';
          ctx.fillText(label, left + 4, 9);
        }
        a = b;
      }
    }
    draw();
    canvas.addEventListener('mousemove', function (ev) {
      var i = client.column(ev.clientX - canvas.getBoundingClientRect().left);
      if (i < 0) return;
      var v = t.verdicts[i];
      showTip(ev, num(t.columns[i], 1) + ' s: ' + verdictLabel(v) +
        (v && v.share_text !== undefined ? ', ' + v.share_text : ''));
    });
    canvas.addEventListener('mouseleave', hideTip);
    api.strips.push({ canvas: canvas, client: client });
    el('p', 'note', 'Hover any panel below to see the same moment in all of them; drag across ' +
      'a chart, this strip or the heat map to zoom them all, double-click to see the whole ' +
      'recording again. Each change says what moved, from the columns before it to the ' +
      'columns after it.', parent);
    // Each change with what moved (report/verdict_changes.h: the split's shares and the
    // threads whose main state changed, computed where the page's data is built).
    var why = {};
    (t.changes || []).forEach(function (c) { why[c.column] = c; });
    var changes = el('ul', 'verdict-changes', null, parent);
    var last = null, listed = 0, more = 0;
    t.verdicts.forEach(function (v, i) {
      var label = verdictLabel(v);
      if (label === last) return;
      last = label;
      if (listed >= 12) { ++more; return; }
      ++listed;
      var share = v && v.share_text !== undefined ? ' (' + v.share_text + ')' : '';
      var li = el('li', listed === 1 ? null : 'changed',
        (listed === 1 ? 'from ' : 'at ') + num(t.columns[i], 1) + ' s: ' + label + share, changes);
      if (why[i]) el('div', 'why', why[i].text, li);
    });
    if (more) el('li', 'note', 'and ' + more + ' more changes (hover the strip)', changes);
  }

  // --- the 8-state split over time, stacked
  function stackedChart(parent, title, xs, split, link) {
    var box = el('div', 'chart', null, parent);
    el('h3', null, title, box);
    // Cumulative shares, drawn top (idle) first so that each lower band paints over the rest.
    var series = [{ label: 's' }];
    var ys = [];
    for (var k = STATES.length - 1; k >= 0; --k) {
      ys.push(split.map(function (row) {
        if (!row) return null;
        var sum = 0;
        for (var j = 0; j <= k; ++j) sum += row[j];
        return sum * 100;
      }));
      (function (k) {
        series.push({
          label: STATES[k], stroke: COLORS[k], fill: COLORS[k], width: 0,
          value: function (u, v, si, di) {
            var row = split[di];
            return di === null || di === undefined || !row ? '-' : (row[k] * 100).toFixed(1) + '%';
          }
        });
      })(k);
    }
    var opts = {
      width: chartWidth(parent), height: 200, series: series,
      scales: { x: { time: false }, y: { range: [0, 100] } },
      axes: [{ label: 'seconds' }, { label: '% of thread time' }]
    };
    var chart = link.addChart(new uPlot(link.chartOptions(opts), [xs].concat(ys), box));
    api.charts.push(chart);
  }

  function splitSection(rec, parent) {
    var t = rec.timeline;
    el('h2', null, 'Where the time went, over time', parent);
    legend(parent);
    stackedChart(parent, 'Whole target (' + t.processes.length + ' process' +
      (t.processes.length === 1 ? '' : 'es') + ')', t.columns, t.split, rec.link);
    var procs = t.processes.filter(function (p) {
      return p.split.some(function (r) { return r !== null; });
    });
    if (procs.length > 1) {
      var shown = procs.slice(0, 12);
      shown.forEach(function (p) {
        stackedChart(parent, 'pid ' + p.pid + ' ' + p.name, t.columns, p.split, rec.link);
      });
      if (procs.length > shown.length) {
        el('p', 'note', (procs.length - shown.length) + ' more processes are in the heat map',
          parent);
      }
    }
  }

  // --- the thread x time heat map
  function decodeRuns(runs, n) {
    var states = new Int8Array(n).fill(-1), details = new Int32Array(n).fill(-1);
    var c = 0;
    for (var i = 0; i + 2 < runs.length && c < n; i += 3) {
      for (var j = 0; j < runs[i + 2] && c < n; ++j, ++c) {
        states[c] = runs[i];
        details[c] = runs[i + 1];
      }
    }
    return { states: states, details: details };
  }

  function heatmapSection(rec, parent) {
    var t = rec.timeline;
    var n = t.columns.length;
    el('h2', null, 'Threads over time', parent);
    el('p', 'note', 'One cell per thread and ' + num(t.column_s, 1) + ' s: the state the thread ' +
      'spent most of that time in. Threads of one process with the same name are one row (the ' +
      'state most of them were in); click a group to expand it. Hover for the thread, its state ' +
      'and the syscall and file or socket behind it.', parent);
    legend(parent);
    // Groups: by process, then thread name.
    var groups = [], byKey = {};
    t.threads.forEach(function (th) {
      var key = th.pid + '\u0000' + th.comm;
      var g = byKey[key];
      if (!g) {
        g = { pid: th.pid, process: th.process, comm: th.comm, threads: [], open: false };
        byKey[key] = g;
        groups.push(g);
      }
      var d = decodeRuns(th.runs, n);
      g.threads.push({ pid: th.pid, tid: th.tid, comm: th.comm, process: th.process,
        states: d.states, details: d.details });
    });
    groups.forEach(function (g) {
      // The group's cell: the state most of its threads were in.
      g.states = new Int8Array(n).fill(-1);
      for (var c = 0; c < n; ++c) {
        var counts = [0, 0, 0, 0, 0, 0, 0, 0], best = -1, bestCount = 0;
        g.threads.forEach(function (th) {
          var s = th.states[c];
          if (s >= 0 && ++counts[s] > bestCount) { bestCount = counts[s]; best = s; }
        });
        g.states[c] = best;
      }
      g.open = g.threads.length === 1;
    });
    var wrap = el('div', 'heatmap-wrap', null, parent);
    var canvas = el('canvas', 'heatmap', null, wrap);
    var rows = [];
    var cellPx = 1;
    var width = 0;
    var client = rec.link.canvas({ canvas: canvas, holder: wrap, draw: draw,
      x0: function () { return LABEL_PX; }, width: function () { return width - LABEL_PX; } });
    function layout() {
      rows = [];
      groups.forEach(function (g) {
        if (rows.length >= MAX_ROWS) return;
        if (g.threads.length === 1) {
          rows.push({ group: g, thread: g.threads[0] });
          return;
        }
        rows.push({ group: g, thread: null });
        if (!g.open) return;
        g.threads.forEach(function (th) {
          if (rows.length < MAX_ROWS) rows.push({ group: g, thread: th, member: true });
        });
      });
    }
    function draw() {
      layout();
      // The whole width of the column: more pixels per cell than the charts' cap.
      width = Math.max(280, (parent.clientWidth || 600) - 10);
      var c0 = client.cols[0], c1 = client.cols[1];
      cellPx = client.cellPx();
      var dpr = window.devicePixelRatio || 1;
      var height = Math.max(ROW_PX, rows.length * ROW_PX);
      canvas.style.width = width + 'px';
      canvas.style.height = height + 'px';
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
      var ctx = canvas.getContext('2d');
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.fillStyle = '#ffffff';
      ctx.fillRect(0, 0, width, height);
      ctx.font = '10px system-ui, sans-serif';
      ctx.textBaseline = 'middle';
      rows.forEach(function (r, i) {
        var y = i * ROW_PX;
        var states = r.thread ? r.thread.states : r.group.states;
        for (var c = c0; c <= c1; ++c) {
          var s = states[c];
          if (s < 0) continue;
          ctx.fillStyle = COLORS[s];
          ctx.fillRect(LABEL_PX + (c - c0) * cellPx, y, Math.ceil(cellPx), ROW_PX - 1);
        }
        ctx.fillStyle = '#222';
        var label;
        if (r.thread && !r.member) {
          label = r.group.pid + ' ' + r.group.process + ' / ' + r.thread.comm + ' ' + r.thread.tid;
        } else if (r.member) {
          label = '    tid ' + r.thread.tid;
        } else {
          label = (r.group.open ? '\u25be ' : '\u25b8 ') + r.group.pid + ' ' + r.group.process +
            ' / ' + r.group.comm + ' \u00d7' + r.group.threads.length;
        }
        // fillText draws the name as text: no markup is ever parsed from it.
        ctx.fillText(label.replace(/[\u0000-\u001f\u007f]/g, '\u2423'), 2, y + ROW_PX / 2,
          LABEL_PX - 6);
      });
      client.line.style.height = height + 'px';
    }
    function hit(ev) {
      var r = canvas.getBoundingClientRect();
      var x = ev.clientX - r.left, y = ev.clientY - r.top;
      var row = rows[Math.floor(y / ROW_PX)];
      if (!row) return null;
      return { row: row, column: x < LABEL_PX ? -1 : client.column(x) };
    }
    function describe(h) {
      var r = h.row;
      var lines = [];
      if (r.thread) {
        lines.push('thread ' + r.thread.tid + ' "' + r.thread.comm + '" of pid ' + r.thread.pid +
          ' "' + r.thread.process + '"');
      } else {
        lines.push(r.group.threads.length + ' threads "' + r.group.comm + '" of pid ' +
          r.group.pid + ' "' + r.group.process + '"');
      }
      if (h.column < 0) return lines.join('\n');
      var end = h.column + 1 < n ? t.columns[h.column + 1] : rec.diagnosis.duration_s;
      lines.push(num(t.columns[h.column], 1) + ' s to ' + num(end, 1) + ' s');
      var s = r.thread ? r.thread.states[h.column] : r.group.states[h.column];
      lines.push('state: ' + (s < 0 ? 'not seen' : STATES[s]));
      if (r.thread) {
        var d = r.thread.details[h.column];
        if (d >= 0) lines.push('in: ' + t.details[d]);
      } else if (s >= 0) {
        var count = r.group.threads.filter(function (th) { return th.states[h.column] === s; })
          .length;
        lines.push(count + ' of ' + r.group.threads.length + ' threads');
      }
      return lines.join('\n');
    }
    canvas.addEventListener('mousemove', function (ev) {
      var h = hit(ev);
      if (h) showTip(ev, describe(h)); else hideTip();
    });
    canvas.addEventListener('mouseleave', hideTip);
    canvas.addEventListener('click', function (ev) {
      // The end of a drag (a zoom) is not a click on a group.
      if (client.dragged) { client.dragged = false; return; }
      var h = hit(ev);
      if (!h || h.row.group.threads.length === 1) return;
      h.row.group.open = !h.row.group.open;
      draw();
    });
    draw();
    if (groups.length && rows.length >= MAX_ROWS) {
      el('p', 'note', 'The first ' + MAX_ROWS + ' rows are drawn; collapse a group to see more.',
        parent);
    }
    api.heatmaps.push({
      canvas: canvas,
      // Rows as drawn (y in CSS pixels from the canvas's top), and the x of a column's centre.
      rows: function () {
        return rows.map(function (r, i) {
          return { y: i * ROW_PX + ROW_PX / 2, pid: r.group.pid, comm: r.group.comm,
            tid: r.thread ? r.thread.tid : null, group: !r.thread, open: r.group.open };
        });
      },
      // The x of a column's centre (null: the zoom hides it), and the link's canvas client.
      columnX: function (c) {
        return c < client.cols[0] || c > client.cols[1] ? null
          : LABEL_PX + (c - client.cols[0] + 0.5) * cellPx;
      },
      client: client
    });
  }

  // --- USE panels
  // link: the recording's time link when xs are its columns (null: an axis of its own).
  function lineChart(parent, title, xs, values, unit, link) {
    var box = el('div', 'chart', null, parent);
    el('h3', null, title + ' (' + unit + ')', box);
    var opts = {
      width: Math.min(520, chartWidth(parent)), height: 150,
      // A column without a read of its own (null) is bridged: the line joins the reads around it.
      series: [{ label: 's' }, { label: title, stroke: '#1f77b4', fill: 'rgba(31,119,180,0.15)',
        width: 1.5, spanGaps: true, points: { show: values.length < 60 } }],
      scales: { x: { time: false } },
      axes: [{}, { size: 60 }]
    };
    var chart = link ? link.addChart(new uPlot(link.chartOptions(opts), [xs, values], box))
      : new uPlot(opts, [xs, values], box);
    api.charts.push(chart);
  }

  function systemTable(rec, parent) {
    var s = rec.diagnosis.system;
    if (!s) return;
    var rowsSpec = [
      ['CPUs allowed / online', num(s.cpus_allowed, 1) + ' / ' + s.cpus_online, '/proc/stat, cgroup'],
      ['system CPU utilisation', pct(s.cpu_utilization), '/proc/stat'],
      ['runnable tasks (avg)', num(s.run_queue_avg), '/proc/loadavg'],
      ['PSI cpu / memory / io some', pct(s.psi_cpu_some) + ' / ' + pct(s.psi_memory_some) + ' / ' +
        pct(s.psi_io_some), '/proc/pressure'],
      ['memory available', num(s.mem_available_bytes / 1e6, 0) + ' MB', '/proc/meminfo'],
      ['major faults', num(s.majflt_per_s, 1) + ' /s', '/proc/vmstat'],
      ['TCP retransmits', num(s.tcp_retrans_per_s, 1) + ' /s', '/proc/net/snmp']
    ];
    var table = el('table', null, null, parent);
    var head = el('tr', null, null, table);
    ['whole recording', 'value', 'source'].forEach(function (h) { el('th', null, h, head); });
    rowsSpec.forEach(function (r) {
      var tr = el('tr', null, null, table);
      el('td', null, r[0], tr);
      el('td', 'num', r[1], tr);
      el('td', 'source', r[2], tr);
    });
  }

  function useSection(rec, parent) {
    var t = rec.timeline;
    el('h2', null, 'USE: utilisation, saturation, errors', parent);
    systemTable(rec, parent);
    var connections = false;
    t.use.forEach(function (p) {
      if (!p.series.length) return;
      el('h3', null, p.panel, parent);
      el('div', 'source', 'source: ' + p.source, parent);
      var charts = el('div', 'charts', null, parent);
      p.series.forEach(function (s) {
        lineChart(charts, s.name, t.columns, s.values, s.unit, rec.link);
      });
      if (p.panel === 'Network') {
        connectionsPanel(rec, parent);
        connections = true;
      }
    });
    if (!connections) connectionsPanel(rec, parent);
  }

  // --- each connection's round-trip time (tcp_info): the slowest ones, the rest summed up
  function connectionsPanel(rec, parent) {
    var c = rec.timeline.connections;
    if (!c || !c.shown.length) return;
    var box = el('div', 'connections', null, parent);
    el('h3', null, 'Connections: round-trip time, the ' + c.shown.length + ' slowest of ' +
      c.connections, box);
    el('div', 'source', 'source: ' + c.source, box);
    var names = {};
    rec.timeline.processes.forEach(function (p) { names[p.pid] = p.name; });
    function label(k) {
      return k.peer + ' - :' + k.local_port + ' ' + (names[k.pid] || '') + ' (pid ' + k.pid + ')';
    }
    var srtt = c.shown.map(function (k) { return { name: label(k), values: k.srtt_ms }; });
    if (c.rest) {
      srtt.push({ name: 'the other ' + c.rest.count + ': largest', values: c.rest.max_srtt_ms });
    }
    var charts = el('div', 'charts', null, box);
    multiLineChart(charts, { title: 'smoothed RTT (srtt)', unit: 'ms',
      source: 'tcpi_rtt: the largest read of each connection in each column', series: srtt },
    rec.timeline.columns, rec.link);
    multiLineChart(charts, { title: 'retransmitted segments', unit: 'per column',
      source: 'tcpi_total_retrans: its growth in each column', series: c.shown.map(function (k) {
        return { name: label(k), values: k.retransmits };
      }) }, rec.timeline.columns, rec.link);
    var table = el('table', 'connection-table', null, box);
    var head = el('tr', null, null, table);
    ['peer', 'local port', 'process', 'the peer is', 'largest srtt', 'mean rttvar',
      'retransmits'].forEach(function (h) { el('th', null, h, head); });
    c.shown.forEach(function (k) {
      var vars = k.rttvar_ms.filter(function (v) { return v !== null; });
      var mean = vars.reduce(function (a, v) { return a + v; }, 0) / Math.max(1, vars.length);
      var tr = el('tr', null, null, table);
      el('td', null, k.peer, tr);
      el('td', 'num', k.local_port, tr);
      el('td', null, (names[k.pid] || '') + ' (pid ' + k.pid + ')', tr);
      el('td', null, k.side === 'client' ? 'our client' : 'an upstream we called', tr);
      el('td', 'num', num(k.max_srtt_ms, 3) + ' ms', tr);
      el('td', 'num', num(mean, 3) + ' ms', tr);
      el('td', 'num', k.total_retransmits, tr);
    });
    if (c.rest) {
      el('p', 'note', 'and ' + c.rest.count + ' more connections, each below the ones above: ' +
        'the chart draws their largest srtt per column', box);
    }
    api.connections.push(box);
  }

  // --- the services' own statistics over time (schema 5: every poll of each probe)
  var SERIES_COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b',
    '#e377c2', '#17becf', '#bcbd22'];
  function multiLineChart(parent, c, xs, link) {
    var box = el('div', 'chart', null, parent);
    el('h3', null, c.title + (c.unit ? ' (' + c.unit + ')' : ''), box);
    el('div', 'source', c.source, box);
    var series = [{ label: 's' }];
    c.series.forEach(function (s, i) {
      var colour = SERIES_COLORS[i % SERIES_COLORS.length];
      var line = { label: s.name, stroke: colour, width: 1.5, spanGaps: true,
        points: { show: xs.length < 60 } };
      if (c.series.length === 1) line.fill = 'rgba(31,119,180,0.15)';
      series.push(line);
    });
    var chart = link.addChart(new uPlot(link.chartOptions({
      width: Math.min(520, chartWidth(parent)), height: 170, series: series,
      scales: { x: { time: false } }, axes: [{}, { size: 60 }]
    }), [xs].concat(c.series.map(function (s) { return s.values; })), box));
    api.charts.push(chart);
  }

  function servicesSection(rec, parent) {
    var services = rec.services;
    if (!services || !services.length) return;
    el('h2', null, 'Services over time (their own statistics)', parent);
    el('p', 'note', 'What each service said about itself at every poll, per ' +
      num(rec.timeline.column_s, 1) + ' s column: rates between polls, gauges averaged.', parent);
    services.forEach(function (s) {
      var box = el('div', 'service', null, parent);
      el('h3', null, s.kind + ' ' + s.endpoint, box);
      el('div', 'source', 'source: ' + s.kind + ' probe ' + s.endpoint + ': ' + s.how + ', ' +
        s.polls + ' polls' + (s.failed ? ', ' + s.failed + ' failed (' + s.error +
        (s.hint ? '; ' + s.hint : '') + ')' : ''), box);
      if (!s.charts.length) {
        el('p', 'note', 'no poll read the service: nothing to draw', box);
        return;
      }
      var charts = el('div', 'charts', null, box);
      s.charts.forEach(function (c) {
        multiLineChart(charts, c, rec.timeline.columns, rec.link);
      });
      api.services.push(box);
    });
  }

  // --- a multi-tier recording: each tier's verdict and the tier that limits the whole
  function tierVerdict(t) {
    var d = t.diagnosis, b = d.bottlenecks && d.bottlenecks.length ? d.bottlenecks[0] : null;
    return b ? t.verdict + ' (' + b.kind + ') - ' + b.share_text : t.verdict;
  }

  function tiersSection(rec, index, parent) {
    var tiers = rec.tiers;
    if (!tiers) return;
    var box = el('div', 'tiers', null, parent);
    el('h2', null, 'Tiers: ' + tiers.tiers.length + ' (each a process and its children)', box);
    var lim = tiers.limiting_tier;
    var limiting = lim.tier === null ? null : tiers.tiers[lim.tier - 1];
    el('div', 'verdict' + (limiting && limiting.verdict !== 'none' ? '' : ' none'),
      limiting ? 'LIMITING TIER: ' + lim.tier + ' (pid ' + limiting.root_pid + ' ' +
        limiting.name + '): ' + tierVerdict(limiting) : 'no tier limits the whole', box);
    if (lim.reason) el('p', null, lim.reason, box);
    if (lim.path && lim.path.length > 1) {
      el('p', 'note', 'the calls from the first tier to the limit: tier ' +
        lim.path.join(' \u2192 tier '), box);
    }
    var table = el('table', null, null, box);
    var head = el('tr', null, null, table);
    ['tier', 'process', 'verdict', 'calls', 'evidence'].forEach(function (h) {
      el('th', null, h, head);
    });
    tiers.tiers.forEach(function (t) {
      var tr = el('tr', t.tier === lim.tier ? 'limiting' : null, null, table);
      el('td', 'num', t.tier, tr);
      el('td', null, 'pid ' + t.root_pid + ' ' + t.name + (t.pids.length > 1 ? ' (' +
        t.pids.length + ' processes)' : ''), tr);
      el('td', null, tierVerdict(t), tr);
      el('td', null, t.calls.map(function (c) {
        return 'tier ' + c.tier + ' at ' + c.address + ' (' + c.connections + ')';
      }).join(', ') || '-', tr);
      var b = t.diagnosis.bottlenecks && t.diagnosis.bottlenecks[0];
      el('td', null, b && b.evidence.length ? b.evidence[0] : '-', tr);
    });
    tierGraphs(rec, index, box);
    el('p', 'note', 'The panels below are of every tier together, as one target.', box);
    api.tiers.push(box);
  }

  // Each tier's own stacks, taken after the window for its verdict (diagnose --pid A --pid B
  // --record): a flame graph per tier that kept some, drawn like the recording's.
  function tierGraphs(rec, index, parent) {
    var graphs = rec.tier_flamegraphs || [];
    if (!graphs.length) return;
    graphs.forEach(function (g, j) {
      var box = document.querySelector('#flamegraphs .flamegraph.tier[data-recording="' +
        index + '"][data-graph="' + j + '"]');
      if (!box) return;
      var t = rec.tiers.tiers.filter(function (x) { return x.root_pid === g.root_pid; })[0];
      el('h3', null, 'Tier ' + (t ? t.tier : '?') + ' (pid ' + g.root_pid + (t ? ' ' + t.name : '') +
        '): ' + (g.off_cpu ? 'off-CPU time' : 'on-CPU') + ' stacks for its verdict' +
        (t ? ', ' + tierVerdict(t) : ''), parent);
      var what = g.title || (g.off_cpu ? 'off-CPU time' : 'on-CPU samples') + ' of pid ' + g.root_pid;
      el('div', 'source', 'source: ' + what + ' (' + g.stacks + ' distinct stacks), taken ' +
        'after the window for this tier alone; click a frame to zoom in', parent);
      box.setAttribute('data-tier', String(g.root_pid));
      parent.appendChild(box);
      api.flamegraphs.push(box.querySelector('svg'));
      api.tierGraphs.push(box);
    });
  }

  // --- the load's latency percentiles per second, on the recording's time axis (each second's
  // histograms merged across the generator's threads: loadgen/interval_histograms.h), with the
  // verdict of each column behind them
  function latencySection(rec, parent) {
    var l = rec.load, t = rec.timeline;
    var box = el('div', 'latency', null, parent);
    el('h2', null, 'Latency over time', box);
    api.latency.push({ box: box, chart: null });
    if (!l) {
      el('p', 'note', 'No load in this recording: nothing measured the service\'s latency while ' +
        'it was recorded. chokepoint diagnose --pid PID --load URL --record FILE (or chokepoint ' +
        'load URL --record FILE) keeps the load with its percentiles per second.', box);
      return;
    }
    if (l.error) {
      el('p', 'note', 'The load driven while this was recorded failed: ' + l.error, box);
      return;
    }
    var tl = l.timeline || [];
    if (!tl.some(function (b) { return b.p99_ms !== undefined; })) {
      el('p', 'note', 'This recording\'s load kept the mean and the maximum latency of each ' +
        'second only (it was made before chokepoint kept percentiles per second): they are in ' +
        'the Load panel below. Record again for the percentiles over time.', box);
      return;
    }
    var open = l.mode === 'open';
    el('div', 'source', 'source: chokepoint load, ' + (open ? 'open loop at ' +
      num(l.target_rate, 0) + ' req/s' : 'closed loop') + ', ' + l.connections +
      ' connections: each second\'s percentiles of the responses that ended in it, ' +
      (open ? 'from each request\'s intended send time (corrected for coordinated omission, as ' +
        'the whole run\'s numbers are)' : 'from each request\'s send (a closed loop sends when ' +
        'the previous response came: the intended time is the send time)') +
      '; dashed: service time, from when a connection took the request (uncorrected)', box);
    // Second s of the load covers [s, s + 1) after its start; drawn at its middle, on the
    // recording's axis when there is one (seconds from the window's first tick).
    var offset = t && l.start_unix_s ? l.start_unix_s - t.start_unix_s : 0;
    var range = null, before = 0, after = 0;
    if (t && t.columns.length) {
      var last = t.columns[t.columns.length - 1];
      range = [t.columns[0], Math.max(last, t.columns[0] + t.column_s)];
    }
    var xs = [], series = [[], [], [], [], []];
    // A second that overlaps the window is drawn (the line from a point just outside enters the
    // plot at its edge); the seconds wholly before or after it are counted.
    tl.forEach(function (b) {
      var x = offset + b.second + 0.5;
      if (range && x + 0.5 <= range[0]) { ++before; return; }
      if (range && x - 0.5 >= range[1]) { ++after; return; }
      xs.push(x);
      [b.p50_ms, b.p99_ms, b.p999_ms, b.service_p99_ms, b.requests].forEach(function (v, k) {
        series[k].push(v === null || v === undefined || (k < 4 && !(v > 0)) ? null : v);
      });
    });
    if (range) {
      el('p', 'note', 'On the window\'s time axis (seconds from its first sample), behind each ' +
        'column its verdict\'s colour.' + (before || after ? ' The load ran ' + before +
        ' s before and ' + after + ' s after the window: those seconds are in the Load panel ' +
        'below, not here.' : ''), box);
    }
    if (!xs.length) {
      el('p', 'note', 'No second of the load fell inside the window.', box);
      return;
    }
    var bands = function (u) {
      if (!t || !t.verdicts) return;
      var ctx = u.ctx;
      ctx.save();
      ctx.globalAlpha = 0.18;
      t.verdicts.forEach(function (v, i) {
        if (!v) return;
        var from = t.columns[i], to = i + 1 < t.columns.length ? t.columns[i + 1] : from + t.column_s;
        var x0 = u.valToPos(Math.max(from, range[0]), 'x', true);
        var x1 = u.valToPos(Math.min(to, range[1]), 'x', true);
        if (!(x1 > x0)) return;
        ctx.fillStyle = VERDICT_COLORS[v.verdict] || '#999';
        ctx.fillRect(x0, u.bbox.top, x1 - x0, u.bbox.height);
      });
      ctx.restore();
    };
    var chartBox = el('div', 'chart', null, box);
    el('h3', null, 'latency per second (ms, log scale)', chartBox);
    var pts = { show: xs.length < 60 };
    var opts = {
      width: chartWidth(parent), height: 220,
      series: [{ label: 's' },
        { label: 'p50', stroke: '#2ca02c', width: 1.5, points: pts },
        { label: 'p99', stroke: '#d62728', width: 2, points: pts },
        { label: 'p99.9', stroke: '#9467bd', width: 1.5, points: pts },
        { label: 'service p99', stroke: '#7f7f7f', width: 1.5, dash: [5, 4], points: pts }],
      scales: { x: range ? { time: false, range: range } : { time: false }, y: { distr: 3 } },
      axes: [{ label: 'seconds' }, { label: 'ms' }],
      hooks: { drawClear: [bands] }
    };
    var chartData = [xs, series[0], series[1], series[2], series[3]];
    // On the window's axis it is linked to the other panels; a load run alone has its own axis.
    var chart = rec.link ? rec.link.addChart(new uPlot(rec.link.chartOptions(opts), chartData,
      chartBox)) : new uPlot(opts, chartData, chartBox);
    api.charts.push(chart);
    api.latency[api.latency.length - 1] = { box: box, chart: chart, xs: xs, p50: series[0],
      p99: series[1], p999: series[2], service_p99: series[3], requests: series[4],
      offset_s: offset };
  }

  // --- the load diagnose --load drove
  function loadSection(rec, parent) {
    var l = rec.load;
    if (!l) return;
    el('h2', null, 'Load', parent);
    el('p', null, (l.mode === 'open' ? 'open loop' : 'closed loop') + ', ' + l.connections +
      ' connections, ' + num(l.duration_s, 1) + ' s: ' + num(l.rps, 0) + ' requests/s, ' +
      l.requests + ' requests', parent);
    var table = el('table', null, null, parent);
    var head = el('tr', null, null, table);
    ['ms', 'p50', 'p90', 'p99', 'p99.9', 'max'].forEach(function (h) { el('th', null, h, head); });
    [['latency (from the intended send time)', l.latency_ms],
      ['service time (from the actual send)', l.service_time_ms]].forEach(function (r) {
      if (!r[1]) return;
      var tr = el('tr', null, null, table);
      el('td', null, r[0], tr);
      ['p50', 'p90', 'p99', 'p99.9', 'max'].forEach(function (k) {
        el('td', 'num', num(r[1][k], 3), tr);
      });
    });
    if (l.errors) {
      var errs = Object.keys(l.errors).filter(function (k) { return l.errors[k] > 0; });
      el('p', null, errs.length ? 'errors: ' + errs.map(function (k) {
        return k + ' ' + l.errors[k];
      }).join(', ') : 'no errors', parent);
    }
    if (l.timeline && l.timeline.length > 1) {
      var xs = l.timeline.map(function (b) { return b.second; });
      var charts = el('div', 'charts', null, parent);
      lineChart(charts, 'requests', xs, l.timeline.map(function (b) { return b.requests; }), '/s');
      lineChart(charts, 'mean latency', xs, l.timeline.map(function (b) { return b.mean_ms; }), 'ms');
      lineChart(charts, 'max latency', xs, l.timeline.map(function (b) { return b.max_ms; }), 'ms');
      if (l.timeline.some(function (b) { return b.errors > 0; })) {
        lineChart(charts, 'errors', xs, l.timeline.map(function (b) { return b.errors; }), '/s');
      }
    }
  }

  // --- the stacks diagnose kept: the flame graph the page carries (drawn and made interactive by
  // render/flamegraph_svg and its script), moved into this recording's column
  function stacksSection(rec, index, parent) {
    if (!rec.flamegraph) return;
    var box = document.querySelector('#flamegraphs .flamegraph:not(.recorded)[data-recording="' +
      index + '"]');
    if (!box) return;
    el('h2', null, 'Stacks: ' + (rec.flamegraph.off_cpu ? 'off-CPU time' : 'on-CPU') +
      ' flame graph', parent);
    el('p', 'note', 'the stacks diagnose captured after its window to explain the verdict; ' +
      'click a frame to zoom in, the bottom frame or Reset Zoom to zoom out, Search to highlight',
    parent);
    parent.appendChild(box);
    api.flamegraphs.push(box.querySelector('svg'));
  }

  // --- the stacks chokepoint record kept over time: on-CPU and off-CPU flame graphs of the whole
  // recording and of the verdict's window, drawn like the one above
  function recordedStacksSection(rec, index, parent) {
    var graphs = rec.recorded_flamegraphs || [];
    if (!graphs.length) return;
    el('h2', null, 'Stacks over time', parent);
    el('p', 'note', 'the stacks chokepoint record sampled while it recorded (on-CPU: perf ' +
      'samples; off-CPU: time blocked, with the waker\'s stack above "--- woken by ---"); ' +
      'click a frame to zoom in, the bottom frame or Reset Zoom to zoom out, Search to highlight',
    parent);
    graphs.forEach(function (g, j) {
      var box = document.querySelector('#flamegraphs .flamegraph.recorded[data-recording="' +
        index + '"][data-graph="' + j + '"]');
      if (!box) return;
      el('h3', null, (g.off_cpu ? 'Off-CPU time' : 'On-CPU') + ', ' + g.scope, parent);
      parent.appendChild(box);
      api.flamegraphs.push(box.querySelector('svg'));
    });
  }

  // --- flame graphs of a time range the reader chooses, from the stack slices record kept
  // (report/range_stacks.h): dragging across the time bar merges the slices that overlap the
  // range and draws that range's on-CPU and off-CPU graphs (frames on a canvas, with fillText)
  var FRAME_PX = 16;

  // The merged stacks of a kind over [from_s, to_s): a tree of {name, value, children}, and the
  // slices it took.
  function rangeTree(rs, kind, from_s, to_s) {
    var root = { name: 'all', value: 0, children: Object.create(null), list: null, depth: 0 };
    var used = [];
    kind.slices.forEach(function (sl, i) {
      if (!(sl.to_s > from_s && sl.from_s < to_s)) return;
      used.push(i);
      for (var k = 0; k + 1 < sl.counts.length; k += 2) {
        var frames = rs.stacks[sl.counts[k]], value = sl.counts[k + 1];
        var node = root;
        node.value += value;
        for (var f = 0; f < frames.length; ++f) {
          var name = rs.frames[frames[f]];
          var child = node.children[name];
          if (!child) {
            // Own-property map keyed by hostile names: no prototype to collide with.
            child = { name: name, value: 0, children: Object.create(null), list: null,
              depth: node.depth + 1, parent: node };
            node.children[name] = child;
          }
          child.value += value;
          node = child;
        }
      }
    });
    return { root: root, used: used };
  }

  function sortedChildren(node) {
    if (!node.list) {
      node.list = Object.keys(node.children).sort().map(function (k) { return node.children[k]; });
    }
    return node.list;
  }

  function hueOf(name, offCpu) {
    var h = 0;
    for (var i = 0; i < name.length && i < 40; ++i) h = (h * 31 + name.charCodeAt(i)) >>> 0;
    var r = (h % 1000) / 1000;
    return offCpu ? 'rgb(' + Math.round(80 + 60 * r) + ',' + Math.round(120 + 70 * r) + ',' +
      Math.round(200 + 55 * r) + ')'
      : 'rgb(' + Math.round(205 + 50 * r) + ',' + Math.round(80 + 130 * r) + ',' +
      Math.round(40 * r) + ')';
  }

  // One flame graph on a canvas: root at the bottom; click a frame to zoom into it, a frame below
  // it (or the bottom one) to zoom out; hover for the frame's name and share.
  function rangeFlameGraph(parent, offCpu, unit) {
    var canvas = el('canvas', 'range-flame', null, parent);
    var g = { canvas: canvas, tree: null, focus: null, boxes: [] };
    function depthOf(node) {
      var d = 0;
      sortedChildren(node).forEach(function (c) { d = Math.max(d, 1 + depthOf(c)); });
      return d;
    }
    function draw() {
      var width = chartWidth(parent);
      var root = g.tree.root;
      var depth = root.value > 0 ? depthOf(root) + 1 : 1;
      canvas.width = width;
      canvas.height = depth * FRAME_PX;
      var ctx = canvas.getContext('2d');
      ctx.font = '11px system-ui, sans-serif';
      ctx.textBaseline = 'middle';
      g.boxes = [];
      if (root.value <= 0) {
        ctx.fillStyle = '#666';
        ctx.fillText('no ' + (offCpu ? 'off-CPU' : 'on-CPU') + ' stacks in this range', 4, 8);
        return;
      }
      var focus = g.focus || root;
      function box(node, x, w) {
        var y = canvas.height - (node.depth + 1) * FRAME_PX;
        ctx.fillStyle = node === root ? '#bbb' : hueOf(node.name, offCpu);
        ctx.fillRect(x, y, Math.max(0.5, w - 0.5), FRAME_PX - 1);
        if (w > 30) {
          var text = node.name, room = w - 6;
          if (ctx.measureText(text).width > room) {
            var n = Math.floor(text.length * room / ctx.measureText(text).width) - 2;
            text = n > 2 ? text.slice(0, n) + '..' : '';
          }
          ctx.fillStyle = '#000';
          if (text) ctx.fillText(text, x + 3, y + FRAME_PX / 2);
        }
        g.boxes.push({ x: x, y: y, w: w, node: node });
      }
      // The focus's ancestors span the width; the focus and what it called are scaled to it.
      for (var a = focus.parent; a; a = a.parent) box(a, 0, width);
      (function layout(node, x, w) {
        box(node, x, w);
        var cx = x;
        sortedChildren(node).forEach(function (c) {
          var cw = w * c.value / node.value;
          if (cw >= 0.3) layout(c, cx, cw);
          cx += cw;
        });
      })(focus, 0, width);
    }
    function hit(ev) {
      var r = canvas.getBoundingClientRect();
      var x = (ev.clientX - r.left) * canvas.width / r.width;
      var y = (ev.clientY - r.top) * canvas.height / r.height;
      for (var i = 0; i < g.boxes.length; ++i) {
        var b = g.boxes[i];
        if (x >= b.x && x < b.x + b.w && y >= b.y && y < b.y + FRAME_PX) return b.node;
      }
      return null;
    }
    canvas.addEventListener('mousemove', function (ev) {
      var n = hit(ev);
      if (!n) { hideTip(); return; }
      var v = offCpu ? num(n.value / 1e9, 3) + ' s blocked' : n.value + ' ' + unit;
      showTip(ev, n.name + '\n' + v + ' (' + pct(n.value / g.tree.root.value) + ')');
    });
    canvas.addEventListener('mouseleave', hideTip);
    canvas.addEventListener('click', function (ev) {
      var n = hit(ev);
      if (!n) return;
      g.focus = n === g.tree.root ? null : n;
      draw();
    });
    g.show = function (tree) { g.tree = tree; g.focus = null; draw(); };
    // The frames drawn, for the browser tests: [name, value, depth].
    g.frames = function () {
      return g.boxes.map(function (b) { return [b.node.name, b.node.value, b.node.depth]; });
    };
    return g;
  }

  function rangeStacksSection(rec, parent) {
    var rs = rec.range_stacks;
    if (!rs) return;
    var kinds = [];
    if (rs.on_cpu) kinds.push({ key: 'on_cpu', off: false, data: rs.on_cpu });
    if (rs.off_cpu) kinds.push({ key: 'off_cpu', off: true, data: rs.off_cpu });
    var end_s = rec.diagnosis.duration_s || 0;
    kinds.forEach(function (k) {
      k.data.slices.forEach(function (sl) { end_s = Math.max(end_s, sl.to_s); });
    });
    if (!(end_s > 0)) return;
    el('h3', null, 'Flame graphs of a time range', parent);
    var merged = kinds.some(function (k) { return k.data.merged_by > 1; });
    el('p', 'note', 'drag across the bar (time from the first sample; its height is each ' +
      'slice\'s stacks) to choose a range: the graphs below then hold only the slices that ' +
      'overlap it' + (merged ? ' (' + kinds[0].data.merged_by + ' slices merged per bar)' : '') +
      '; a click without a drag chooses the whole recording again', parent);
    var bar = el('canvas', 'brush', null, parent);
    var width = chartWidth(parent);
    bar.width = width;
    bar.height = 40;
    var label = el('p', 'range-label', null, parent);
    var graphs = kinds.map(function (k) {
      var h = el('h4', null, null, parent);
      var hz = k.data.frequency_hz;
      return { kind: k, title: h, graph: rangeFlameGraph(parent, k.off, 'samples' +
        (hz ? ' at ' + num(hz, 0) + ' Hz' : '')) };
    });
    var range = { from_s: 0, to_s: end_s, end_s: end_s, graphs: graphs, bar: bar };
    function xOf(s) { return Math.max(0, Math.min(width, s / end_s * width)); }
    function drawBar() {
      var ctx = bar.getContext('2d');
      ctx.clearRect(0, 0, width, 40);
      ctx.fillStyle = '#fff';
      ctx.fillRect(0, 0, width, 40);
      // Each kind's share of its largest slice, on-CPU above, off-CPU below.
      kinds.forEach(function (k, ki) {
        var totals = k.data.slices.map(function (sl) {
          var t = 0;
          for (var i = 1; i < sl.counts.length; i += 2) t += sl.counts[i];
          return t;
        });
        var max = Math.max.apply(null, totals.concat([1]));
        var y0 = kinds.length === 2 ? ki * 20 : 0, hh = kinds.length === 2 ? 19 : 39;
        ctx.fillStyle = k.off ? '#6f9fd8' : '#e0762f';
        k.data.slices.forEach(function (sl, i) {
          var h = Math.max(totals[i] > 0 ? 1 : 0, totals[i] / max * hh);
          var x0 = xOf(sl.from_s), x1 = xOf(sl.to_s);
          ctx.fillRect(x0, y0 + hh - h, Math.max(1, x1 - x0 - 1), h);
        });
      });
      if (range.from_s > 0 || range.to_s < end_s) {
        ctx.fillStyle = 'rgba(0,0,0,0.18)';
        ctx.fillRect(0, 0, xOf(range.from_s), 40);
        ctx.fillRect(xOf(range.to_s), 0, width - xOf(range.to_s), 40);
        ctx.strokeStyle = '#000';
        ctx.strokeRect(xOf(range.from_s) + 0.5, 0.5, xOf(range.to_s) - xOf(range.from_s) - 1, 39);
      }
    }
    range.select = function (from_s, to_s) {
      range.from_s = Math.max(0, Math.min(from_s, to_s));
      range.to_s = Math.min(end_s, Math.max(from_s, to_s));
      var whole = range.from_s <= 0 && range.to_s >= end_s;
      label.textContent = whole ? 'the whole recording (' + num(end_s, 1) + ' s)'
        : num(range.from_s, 1) + ' s to ' + num(range.to_s, 1) + ' s of ' + num(end_s, 1) + ' s';
      graphs.forEach(function (g) {
        var tree = rangeTree(rs, g.kind.data, range.from_s, range.to_s);
        var used = tree.used.map(function (i) { return g.kind.data.slices[i]; });
        var span = used.length ? num(used[0].from_s, 1) + ' s to ' +
          num(used[used.length - 1].to_s, 1) + ' s' : 'no slice';
        g.title.textContent = (g.kind.off ? 'Off-CPU time' : 'On-CPU') + ', ' + label.textContent +
          ': ' + used.length + ' of ' + g.kind.data.slices.length + ' slices (' + span + ')';
        g.graph.show(tree);
      });
      drawBar();
    };
    var dragFrom = null;
    function timeAt(ev) {
      var r = bar.getBoundingClientRect();
      return Math.max(0, Math.min(1, (ev.clientX - r.left) / r.width)) * end_s;
    }
    bar.addEventListener('mousedown', function (ev) { dragFrom = timeAt(ev); ev.preventDefault(); });
    bar.addEventListener('mousemove', function (ev) {
      var t = timeAt(ev);
      showTip(ev, num(t, 1) + ' s');
      if (dragFrom === null) return;
      range.from_s = Math.min(dragFrom, t);
      range.to_s = Math.max(dragFrom, t);
      drawBar();
    });
    bar.addEventListener('mouseleave', hideTip);
    window.addEventListener('mouseup', function (ev) {
      if (dragFrom === null) return;
      var t = timeAt(ev), from = dragFrom;
      dragFrom = null;
      // A click (under 3 px of movement): the whole recording again.
      if (Math.abs(xOf(t) - xOf(from)) < 3) range.select(0, end_s);
      else range.select(from, t);
    });
    range.select(0, end_s);
    // The panels' zoom chooses the range too (dragging this bar chooses it alone).
    if (rec.link) {
      rec.link.zooms.push(function (view) {
        range.select(view ? view[0] : 0, view ? view[1] : end_s);
      });
    }
    api.ranges.push(range);
  }

  function absentSection(rec, parent) {
    if (!rec.absent.length) return;
    el('h2', null, 'Not in this recording', parent);
    var ul = el('ul', 'absent', null, parent);
    rec.absent.forEach(function (a) {
      el('li', null, a.panel + ': ' + a.why + '. To get it: ' + a.how + '.', ul);
    });
  }

  function sourcesSection(rec, parent) {
    var src = rec.diagnosis.sources || {};
    el('h2', null, 'Sources', parent);
    var ul = el('ul', null, null, parent);
    Object.keys(src).forEach(function (name) {
      var s = src[name];
      el('li', null, name + ': ' + (s.available ? s.detail : 'missing - ' + s.hint), ul);
    });
  }

  // --- two recordings: the diff
  function diffSection(diff, parent) {
    el('h2', null, 'Before and after', parent);
    var table = el('table', null, null, parent);
    var head = el('tr', null, null, table);
    ['', 'before', 'after', 'change'].forEach(function (h) { el('th', null, h, head); });
    function row(label, b, a, change) {
      var tr = el('tr', null, null, table);
      el('td', null, label, tr);
      el('td', 'num', b, tr);
      el('td', 'num', a, tr);
      el('td', 'num', change, tr);
    }
    var vb = diff.before.verdict, va = diff.after.verdict;
    row('verdict', vb, va, vb === va ? '=' : 'changed');
    Object.keys(diff.time_split || {}).forEach(function (k) {
      var s = diff.time_split[k];
      row(k + ' (share of wall time)', pct(s.before), pct(s.after),
        (s.change >= 0 ? '+' : '') + (s.change * 100).toFixed(0) + ' pts');
    });
    (diff.bottlenecks || []).forEach(function (b) {
      row(b.resource + ' (' + b.kind + ')', b.before_share === null ? '-' : pct(b.before_share),
        b.after_share === null ? '-' : pct(b.after_share), b.change === null ? '' :
          (b.change >= 0 ? '+' : '') + (b.change * 100).toFixed(0) + ' pts');
    });
    Object.keys(diff.load || {}).forEach(function (k) {
      var s = diff.load[k];
      row(k, num(s.before, 3), num(s.after, 3), s.ratio === null ? '' : 'x' + num(s.ratio, 3));
    });
  }

  // --- a knee run (chokepoint knee -o): the knee curve and the USL fit
  // A vertical line at x = `at` across the plot, labelled.
  function markX(at, label, colour) {
    return function (u) {
      if (at === null || at === undefined) return;
      var x = u.valToPos(at, 'x', true);
      var ctx = u.ctx;
      ctx.save();
      ctx.strokeStyle = colour;
      ctx.fillStyle = colour;
      ctx.lineWidth = 2;
      ctx.setLineDash([6, 4]);
      ctx.beginPath();
      ctx.moveTo(x, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + u.bbox.height);
      ctx.stroke();
      ctx.font = '12px system-ui, sans-serif';
      ctx.fillText(label, x + 4, u.bbox.top + 14);
      ctx.restore();
    };
  }

  function kneeCurve(k, parent) {
    var curve = k.curve || [];
    if (!curve.length) return;
    el('h2', null, 'Knee curve', parent);
    var knee = k.knee || {};
    var text = knee.rate !== null && knee.rate !== undefined
      ? 'knee: ' + num(knee.rate, 0) + ' req/s meets ' + k.slo
      : 'no knee: no step met ' + k.slo;
    if (knee.first_failing_rate !== null && knee.first_failing_rate !== undefined) {
      text += '; ' + num(knee.first_failing_rate, 0) + ' req/s fails';
    }
    text += ' (' + knee.state + ' after ' + knee.steps + ' steps)';
    el('div', knee.rate === null ? 'verdict' : 'verdict none', text, parent);
    if (knee.saturated) el('p', null, 'saturated above the knee: ' + knee.saturated, parent);
    var xs = curve.map(function (c) { return c.offered_rate; });
    var slo = curve.map(function () { return k.slo_limit_ms; });
    var box = el('div', 'chart', null, parent);
    el('h3', null, 'served rate (req/s, left) and latency (ms, right) by offered rate (req/s)', box);
    var chart = new uPlot({
      width: chartWidth(parent), height: 260,
      series: [{ label: 'offered req/s' },
        { label: 'served req/s', scale: 'rps', stroke: '#1f77b4', width: 2 },
        { label: 'p50 ms', scale: 'ms', stroke: '#2ca02c', width: 1.5 },
        { label: 'p99 ms', scale: 'ms', stroke: '#d62728', width: 2 },
        { label: 'SLO limit ms', scale: 'ms', stroke: '#ff7f0e', width: 1.5, dash: [4, 4],
          points: { show: false } }],
      scales: { x: { time: false }, rps: {}, ms: { distr: 3 } },
      axes: [{ label: 'offered req/s' }, { scale: 'rps', size: 60, label: 'served req/s' },
        { scale: 'ms', side: 1, size: 60, label: 'latency ms (log)', grid: { show: false } }],
      hooks: { draw: [markX(knee.rate, 'knee', '#2e7d32')] }
    }, [xs, curve.map(function (c) { return c.achieved_rps; }),
      curve.map(function (c) { return c.p50_ms > 0 ? c.p50_ms : null; }),
      curve.map(function (c) { return c.p99_ms > 0 ? c.p99_ms : null; }), slo], box);
    api.charts.push(chart);

    el('h3', null, 'Steps, in the order run', parent);
    var table = el('table', null, null, parent);
    var head = el('tr', null, null, table);
    ['step', 'offered/s', 'served/s', 'p50 ms', 'p99 ms', 'errors', 'conns', 'target verdict',
      'result'].forEach(function (h) { el('th', null, h, head); });
    (k.steps || []).forEach(function (s, i) {
      var tr = el('tr', s.pass ? null : 'changed', null, table);
      var lat = s.latency_ms || {};
      el('td', 'num', i + 1, tr);
      el('td', 'num', num(s.offered_rate, 0), tr);
      el('td', 'num', num(s.achieved_rps, 1), tr);
      el('td', 'num', num(lat.p50, 3), tr);
      el('td', 'num', num(lat.p99, 3), tr);
      el('td', 'num', num(s.error_ratio * 100, 2) + '%', tr);
      el('td', 'num', s.connections, tr);
      el('td', null, s.diagnosis ? s.diagnosis.verdict : '', tr);
      el('td', null, (s.pass ? 'pass: ' : 'FAIL: ') + s.reason, tr);
    });
  }

  function uslFit(k, parent) {
    var u = k.usl;
    if (!u) return;
    el('h2', null, 'Universal Scalability Law fit', parent);
    if (u.error) {
      el('p', null, 'no fit: ' + u.error, parent);
      return;
    }
    var table = el('table', null, null, parent);
    [['lambda (req/s per unit of concurrency)', num(u.lambda, 1)],
      ['sigma (contention)', num(u.sigma, 4)], ['kappa (coherency)', num(u.kappa, 5)],
      ['R\u00b2', num(u.r2, 4)],
      ['peak concurrency N*', u.n_star === null ? 'none (kappa = 0)' : num(u.n_star, 1)],
      ['projected peak (req/s)', u.x_max === null ? 'no ceiling in sight' : num(u.x_max, 0)]
    ].forEach(function (r) {
      var tr = el('tr', null, null, table);
      el('td', null, r[0], tr);
      el('td', 'num', r[1], tr);
    });
    if (u.instances) {
      el('p', null, 'for ' + num(u.instances.target_rate, 0) + ' req/s: ' + u.instances.instances +
        ' instance(s) at ' + num(u.instances.rate_per_instance, 0) + ' req/s each, planning each at ' +
        num(u.instances.max_utilization * 100, 0) + '% of its peak', parent);
    }
    var pts = u.points || [];
    if (!pts.length) return;
    // The fitted curve, X(N) = lambda N / (1 + sigma (N - 1) + kappa N (N - 1)), drawn over
    // the measured levels and past the peak; the measured points as dots.
    var maxN = pts[pts.length - 1].concurrency;
    if (u.n_star !== null) maxN = Math.max(maxN, u.n_star * 1.5);
    var n = [];
    var levels = {};
    pts.forEach(function (p) { levels[p.concurrency] = p.throughput; });
    for (var i = 1; i <= 200; i++) n.push(1 + (maxN - 1) * (i - 1) / 199);
    pts.forEach(function (p) { n.push(p.concurrency); });
    n.sort(function (a, b) { return a - b; });
    var fitted = n.map(function (x) {
      return u.lambda * x / (1 + u.sigma * (x - 1) + u.kappa * x * (x - 1));
    });
    var measured = n.map(function (x) { return levels[x] === undefined ? null : levels[x]; });
    var box = el('div', 'chart', null, parent);
    el('h3', null, 'throughput (req/s) by concurrency: measured and fitted', box);
    var chart = new uPlot({
      width: chartWidth(parent), height: 240,
      series: [{ label: 'concurrency' },
        { label: 'measured req/s', stroke: '#1f77b4', width: 0, paths: function () { return null; },
          points: { show: true, size: 8, fill: '#1f77b4' } },
        { label: 'USL fit req/s', stroke: '#d62728', width: 2, points: { show: false } }],
      scales: { x: { time: false } },
      axes: [{ label: 'concurrency (connections)' }, { size: 60, label: 'req/s' }],
      hooks: { draw: [markX(u.n_star, 'peak', '#d62728')] }
    }, [n, measured, fitted], box);
    api.charts.push(chart);
  }

  // --- the page
  var recs = data.recordings;
  var loads = data.loads || [];
  var knees = data.knees || [];
  var usls = data.usls || [];
  el('h1', null, (recs.length ? 'chokepoint report: ' : knees.length ? 'chokepoint knee: '
    : usls.length ? 'chokepoint usl: ' : 'chokepoint load: ') +
    recs.concat(loads, knees, usls).map(function (r) { return r.label; }).join(' \u2192 '), root);
  if (data.diff) diffSection(data.diff, root);
  var cols = el('div', 'columns', null, root);
  cols.style.setProperty('--n', String(recs.length));
  recs.forEach(function (rec, i) {
    var box = el('section', 'recording', null, cols);
    if (recs.length > 1) el('h1', null, (i === 0 ? 'Before: ' : 'After: ') + rec.label, box);
    var m = rec.meta;
    el('div', 'meta', 'target ' + rec.diagnosis.target.kind + ' ' + rec.diagnosis.target.spec +
      ', ' + num(rec.diagnosis.duration_s, 1) + ' s from ' +
      new Date(rec.timeline.start_unix_s * 1000).toISOString() + ', sampled every ' +
      num(rec.diagnosis.interval_ms, 0) + ' ms; ' + m.machine + ', ' + m.cpus + ' CPUs, kernel ' +
      m.kernel + '; chokepoint ' + m.chokepoint_version, box);
    rec.link = timeLink(rec, i);
    tiersSection(rec, i, box);
    verdictSection(rec, box);
    splitSection(rec, box);
    latencySection(rec, box);
    heatmapSection(rec, box);
    useSection(rec, box);
    servicesSection(rec, box);
    loadSection(rec, box);
    stacksSection(rec, i, box);
    recordedStacksSection(rec, i, box);
    rangeStacksSection(rec, box);
    absentSection(rec, box);
    sourcesSection(rec, box);
  });
  // A load run on its own (chokepoint load -o): its panel only.
  loads.forEach(function (l) {
    var box = el('section', 'recording', null, root);
    loadSection({ load: l.load }, box);
    latencySection({ load: l.load }, box);
  });
  // A knee run on its own (chokepoint knee -o): its curve and fit.
  knees.forEach(function (k) {
    var box = el('section', 'recording', null, root);
    var kk = k.knee;
    var meta = (kk.slo ? 'SLO ' + kk.slo + ', errors at most ' + num(kk.max_error_ratio * 100, 2) +
      '%, ' : '') + num(kk.step_s, 1) + ' s steps after ' + num(kk.warmup_s, 1) + ' s warmup';
    if (kk.target) meta += ', diagnosing ' + kk.target;
    el('div', 'meta', meta, box);
    kneeCurve(k.knee, box);
    uslFit(k.knee, box);
  });
  // A fit of measured rows on its own (chokepoint usl -o): the USL panel.
  usls.forEach(function (u) {
    var box = el('section', 'recording', null, root);
    el('div', 'meta', (u.usl.points || []).length + ' measured levels of concurrency', box);
    uslFit({ usl: u.usl }, box);
  });
  api.readyMs = performance.now();  // since navigation started: the time to interactive
  api.ready = true;
})();
